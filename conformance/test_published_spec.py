"""The contract as tools read it from the server: the document as written.

Spec: DESIGN "Conventions", the spec as tools see it: `/api/openapi.json` and
`/api/openapi.yaml` are openapi/openapi.yaml with its `$ref`s and component names intact (not
a copy with every reference expanded), and Swagger UI at `/api/ui/` reads them.
"""

from __future__ import annotations

import json

import yaml

from conformance.contract import spec


def refs(node) -> int:
    """How many `$ref`s the document holds."""
    if isinstance(node, dict):
        return ("$ref" in node) + sum(refs(value) for value in node.values())
    if isinstance(node, list):
        return sum(refs(value) for value in node)
    return 0


def test_get_openapi_json_is_the_spec_as_written(api):
    """GET /api/openapi.json: the contract itself, references and component names intact."""
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    served = response.json()
    assert served == json.loads(json.dumps(spec()))
    assert refs(served) == refs(spec()) > 200
    assert "SignedIn" in served["components"]["schemas"]


def test_get_openapi_yaml_is_the_spec_as_written(api):
    """GET /api/openapi.yaml: the same document, as YAML."""
    response = api.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == spec()


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
