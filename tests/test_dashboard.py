"""The Grafana dashboard in docs/ (docs/grafana-dashboard.json): every query in it names
metrics that a freshly started server already shows, and docs/operating.md describes each
panel. In multiprocess mode a labelled metric shows only once one of its label sets exists,
so the server makes the known ones at start; this is what checks it did.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_realtime import NO_LIMITS

from conftest import free_port

DOCS = Path(__file__).resolve().parent.parent / "docs"
DASHBOARD = DOCS / "grafana-dashboard.json"
# PromQL words that are not metric names.
PROMQL = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "max", "min",
    "avg", "count", "topk", "le", "clamp_min", "or", "and", "on", "ignoring", "vector",
}  # fmt: skip


def panels() -> list[dict]:
    board = json.loads(DASHBOARD.read_text())
    found = []
    for panel in board["panels"]:
        found += panel.get("panels", []) + [panel]  # rows may hold panels
    return [panel for panel in found if panel.get("type") != "row"]


def queried_metrics(expression: str) -> set[str]:
    """The metric names of a PromQL expression: its identifiers less functions, keywords,
    label names (inside braces or `by (...)`) and ranges."""
    expression = re.sub(r"\{[^}]*\}", "", expression)
    expression = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expression)
    expression = re.sub(r"\[[^\]]*\]", "", expression)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression))
    return {name for name in names if name not in PROMQL}


def test_the_dashboard_is_grafana_json_with_a_query_per_panel():
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["schemaVersion"] >= 30
    for panel in panels():
        assert panel["title"] and panel["targets"], panel.get("title")
        for target in panel["targets"]:
            assert queried_metrics(target["expr"]), (panel["title"], target["expr"])


def test_docs_describe_every_panel_of_the_dashboard():
    text = (DOCS / "operating.md").read_text()
    for panel in panels():
        assert f"**{panel['title']}**" in text, panel["title"]


@pytest.fixture
def fresh_scrape(serve) -> set[str]:
    port = free_port()
    serve(IM_METRICS_PORT=str(port), **NO_LIMITS)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_every_query_names_metrics_a_freshly_started_server_shows(fresh_scrape):
    missing = {
        (panel["title"], name)
        for panel in panels()
        for target in panel["targets"]
        for name in queried_metrics(target["expr"])
        if name not in fresh_scrape
    }
    assert not missing, sorted(missing)
