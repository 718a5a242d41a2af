"""Generate the Python client of the IM API with openapi-python-client.

    python clients/python/generate.py --spec http://127.0.0.1:8000/api/openapi.json
    python clients/python/generate.py                      # from openapi/openapi.yaml
    python clients/python/generate.py --output-path ../im-api-client --meta uv

The generator reads the spec as it is, from the running server or the file: nothing is
rewritten first. The spec's operationIds are the client's names (`login`, `changeName` ->
`im_api_client.api.account.change_name`), its component names the models' (`SignedIn`).
Generation fails on any warning of the generator.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "openapi" / "openapi.yaml"
CONFIG = HERE / "config.yaml"


def generate(spec_source: str, output_path: Path, meta: str = "none") -> str:
    """Generate the client into `output_path` (replaced if it exists); returns the log.

    `spec_source` is a file or an http(s) URL. Raises subprocess.CalledProcessError (with
    the generator's output) when generation fails or warns.
    """
    source = ["--url" if spec_source.startswith(("http://", "https://")) else "--path"]
    # The generator formats its output with ruff, looked up on PATH: use this Python's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        *source,
        spec_source,
        "--config",
        str(CONFIG),
        "--meta",
        meta,
        "--output-path",
        str(output_path),
        "--overwrite",
        "--fail-on-warning",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    log = result.stdout + result.stderr
    if result.returncode != 0 or "Warning" in log:
        raise subprocess.CalledProcessError(result.returncode or 1, command, log)
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
