"""The contract as data, for scenario tests that go over every operation of it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import yaml

from conformance.target import SPEC_PATH

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def spec() -> dict:
    with open(SPEC_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# The extensions client tools read (openapi-generator and openapi-python-client name enum
# members by `x-enum-varnames`; documentation tools publish by `x-internal`); any other `x-`
# key is the server's own business.
CLIENT_EXTENSIONS = {"x-enum-varnames", "x-internal"}


def published(node):
    """The spec as a server publishes it: as written, without the extensions only the server
    reads (issue 24). Every lower-case `x-` key of this spec is an extension: none of its
    properties or headers is named so."""
    if isinstance(node, dict):
        return {
            key: published(value)
            for key, value in node.items()
            if not key.startswith("x-") or key in CLIENT_EXTENSIONS
        }
    if isinstance(node, list):
        return [published(value) for value in node]
    return node


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # as in the spec, relative to /api: /groups/{group_id}
    definition: dict

    def __str__(self) -> str:
        return f"{self.method} /api{self.path}"

    @property
    def url(self) -> str:
        """The path with every parameter set to 1 (a well-formed id)."""
        return re.sub(r"\{[^}]+\}", "1", self.path)

    @property
    def security(self) -> list[dict]:
        return self.definition.get("security", spec().get("security", []))

    @property
    def needs_token(self) -> bool:
        """Every alternative of its security requires the bearer token."""
        return bool(self.security) and all("bearerAuth" in option for option in self.security)

    def documents(self, status: int) -> bool:
        return str(status) in self.definition.get("responses", {})

    @property
    def json_example(self) -> dict | None:
        """The request body example of a JSON operation (its first one), or None."""
        content = self.definition.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        if media is None:
            return None
        if "example" in media:
            return media["example"]
        examples = media.get("examples", {})
        return resolve(next(iter(examples.values())))["value"] if examples else None

    @property
    def file_part(self) -> str | None:
        """The required file part of a multipart operation, or None."""
        content = self.definition.get("requestBody", {}).get("content", {})
        media = content.get("multipart/form-data")
        if media is None:
            return None
        schema = resolve(media["schema"])
        return schema["required"][0]


def resolve(node: dict) -> dict:
    """`node`, or what its local `$ref` points to."""
    while "$ref" in node:
        target: dict = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations() -> list[Operation]:
    found = []
    for path, item in spec()["paths"].items():
        for method in METHODS:
            if method in item:
                found.append(Operation(method.upper(), path, item[method]))
    return found


def paths() -> dict[str, set[str]]:
    """Each path (relative to /api) and the methods the contract gives it."""
    return {
        path: {method.upper() for method in item if method in METHODS}
        for path, item in spec()["paths"].items()
    }
