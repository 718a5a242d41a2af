"""The contract as client generators, linters and Swagger UI read it from the server.

`/api/openapi.yaml` is the spec file as written, comments included; `/api/openapi.json` is the
same document in JSON. Connexion would serve its own working copy instead, with every
`$ref` expanded (ten times the size, and no component names left for generators to name
their models by), so its spec routes are switched off (`SERVE_SPEC_OFF`) and these take
their place; Swagger UI keeps reading `/api/openapi.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import flask
import yaml
from connexion import FlaskApp
from connexion.options import SwaggerUIOptions

# Swagger UI stays, pointed at the default /openapi.json, which `publish` serves.
SERVE_SPEC_OFF = SwaggerUIOptions(serve_spec=False)

YAML_TYPE = "application/yaml"  # RFC 9512


def publish(app: FlaskApp, spec_file: Path, base_path: str = "/api") -> dict:
    """Serve `spec_file` at `{base_path}/openapi.yaml` and, as JSON, `openapi.json`; and the
    socket's contract beside it, `asyncapi.yaml`, at `{base_path}/asyncapi.yaml` (its `$ref`s
    to `./openapi.yaml` resolve against that URL to the document served here). Returns the
    spec, parsed."""
    text = spec_file.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    as_json = json.dumps(document, ensure_ascii=False).encode()
    as_yaml = text.encode()

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


def _document(body: bytes, mimetype: str) -> flask.Response:
    response = flask.Response(body, mimetype=mimetype)
    # Generators and the UI ask for it again on each run: let them revalidate cheaply.
    response.add_etag()
    response.cache_control.no_cache = True
    return response.make_conditional(flask.request)
