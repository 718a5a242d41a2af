"""The published spec, as the frontend teams' tools read it from a running server.

openapi-generator 7 (the jar of PyPI's `openapi-generator-cli`, on Java) validates the spec at
/api/openapi.json and generates the `python`, `typescript-fetch` and `go` clients with no
warning about it, naming models after the spec's components and methods after its
operationIds; the TypeScript it generates compiles. Redocly's `recommended` rules find no
error and no warning in the served spec. (openapi-python-client and openapi-typescript read
the same URL in test_python_client.py and test_typescript_client.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).parent / "openapi-generator-cli"
LINT = ROOT / "conformance" / "lint"
TYPESCRIPT = ROOT / "clients" / "typescript"

# Printed by openapi-generator 7.26's python generator for any spec, even one with a single
# operation and a single schema: it names no part of the spec. (The other generators print
# it for a media type's named `examples` written inline, so the spec keeps them in
# `components/examples`; they print nothing.)
PYTHON_GENERATOR_NOISE = "Failed to get the schema name: null"

needs_java = pytest.mark.skipif(
    shutil.which("java") is None or not GENERATOR.exists(),
    reason="openapi-generator needs Java (clients/install.sh installs Debian's) and the "
    "openapi-generator-cli package (test extra)",
)
needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm are needed"
)


def spec_url(server) -> str:
    return f"{server.url}/openapi.json"


def generator(*args: str) -> str:
    result = subprocess.run(
        [str(GENERATOR), *args], capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def warnings(log: str, noise: str | None = None) -> list[str]:
    """The generator's warnings, less `noise`, a line it prints for any spec."""
    found = [line for line in log.splitlines() if re.search(r"\bWARN\b|\bWARNING\b", line)]
    return [line for line in found if noise is None or noise not in line]


@needs_java
def test_openapi_generator_validates_the_served_spec(published):
    """`openapi-generator-cli validate -i .../api/openapi.json`: no issue."""
    log = generator("validate", "-i", spec_url(published))
    assert "No validation issues detected" in log, log
    assert warnings(log) == []


# generator -> (a model file named after a component, an operation's name in the API code)
GENERATED = {
    "python": ("openapi_client/models/signed_in.py", "def change_name("),
    "typescript-fetch": ("models/SignedIn.ts", "async changeName("),
    "go": ("model_signed_in.go", ") ChangeName("),
}


@needs_java
@pytest.mark.parametrize("name", list(GENERATED))
def test_openapi_generator_makes_a_clean_client_named_by_the_spec(published, tmp_path, name):
    """Generation from the live URL: no warning about the spec; models carry the components'
    names (SignedIn, ApiError, RegisterRequest, ...), none is an inline leftover
    (`register_200_response`), and methods carry the operationIds."""
    output = tmp_path / name
    log = generator("generate", "-i", spec_url(published), "-g", name, "-o", str(output))
    noise = PYTHON_GENERATOR_NOISE if name == "python" else None
    assert warnings(log, noise) == [], "\n".join(warnings(log, noise))

    model_file, method = GENERATED[name]
    assert (output / model_file).is_file(), sorted(p.name for p in output.rglob("*"))[:80]
    files = [path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file()]
    inline = [f for f in files if re.search(r"_20\d_response|[Ii]nline_?[Oo]bject|Response20\d", f)]
    assert inline == []
    for component in ("ApiError", "RegisterRequest", "GroupResponse", "Uploaded", "ErrorCode"):
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", component).lower()
        assert any(Path(f).stem in (component, snake, f"model_{snake}") for f in files), component
    code = "\n".join(
        path.read_text(errors="replace")
        for path in output.rglob("*")
        if path.suffix in (".py", ".ts", ".go") and "test" not in path.parts
    )
    assert method in code
    assert "handlers_user" not in code and "handlersUser" not in code and "HandlersUser" not in code


@needs_java
@needs_node
def test_the_generated_typescript_fetch_client_compiles(published, tmp_path):
    """`tsc --noEmit` (strict) on what typescript-fetch generated from the live URL."""
    output = tmp_path / "typescript-fetch"
    generator("generate", "-i", spec_url(published), "-g", "typescript-fetch", "-o", str(output))
    install_typescript()
    result = subprocess.run(
        [
            "node",
            str(TYPESCRIPT / "node_modules" / "typescript" / "bin" / "tsc"),
            "--noEmit",
            "--strict",
            "--target",
            "ES2020",
            "--lib",
            "ES2020,DOM",
            "--module",
            "ES2020",
            "--moduleResolution",
            "node",
            "--skipLibCheck",
            str(output / "index.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_node
def test_redocly_recommended_finds_nothing_in_the_served_spec(published):
    """`redocly lint` (recommended rules) on /api/openapi.json: no error, no warning."""
    install(LINT, ignore_scripts=True)
    result = subprocess.run(
        [
            str(LINT / "node_modules" / ".bin" / "redocly"),
            "lint",
            "--config",
            str(LINT / "redocly.yaml"),
            "--max-problems",
            "1000",
            spec_url(published),
        ],
        env={**os.environ, "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "REDOCLY_TELEMETRY": "off"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Your API description is valid" in report, report
    assert not re.search(r"You have \d+ warning", report), report


def install_typescript() -> None:
    install(TYPESCRIPT)


def install(project: Path, ignore_scripts: bool = False) -> None:
    """`npm ci`, unless node_modules already holds what package-lock.json pins."""
    installed = project / "node_modules" / ".package-lock.json"
    lock = project / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(
            command + (["--ignore-scripts"] if ignore_scripts else []),
            cwd=project,
            check=True,
            capture_output=True,
            timeout=600,
        )
