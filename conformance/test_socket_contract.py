"""The socket's contract itself: openapi/asyncapi.yaml is valid AsyncAPI 3.0 and says what the
decided protocol says.

Runs conformance/asyncapi/validate.sh (the AsyncAPI CLI, pinned by
conformance/asyncapi/package-lock.json, offline, analytics off); skipped when node or npm is
missing, except in CI (`CI=true`), where a missing tool must fail rather than hide a broken
document. The other checks read the document in Python: every frame of the protocol both
ways, every close code, and every example valid against its own payload schema (the CLI does
not check examples of payloads in OpenAPI's schema format).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conformance import socket_client, socket_schemas
from conformance.contract import published
from conformance.socket_client import (
    ASYNCAPI_PATH,
    OPENAPI_FORMATS,
    contract,
    reached_compositions,
    resolved,
)

VALIDATE = Path(__file__).resolve().parent / "asyncapi" / "validate.sh"

SERVER_FRAMES = {
    "ready",
    "message.created",
    "member.added",
    "member.removed",
    "group.deleted",
    "read",
    "session.ended",
    "error",
    "pong",
    # Notices (contacts, blocks, new conversations).
    "contact.requested",
    "contact.request.removed",
    "contact.added",
    "contact.removed",
    "block.added",
    "block.removed",
    "conversation.created",
    "message.hidden",
    "message.updated",
    # Group roles: states, and join requests (notices).
    "group.updated",
    "join_request.created",
    "join_request.removed",
}
CLIENT_FRAMES = {"auth", "sync", "ping"}
CLOSE_CODES = {1009, 4400, 4401, 4403, 4409, 4410, 4429, 4503}


def test_asyncapi_cli_validates_the_document():
    """`asyncapi validate openapi/asyncapi.yaml`: no error, no warning (references resolved)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{' and '.join(missing)} not installed in CI: the document is unchecked")
        pytest.skip(f"{' and '.join(missing)} not installed: the AsyncAPI CLI cannot run")
    result = subprocess.run(
        [str(VALIDATE)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_asyncapi_cli_refuses_a_broken_document(tmp_path):
    """The validation step can fail: a reference to a schema the document lacks is refused."""
    if any(shutil.which(tool) is None for tool in ("node", "npm")):
        pytest.skip("node or npm not installed: the AsyncAPI CLI cannot run")
    broken = ASYNCAPI_PATH.read_text(encoding="utf-8").replace(
        "'#/components/schemas/Member'", "'#/components/schemas/Nobody'"
    )
    copy = tmp_path / "asyncapi.yaml"

    def validate(text: str) -> subprocess.CompletedProcess:
        copy.write_text(text, encoding="utf-8")
        return subprocess.run(
            [str(VALIDATE), str(copy)], capture_output=True, text=True, timeout=600, check=False
        )

    # The same place unbroken passes: the failure below is the broken reference's.
    intact = validate(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    result = validate(broken)
    assert "Nobody" in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.returncode != 0, result.stdout + result.stderr


def test_every_frame_of_the_protocol_is_a_message_each_way():
    """Server-to-client (send, replies) and client-to-server (receive) frames, as decided."""
    socket_contract = contract()
    assert set(socket_contract.server_frames) == SERVER_FRAMES
    assert set(socket_contract.client_frames) == CLIENT_FRAMES


def test_every_close_code_is_documented():
    """The channel's `x-close-codes` lists every close code of the protocol, each with a meaning."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    entries = document["channels"]["userSocket"]["x-close-codes"]
    assert {entry["code"] for entry in entries} == CLOSE_CODES
    description = document["info"]["description"]
    for entry in entries:
        assert entry["meaning"].strip() and entry["name"]
        assert f"| {entry['code']} |" in description, f"{entry['code']} not in the table"


def test_the_channel_is_the_users_ws_url_with_bearer_auth():
    """Address /api/ws/user/{id}/ with its parameter; every server asks for the bearer scheme."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    channel = document["channels"]["userSocket"]
    assert channel["address"] == "/api/ws/user/{id}/"
    assert set(channel["parameters"]) == {"id"}
    scheme = document["components"]["securitySchemes"]["bearerHeader"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for server in document["servers"].values():
        assert server["protocol"] in ("ws", "wss")
        assert server["security"] == [{"$ref": "#/components/securitySchemes/bearerHeader"}]


def test_payloads_share_the_openapi_components():
    """message.created carries openapi.yaml's Message, member.added its Member, error its
    ErrorCode, by those names (copies checked below): one definition for REST and socket."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    assert schemas["MessageCreatedFrame"]["properties"]["message"] == {
        "$ref": "#/components/schemas/Message"
    }
    assert schemas["MemberAddedFrame"]["properties"]["user"] == {
        "$ref": "#/components/schemas/Member"
    }
    assert schemas["ErrorFrame"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}


def test_every_payload_is_a_named_json_schema_with_a_constant_type():
    """Each message's payload is a `$ref` to a schema of components.schemas named after the
    message (`messageCreated`: `MessageCreatedFrame`), in JSON Schema (the default format),
    whose required `type` is a `const`: what code generators need to make one named type per
    frame, told apart by `type` (issue 24: the CLI typed payloads in OpenAPI's format `any`,
    and inline ones `AnonymousSchema_N` with `type` optional)."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    for name, message in document["components"]["messages"].items():
        frame = f"{name[0].upper()}{name[1:]}Frame"
        assert message["payload"] == {"$ref": f"#/components/schemas/{frame}"}, name
        schema = schemas[frame]
        assert "schemaFormat" not in schema and "schema" not in schema, name
        assert schema["type"] == "object" and "type" in schema["required"], name
        assert schema["properties"]["type"]["const"] == message["name"], name


def test_the_document_stands_alone():
    """Every `$ref` of asyncapi.yaml points inside it: tools that read the published document
    need no other, and none of its schemas is in OpenAPI's format."""
    text = ASYNCAPI_PATH.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    names = set(document["components"]["schemas"])
    for name in socket_schemas.references(document):
        assert name in names, f"$ref to a schema the document lacks: {name}"
    assert "openapi.yaml#" not in text and "schemaFormat" not in text


def test_the_shared_schemas_are_openapi_yamls_converted():
    """Each schema of asyncapi.yaml named like one of openapi.yaml's is that schema converted
    to JSON Schema (conformance/socket_schemas.py), field by field, `title`s and `examples`
    aside; and every schema a copy reaches is copied too. openapi.yaml stays the source."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    ours = document["components"]["schemas"]
    originals = socket_schemas.openapi_schemas()
    copies = sorted(set(ours) & set(originals))
    assert {"Message", "Member", "ErrorCode", "GroupSummary", "JoinRequest"} <= set(copies)
    for name in copies:
        expected = socket_schemas.comparable(socket_schemas.converted(originals[name]))
        copy = socket_schemas.comparable(ours[name])
        fields = sorted(
            key for key in set(expected) | set(copy) if expected.get(key) != copy.get(key)
        )
        assert not fields, (
            f"{name} differs from openapi.yaml's in {fields}; its conversion is:\n"
            + yaml.safe_dump(expected, sort_keys=False)
        )
        for reached in socket_schemas.references(originals[name]):
            assert reached in ours, f"{name} reaches {reached}, which is not copied"
    # The frames' own schemas do not shadow openapi.yaml's under another meaning.
    frames_own = set(ours) - set(originals)
    assert all(name.endswith("Frame") or name == "NoticeNumber" for name in frames_own), frames_own


def test_no_composition_is_reached_twice_from_openapi_format_payloads():
    """No `allOf`/`anyOf`/`oneOf` list is reached twice from the payloads in OpenAPI's format.

    The AsyncAPI tools convert each such payload to JSON Schema with
    @asyncapi/openapi-schema-parser 3.1, which copies each schema before converting it but
    writes the converted members of a composition back into the original list. A second
    payload (or a second path of the same one) reaching that list then finds members already
    converted (`type: [integer, "null"]`) and the whole document fails to parse, in an order
    that varies from run to run: `asyncapi validate` failed one run in three that way. A
    property that needs its own description next to a `$ref` says it in its parent's
    description instead of wrapping the `$ref` in `allOf`.
    """
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    reached: dict[str, list[str]] = {}
    for name, message in document["components"]["messages"].items():
        payload = message["payload"]
        if payload.get("schemaFormat") not in OPENAPI_FORMATS:
            continue
        for where in reached_compositions(payload["schema"]):
            reached.setdefault(where, []).append(name)
    twice = {where: names for where, names in reached.items() if len(names) > 1}
    assert not twice, f"compositions reached more than once (where: by which frames): {twice}"


def test_every_example_is_valid_against_its_payload():
    """Each message's examples validate against its payload schema, references resolved."""
    socket_contract = contract()
    frames = {**socket_contract.server_frames, **socket_contract.client_frames}
    by_name = {frame.name: frame for frame in frames.values()}
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    for name, message in document["components"]["messages"].items():
        examples = resolved(message).get("examples", [])
        assert examples, f"{name} has no example"
        for example in examples:
            errors = by_name[name].errors(example["payload"])
            assert not errors, f"{name} example {example.get('name')}: {errors}"


def test_the_validator_refuses_what_the_schema_refuses():
    """The suite's frame check can fail: a wrong field type or a missing field is caught."""
    check = socket_client.contract().check
    check({"type": "pong"})
    for bad in ({"type": "pong", "extra": 1}, {"type": "ready"}, {"type": "nope"}, [1]):
        with pytest.raises(AssertionError):
            check(bad)


def test_the_server_publishes_the_socket_contract_beside_the_openapi_one(api):
    """GET /api/asyncapi.yaml is the document as written, self-contained, beside the OpenAPI
    document the server publishes at /api/openapi.yaml."""
    served = api.get("/asyncapi.yaml")
    assert served.status_code == 200, served.text[:300]
    assert served.headers["content-type"].split(";")[0] == "application/yaml"
    assert yaml.safe_load(served.text) == yaml.safe_load(ASYNCAPI_PATH.read_text("utf-8"))

    references = set()

    def collect(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str) and not node["$ref"].startswith("#"):
                references.add(node["$ref"].partition("#")[0])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(yaml.safe_load(served.text))
    assert references == set()  # the document stands alone (test_the_document_stands_alone)
    beside = api.get("/openapi.yaml")
    assert beside.status_code == 200
    openapi = ASYNCAPI_PATH.with_name("openapi.yaml").read_text("utf-8")
    assert yaml.safe_load(beside.text) == published(yaml.safe_load(openapi))
