"""The contract itself: valid OpenAPI, complete for every operation, and its examples true.

Spec: the whole of openapi/openapi.yaml; DESIGN "contract-first" (every constraint, every
success and error response, and an example for each, live in the spec).
"""

from __future__ import annotations

import re

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec

from conformance.contract import Operation, operations, resolve, spec

OPERATIONS = operations()
ERROR_SCHEMAS = {"#/components/schemas/ApiError", "#/components/schemas/RetryError"}


def test_the_spec_is_valid_openapi():
    """openapi/openapi.yaml validates as OpenAPI 3.0 (openapi-spec-validator)."""
    validate_spec(spec())


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_operation_has_a_summary_a_description_an_operation_id_and_tags(operation):
    """Each operation says what it does (summary, description), has a client-facing
    operationId (a camelCase verb such as `changeName`, DESIGN "Conventions") and tags the
    spec declares."""
    definition = operation.definition
    assert definition.get("summary", "").strip(), "no summary"
    assert definition.get("description", "").strip(), "no description"
    assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", definition.get("operationId", ""))
    declared = {tag["name"] for tag in spec().get("tags", [])}
    assert definition.get("tags") and set(definition["tags"]) <= declared, definition.get("tags")


def test_operation_ids_are_unique():
    """No two operations share an operationId (links and handlers rely on them)."""
    ids = [operation.definition["operationId"] for operation in OPERATIONS]
    assert len(ids) == len(set(ids))


def expected_errors(operation: Operation) -> set[int]:
    """The error statuses every operation of its shape can answer, by the conventions."""
    # Any request can carry a query parameter the operation does not have or a malformed
    # Content-Length (400), a body over the limit (413), meet a bug (500) or a database
    # that does not answer (503).
    expected = {400, 413, 500, 503}
    parameters = [resolve(p) for p in operation.definition.get("parameters", [])]
    parameters += [resolve(p) for p in spec()["paths"][operation.path].get("parameters", [])]
    if any("bearerAuth" in option for option in operation.security):
        expected.add(401)  # a token can be missing, invalid, expired or revoked
    if "requestBody" in operation.definition:
        expected.add(415)  # a body of another type
    if any(p["in"] == "path" for p in parameters):
        expected.add(404)  # a path naming nothing
    return expected


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_operation_documents_its_error_responses(operation):
    """Each operation documents the errors any request can meet (400, 413, 500, 503) and
    those its shape allows: 401 with a token, 415 with a body, 404 with path parameters."""
    documented = {int(status) for status in operation.definition["responses"]}
    missing = expected_errors(operation) - documented
    assert not missing, f"{operation} does not document {sorted(missing)}"


def error_responses():
    for operation in OPERATIONS:
        for status, response in operation.definition["responses"].items():
            if int(status) >= 400:
                yield pytest.param(operation, status, response, id=f"{operation} {status}")


@pytest.mark.parametrize(("operation", "status", "response"), list(error_responses()))
def test_every_error_response_is_the_envelope(operation, status, response):
    """Every 4xx and 5xx is JSON of the `ApiError` schema (`RetryError` for waits), and a 429
    documents `Retry-After`."""
    response = resolve(response)
    content = response.get("content", {})
    assert list(content) == ["application/json"], list(content)
    assert content["application/json"]["schema"].get("$ref") in ERROR_SCHEMAS
    if status == "429":
        assert "Retry-After" in response.get("headers", {})


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_response_is_a_shared_component(operation):
    """Each response is a `$ref` to `components/responses`, so each kind of answer (and
    the links from it) is written once and generators see one name for it."""
    inline = [
        status
        for status, response in operation.definition["responses"].items()
        if not response.get("$ref", "").startswith("#/components/responses/")
    ]
    assert not inline, f"{operation}: inline responses {inline}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_operation_has_examples(operation):
    """Each JSON request body and each JSON response of the operation carries an example."""
    missing = []
    body = operation.definition.get("requestBody", {}).get("content", {})
    if "application/json" in body and not _has_example(body["application/json"]):
        missing.append("request body")
    for status, response in operation.definition["responses"].items():
        media = resolve(response).get("content", {}).get("application/json")
        if media is not None and not _has_example(media):
            missing.append(f"response {status}")
    assert not missing, f"{operation}: no example for {', '.join(missing)}"


def _has_example(media: dict) -> bool:
    return "example" in media or bool(media.get("examples"))


def examples():
    """(where, value, schema) for every example in the spec, schema-level ones included."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            schema = node.get("schema")
            if isinstance(schema, dict):  # a media type or a parameter
                if "example" in node:
                    found.append((f"{where}/example", node["example"], schema))
                for name, example in (node.get("examples") or {}).items():
                    example = resolve(example)
                    if "value" in example:
                        found.append((f"{where}/examples/{name}", example["value"], schema))
            if "example" in node and _is_schema(node):
                own = {key: value for key, value in node.items() if key != "example"}
                found.append((f"{where}/example", node["example"], own))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(spec()["paths"], "#/paths")
    walk(spec()["components"], "#/components")
    return found


def _is_schema(node: dict) -> bool:
    return "schema" not in node and any(
        key in node for key in ("type", "$ref", "oneOf", "anyOf", "allOf", "properties", "enum")
    )


@pytest.mark.parametrize(
    ("value", "schema"),
    [pytest.param(value, schema, id=where) for where, value, schema in examples()],
)
def test_every_example_validates_against_its_schema(value, schema):
    """Every example in the spec (media types, parameters, schemas) is valid for its schema."""
    validator = OAS30Validator(
        {**schema, "components": spec()["components"]}, format_checker=oas30_format_checker
    )
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)
    ]
    assert not errors, errors


def arrays_without_max_items(schema: dict, where: str, seen: frozenset = frozenset()):
    """Where, in `schema` and every schema it reaches (`$ref`s resolved), an array has no
    `maxItems`."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        yield from arrays_without_max_items(
            resolve(schema), schema["$ref"], seen | {schema["$ref"]}
        )
        return
    if schema.get("type") == "array" and "maxItems" not in schema:
        yield where
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            yield from arrays_without_max_items(schema[key], f"{where}/{key}", seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for index, member in enumerate(schema.get(key, [])):
            yield from arrays_without_max_items(member, f"{where}/{key}/{index}", seen)
    for name, member in schema.get("properties", {}).items():
        yield from arrays_without_max_items(member, f"{where}/properties/{name}", seen)


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_every_array_in_a_response_declares_its_max_items(operation):
    """Issue 24: a client can see how long any list it receives may get. Every array in every
    response schema of the operation (references followed) has `maxItems`."""
    unbounded = set()
    for status, response in operation.definition["responses"].items():
        for media_type, media in resolve(response).get("content", {}).items():
            where = f"{status} {media_type}"
            unbounded |= set(arrays_without_max_items(media.get("schema", {}), where))
    assert not unbounded, sorted(unbounded)
