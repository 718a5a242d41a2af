"""Generate the Python client of the IM API with openapi-python-client.

    python clients/python/generate.py                      # from openapi/openapi.yaml
    python clients/python/generate.py --spec http://127.0.0.1:8000/api/openapi.json
    python clients/python/generate.py --output-path ../im-api-client --meta uv

The spec's operationIds name the server's handler functions (`handlers.user.login`), which
the generator would turn into modules such as `api/account/handlers_user_login.py`; the
client is generated from a copy of the spec whose operationIds keep only their last part
(`api/account/login.py`). Everything else is the spec as it is. Generation fails on any
warning of the generator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "openapi" / "openapi.yaml"
CONFIG = HERE / "config.yaml"


def load_spec(source: str) -> dict:
    """The spec from a file (YAML or JSON) or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:  # noqa: S310
            return json.load(response)
    return yaml.safe_load(Path(source).read_text(encoding="utf-8"))


def short_operation_ids(spec: dict) -> dict:
    """The spec with `handlers.user.login` shortened to `login` everywhere it is named.

    Operations are named in `operationId` and in the `operationId` of OpenAPI links.
    Raises ValueError when two operations would get the same name.
    """
    spec = json.loads(json.dumps(spec))  # a deep copy
    short: dict[str, str] = {}
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                full = operation["operationId"]
                name = full.rsplit(".", 1)[-1]
                if name in short.values():
                    raise ValueError(f"two operations would be named {name!r}")
                short[full] = name
                operation["operationId"] = name
    _rename_links(spec, short)
    return spec


def _rename_links(node, short: dict[str, str]) -> None:
    if isinstance(node, dict):
        links = node.get("links")
        if isinstance(links, dict):
            for link in links.values():
                if isinstance(link, dict) and link.get("operationId") in short:
                    link["operationId"] = short[link["operationId"]]
        for value in node.values():
            _rename_links(value, short)
    elif isinstance(node, list):
        for value in node:
            _rename_links(value, short)


def generate(spec_source: str, output_path: Path, meta: str = "none") -> str:
    """Generate the client into `output_path` (replaced if it exists); returns the log.

    Raises subprocess.CalledProcessError (with the generator's output) when generation
    fails or warns.
    """
    spec = short_operation_ids(load_spec(spec_source))
    # The generator formats its output with ruff, looked up on PATH: use this Python's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as scratch:
        spec_file = Path(scratch) / "openapi.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(spec_file),
                "--config",
                str(CONFIG),
                "--meta",
                meta,
                "--output-path",
                str(output_path),
                "--overwrite",
                "--fail-on-warning",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    log = result.stdout + result.stderr
    if result.returncode != 0 or "Warning" in log:
        raise subprocess.CalledProcessError(result.returncode or 1, result.args, log)
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument(
        "--spec", default=str(SPEC), help="spec file or URL (default: openapi/openapi.yaml)"
    )
    parser.add_argument(
        "--output-path",
        type=Path,
        default=Path("im_api_client"),
        help="where to write the client (default ./im_api_client; replaced if it exists)",
    )
    parser.add_argument(
        "--meta",
        default="none",
        choices=["none", "poetry", "setup", "pdm", "uv"],
        help="none: just the package; otherwise an installable project around it",
    )
    args = parser.parse_args(argv)
    try:
        print(generate(args.spec, args.output_path, args.meta))
    except subprocess.CalledProcessError as failed:
        print(failed.output, file=sys.stderr)
        return 1
    print(f"Client written to {args.output_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
