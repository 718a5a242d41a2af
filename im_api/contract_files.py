"""The contract files (openapi/), each text parsed once per process.

openapi.yaml is some 5,000 lines. PyYAML's pure-Python parser took about a second to read
it, and an app read it three times (Connexion, the published copy, the check of its
comments): several seconds in every worker at start, and in every test that builds an app,
most of the test suite's time on a slow 2-core machine. libyaml's parser, which PyYAML's
wheels carry, reads the same document in a third of that, and each text is parsed once.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

# The C parser where PyYAML was built with libyaml; its result is safe_load's (a test checks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read(path: Path):
    """The YAML file at `path`, parsed (see `parse`)."""
    return parse(path.read_text(encoding="utf-8"))


def parse(text: str):
    """`text` parsed as `yaml.safe_load` would: a copy of its own for each caller, which may
    change it (Connexion does)."""
    return copy.deepcopy(_parsed(text))


@functools.lru_cache(maxsize=8)
def _parsed(text: str):
    return yaml.load(text, Loader=_LOADER)
