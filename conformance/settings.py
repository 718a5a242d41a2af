"""Run sizes, from the environment (see `conftest.py`)."""

from __future__ import annotations

import os

# Generated requests per operation and mode; scenarios of the stateful run.
EXAMPLES = int(os.environ.get("IM_CONFORMANCE_EXAMPLES", "25"))
