"""The contract as tools read it from the server: the document as written.

Spec: DESIGN "Conventions", the spec as tools see it: `/api/openapi.json` and
`/api/openapi.yaml` are openapi/openapi.yaml with its `$ref`s and component names intact (not
a copy with every reference expanded), and Swagger UI at `/api/ui/` reads them. Issue 24: what
is published is written for the teams that call the API, so it carries none of the extensions
only the server reads, and its description does not tell the contract's own history.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conformance.contract import CLIENT_EXTENSIONS, published, spec


def refs(node) -> int:
    """How many `$ref`s the document holds."""
    if isinstance(node, dict):
        return ("$ref" in node) + sum(refs(value) for value in node.values())
    if isinstance(node, list):
        return sum(refs(value) for value in node)
    return 0


def extensions(node, path="#") -> set[str]:
    """Every specification extension (`x-...` key) in the document, with where it is."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("x-"):
                found.add(f"{path}/{key}")
            found |= extensions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found |= extensions(value, f"{path}/{index}")
    return found


def test_get_openapi_json_is_the_spec_as_written(api):
    """GET /api/openapi.json: the contract itself, references and component names intact."""
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    served = response.json()
    assert served == json.loads(json.dumps(published(spec())))
    assert refs(served) == refs(spec()) > 200
    assert "SignedIn" in served["components"]["schemas"]


def test_get_openapi_yaml_is_the_spec_as_written(api):
    """GET /api/openapi.yaml: the same document, as YAML."""
    response = api.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == published(spec())


def test_the_spec_answers_304_to_its_etag(api):
    """GET /api/openapi.json with the `ETag` it sent: 304, so tools can poll it cheaply."""
    first = api.get("/openapi.json")
    again = api.get("/openapi.json", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_swagger_ui_reads_the_published_spec(api):
    """GET /api/ui/: Swagger UI's page, loading /api/openapi.json."""
    response = api.get("/ui/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/api/openapi.json" in response.text


@pytest.mark.parametrize("name", ["openapi.json", "openapi.yaml"])
def test_the_published_spec_carries_no_server_internal_extension(api, name):
    """GET /api/openapi.json and .yaml: no `x-openapi-router-controller` (which module runs an
    operation), no `x-bearerInfoFunc` (which function checks a token), nor any other extension
    a client tool does not read; `x-enum-varnames`, which generators name enum members by,
    stays."""
    response = api.get(f"/{name}")
    document = response.json() if name.endswith("json") else yaml.safe_load(response.text)
    found = extensions(document)
    assert {item.rpartition("/")[2] for item in found} <= CLIENT_EXTENSIONS, sorted(found)
    assert "#/components/schemas/ErrorCode/x-enum-varnames" in found
    assert "x-openapi-router-controller" not in response.text
    assert "x-bearerInfoFunc" not in response.text


# How the contract's history reads: the two source documents it was normalized from and the
# mapping of their endpoints (docs/sources.md keeps that for the people who build the API).
HISTORY = re.compile(r"\bdocument [AB]\b|\bsource documents?\b|\bthe sources\b|\bseeds?\b", re.I)


def descriptions(node, path="#"):
    """Every `description` and `summary` in the document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield f"{path}/{key}", value
            yield from descriptions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from descriptions(value, f"{path}/{index}")


def test_the_published_description_is_written_for_client_teams(api):
    """GET /api/openapi.json: `info.description` (Swagger UI's front page, generated clients'
    docstrings) says what the API is, how to authenticate, the envelope and errors, the
    limits, the socket and paging, and nothing of the documents the contract came from."""
    description = api.get("/openapi.json").json()["info"]["description"]
    assert not HISTORY.search(description), HISTORY.search(description)
    for needed in ("Bearer", "/api/asyncapi.yaml", "`code`", "ErrorCode", "429", "after_seq"):
        assert needed in description, needed


def test_no_description_in_the_published_spec_speaks_of_the_source_documents(api):
    """GET /api/openapi.json: no operation, schema or parameter description refers a reader to
    "document A" or "document B", which a client team has never seen."""
    served = api.get("/openapi.json").json()
    found = [where for where, text in descriptions(served) if HISTORY.search(text)]
    assert not found
