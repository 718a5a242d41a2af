"""The shapes the socket shares with REST, as `openapi/asyncapi.yaml` holds them: copies of
`openapi/openapi.yaml`'s schemas converted from OpenAPI 3.0's schema dialect to JSON Schema,
so that the socket's document stands alone and the AsyncAPI tools read every frame as JSON
Schema (they type a payload in OpenAPI's format as `any`).

openapi.yaml stays the one source: a component of asyncapi.yaml named like one of
openapi.yaml's is a copy, and `test_socket_contract` checks that it is `converted()` of the
original, field by field, and that every schema a copy reaches is copied too. Run
`python -m conformance.socket_schemas Name ...` for the converted YAML of some schemas (then
name their inline objects and enums with a `title`, as the copies do).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"
SCHEMAS = "#/components/schemas/"

# Annotations: they say nothing about which values are valid.
ANNOTATIONS = {"description", "example", "examples", "title"}


def openapi_schemas() -> dict[str, Any]:
    document = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document["components"]["schemas"]


def converted(schema: Any) -> Any:
    """`schema` (OpenAPI 3.0) in JSON Schema, valid for exactly the same values:

    - `nullable: true` adds `null`: to `type` (`[string, 'null']`, and to `enum`), or, for an
      object, as `oneOf: [{the object}, {type: 'null'}]` with the annotations outside (the
      code generators drop `null` from `type: [object, 'null']`);
    - `example: x` is `examples: [x]`;
    - an `allOf` of one `$ref` with only annotations beside it (OpenAPI's way to describe a
      reference) is the `$ref` alone: JSON Schema ignores what stands beside a `$ref`, and
      generators merge the `allOf` into a new, nameless type;
    - `$ref`s keep their target's name (`#/components/schemas/Member`).

    """
    if isinstance(schema, list):
        return [converted(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    if "discriminator" in schema or schema.get("nullable") is False:
        raise ValueError(f"no conversion written for {sorted(schema)}")
    members = schema.get("allOf")
    if (
        isinstance(members, list)
        and len(members) == 1
        and set(members[0]) == {"$ref"}
        and set(schema) - {"allOf"} <= ANNOTATIONS
    ):
        return converted(members[0])
    out = {}
    for key, value in schema.items():
        if key == "nullable":
            continue
        if key == "example":
            out["examples"] = [value]
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: converted(item) for name, item in value.items()}
        else:
            out[key] = converted(value)
    if schema.get("nullable"):
        if schema.get("type") == "object":
            annotations = {key: out.pop(key) for key in ("description", "examples") if key in out}
            return {**annotations, "oneOf": [out, {"type": "null"}]}
        if "type" not in schema:
            raise ValueError(f"nullable without a type: {sorted(schema)}")
        out["type"] = [schema["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def comparable(schema: Any) -> Any:
    """`schema` without what a copy need not repeat: the `title`s and `examples` of its schemas
    (not properties of those names). A copy names its inline objects and enums with a `title`
    for the generators, and the frames carry the examples."""
    if isinstance(schema, list):
        return [comparable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: (
            {name: comparable(item) for name, item in value.items()}
            if key in ("properties", "patternProperties", "definitions")
            else comparable(value)
        )
        for key, value in schema.items()
        if key not in ("title", "examples")
    }


def references(schema: Any) -> set[str]:
    """The names of the components `schema`'s `$ref`s point to (local ones only)."""
    if isinstance(schema, list):
        return {name for item in schema for name in references(item)}
    if not isinstance(schema, dict):
        return set()
    found = set()
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith(SCHEMAS):
        found.add(schema["$ref"].removeprefix(SCHEMAS))
    for key, value in schema.items():
        if key not in ("example", "examples"):
            found |= references(value)
    return found


class _Dumper(yaml.SafeDumper):
    """Writes text of several lines as a block (`|`), as the hand-written documents do."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _list(dumper: yaml.SafeDumper, items: list) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(list, _list)


def main(names: list[str]) -> None:
    schemas = openapi_schemas()
    copies = {name: comparable(converted(schemas[name])) for name in names}
    sys.stdout.write(yaml.dump(copies, Dumper=_Dumper, sort_keys=False, width=100))


if __name__ == "__main__":
    main(sys.argv[1:])
