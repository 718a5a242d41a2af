"""The socket's frames generate types: `asyncapi generate models typescript` from a live
server's /api/asyncapi.yaml makes one named, exact TypeScript type per frame, and a client
that switches on `frame.type` type-checks against them with strict tsc (issue 24).

clients/socket-types/check.sh runs the AsyncAPI CLI pinned in conformance/asyncapi (Modelina
inside) into src/generated/, then `tsc` (strict, noImplicitAny) over src/client.ts, which
narrows every server frame by `type` and builds every client frame. Here, besides: no
generated type is `any` or a nameless `AnonymousSchema_N`, each frame's type has exactly its
payload's wire names, required where the payload requires them, and the client's switch names
every server frame of the contract. Skipped without node and npm, except in CI (`CI=true`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conformance.socket_client import ASYNCAPI_PATH, contract

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "clients" / "socket-types"
GENERATED = PROJECT / "src" / "generated"

# `'group_id'?: number;`: a property of a generated interface (raw names, so quoted).
PROPERTY = re.compile(r"^\s*'(?P<name>[^']+)'(?P<optional>\??): (?P<type>.+);$", re.MULTILINE)


@pytest.fixture(scope="module")
def generated(published) -> dict[str, str]:
    """check.sh over the served contract: the generated files by model name."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{' and '.join(missing)} not installed in CI: the frame types are unchecked"
            )
        pytest.skip(f"{' and '.join(missing)} not installed: the AsyncAPI CLI and tsc cannot run")
    result = subprocess.run(
        [str(PROJECT / "check.sh"), f"{published.url}/asyncapi.yaml"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # tsc's verdict: exit 0 only when src/client.ts type-checks against the generated types.
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return {path.stem: path.read_text(encoding="utf-8") for path in GENERATED.glob("*.ts")}


def code(text: str) -> str:
    """`text` without its comments (descriptions may say "any")."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.DOTALL)


def payloads() -> dict[str, dict]:
    """Each frame's payload schema, by the name of its component (`MessageCreatedFrame`)."""
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    return {name: schema for name, schema in schemas.items() if name.endswith("Frame")}


def test_every_frame_is_one_named_type_and_none_is_any_or_nameless(generated):
    """A type per frame, named after its component; no `any`, no `AnonymousSchema_N`."""
    frames = payloads()
    assert len(frames) == len(contract().server_frames) + len(contract().client_frames)
    assert set(frames) <= set(generated), sorted(set(frames) - set(generated))
    for name, text in generated.items():
        assert not name.startswith("AnonymousSchema"), f"a nameless type: {name}"
        assert "AnonymousSchema" not in text, name
        assert not re.search(r"\bany\b", code(text)), f"{name} has `any`:\n{text}"


def test_each_frame_type_has_its_wire_names_and_a_required_literal_type(generated):
    """Properties are the payload's, spelled as on the wire (`group_id`), optional exactly
    when the payload does not require them; `type` is the frame's literal."""
    for name, schema in payloads().items():
        fields = {m["name"]: m for m in PROPERTY.finditer(code(generated[name]))}
        assert set(fields) == set(schema["properties"]), name
        for field, found in fields.items():
            assert (found["optional"] == "") == (field in schema["required"]), (name, field)
        assert fields["type"]["type"] == f"'{schema['properties']['type']['const']}'", name


def test_the_generated_union_is_every_server_frame_and_the_client_switches_on_each(generated):
    """`UserSocket` (the union of the `send` operation) is every server frame; the client's
    switch has a case for each (tsc's `never` check makes it handle all of the union)."""
    server = contract().server_frames
    union = re.search(r"type UserSocket = (.+);", generated["UserSocket"])
    assert union, generated["UserSocket"]
    assert set(union[1].split(" | ")) == {
        f"{f.name[0].upper()}{f.name[1:]}Frame" for f in server.values()
    }
    client = (PROJECT / "src" / "client.ts").read_text(encoding="utf-8")
    switch = client.split("export function describe", 1)[1].split("\n}\n", 1)[0]
    assert set(re.findall(r'case "([^"]+)":', switch)) == set(server)


def test_dictionaries_are_the_only_maps(generated):
    """The CLI types a JSON object used as a dictionary (`ready.groups`: group id to seq) as a
    `Map` (Modelina's `mapType`, which the CLI does not let one choose); the client converts
    those at the socket (decode/encode in client.ts). Any other `Map` would be a surprise."""
    for name, schema in payloads().items():
        fields = {m["name"]: m["type"] for m in PROPERTY.finditer(code(generated[name]))}
        for field, declared in schema["properties"].items():
            dictionary = "additionalProperties" in declared and "properties" not in declared
            assert fields[field].startswith("Map<string, ") == dictionary, (name, field)
