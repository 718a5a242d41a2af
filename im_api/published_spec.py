"""The contract as client generators, linters and Swagger UI read it from the server.

`/api/openapi.yaml` is the spec file as written, comments included; `/api/openapi.json` is the
same document in JSON. Connexion would serve its own working copy instead, with every
`$ref` expanded (ten times the size, and no component names left for generators to name
their models by), so its spec routes are switched off (`SERVE_SPEC_OFF`) and these take
their place; Swagger UI keeps reading `/api/openapi.json`.

Both leave out the extensions only the server reads (`x-openapi-router-controller`,
`x-bearerInfoFunc`: which module runs an operation, which function checks a token): they
tell a client nothing and an attacker where to look. Extensions client tools read are kept:
`x-enum-varnames` names the `ErrorCode` members in generated clients.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import flask
import yaml
from connexion import FlaskApp
from connexion.options import SwaggerUIOptions

from im_api import contract_files

# Swagger UI stays, pointed at the default /openapi.json, which `publish` serves.
SERVE_SPEC_OFF = SwaggerUIOptions(serve_spec=False)

YAML_TYPE = "application/yaml"  # RFC 9512

# Read by client tools: openapi-generator and openapi-python-client name enum members by
# `x-enum-varnames`; documentation and gateway tools publish what `x-internal` is not true
# of. Every other `x-` key of the spec is for Connexion or this server.
CLIENT_EXTENSIONS = frozenset({"x-enum-varnames", "x-internal"})

# Maps whose keys are names the spec's author chose (properties, headers, media types, ...),
# not fields of the OpenAPI object holding them: a property called `x-foo` is not an
# extension. And values that are data, not OpenAPI objects: left as written.
_NAMED = frozenset(
    {"paths", "properties", "headers", "content", "encoding", "examples", "links", "callbacks",
     "schemas", "responses", "parameters", "requestBodies", "securitySchemes", "variables",
     "scopes", "mapping"}
)  # fmt: skip
_DATA = frozenset({"example", "default", "enum", "value", "const"})

_EXTENSION_LINE = re.compile(r"^\s*(x-[A-Za-z0-9_-]+):[ \t]*[^\s|>].*\n?", re.M)


def publish(app: FlaskApp, spec_file: Path, base_path: str = "/api") -> dict:
    """Serve `spec_file` at `{base_path}/openapi.yaml` and, as JSON, `openapi.json`; and the
    socket's contract beside it, `asyncapi.yaml`, at `{base_path}/asyncapi.yaml` (its `$ref`s
    to `./openapi.yaml` resolve against that URL to the document served here). Returns the
    spec, parsed."""
    text = spec_file.read_text(encoding="utf-8")
    document = contract_files.parse(text)
    public = for_clients(document)
    as_json = json.dumps(public, ensure_ascii=False).encode()
    as_yaml = _yaml_for_clients(text, public).encode()

    def openapi_json() -> flask.Response:
        return _document(as_json, "application/json")

    def openapi_yaml() -> flask.Response:
        return _document(as_yaml, YAML_TYPE)

    app.add_url_rule(f"{base_path}/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule(f"{base_path}/openapi.yaml", "openapi_yaml", openapi_yaml)

    socket_spec = spec_file.with_name("asyncapi.yaml")
    if socket_spec.exists():
        as_asyncapi = socket_spec.read_bytes()

        def asyncapi_yaml() -> flask.Response:
            return _document(as_asyncapi, YAML_TYPE)

        app.add_url_rule(f"{base_path}/asyncapi.yaml", "asyncapi_yaml", asyncapi_yaml)
    return document


def for_clients(node, named: bool = False):
    """`node` (the spec, or a part of it) without the extensions only the server reads.
    `named`: `node` is a map of names (see `_NAMED`), whose keys are never extensions."""
    if isinstance(node, list):
        return [for_clients(item) for item in node]
    if not isinstance(node, dict):
        return node
    kept = {}
    for key, value in node.items():
        if named:
            kept[key] = for_clients(value)
        elif key.startswith("x-") and key not in CLIENT_EXTENSIONS:
            continue
        elif key in _DATA:
            kept[key] = value
        else:
            kept[key] = for_clients(value, named=key in _NAMED)
    return kept


def _yaml_for_clients(text: str, public: dict) -> str:
    """The spec's text without the lines of server-only extensions, so the comments stay;
    re-emitted from `public` (comments lost) should some extension not be one plain
    `x-key: value` line, or the lines removed not be exactly those extensions."""

    def drop(match: re.Match) -> str:
        return match.group(0) if match.group(1) in CLIENT_EXTENSIONS else ""

    stripped = _EXTENSION_LINE.sub(drop, text)
    if contract_files.parse(stripped) == public:
        return stripped
    return yaml.safe_dump(public, sort_keys=False, allow_unicode=True, width=100)


def _document(body: bytes, mimetype: str) -> flask.Response:
    response = flask.Response(body, mimetype=mimetype)
    # Generators and the UI ask for it again on each run: let them revalidate cheaply.
    response.add_etag()
    response.cache_control.no_cache = True
    return response.make_conditional(flask.request)
