"""The contract files are parsed once per process, the same way PyYAML's `safe_load` reads
them (`im_api.contract_files`).

Every worker builds its app from openapi.yaml at start, and this suite builds one app per
test: PyYAML's pure-Python parser took several seconds an app on a slow machine (three reads
of a 5,000-line file), most of the suite's time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from im_api import contract_files
from im_api.app import create_app

CONTRACTS = Path(__file__).resolve().parent.parent / "openapi"


@pytest.mark.parametrize("name", ["openapi.yaml", "asyncapi.yaml"])
def test_a_contract_reads_as_safe_load_reads_it(name):
    text = (CONTRACTS / name).read_text(encoding="utf-8")
    assert contract_files.parse(text) == yaml.safe_load(text)


def test_each_reader_gets_a_copy_of_its_own():
    text = (CONTRACTS / "openapi.yaml").read_text(encoding="utf-8")
    first = contract_files.parse(text)
    first["paths"].clear()
    first["info"]["title"] = "changed"
    again = contract_files.parse(text)
    assert again["paths"] and again["info"]["title"] != "changed"


def test_a_second_app_parses_no_yaml(settings, monkeypatch):
    create_app(settings)
    parses = []
    load = yaml.load

    def counted(*args, **kwargs):
        parses.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(yaml, "load", counted)
    create_app(settings)
    assert parses == []
