"""The contract passes a mainstream OpenAPI linter: Spectral's `spectral:oas` rules.

Runs conformance/lint/run.sh (Spectral pinned by conformance/lint/package-lock.json, ruleset
.spectral.yaml): no error allowed. Skipped when node or npm is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "lint" / "run.sh"


def test_the_spec_has_no_spectral_errors():
    """openapi/openapi.yaml: `spectral lint` reports no error (warnings are allowed)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: Spectral cannot run")
    result = subprocess.run([str(RUN)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
