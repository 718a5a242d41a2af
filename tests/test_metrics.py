"""Metrics in the Prometheus text format, off the public API unless a setting names where.

In-process here (one process, prometheus_client's own registry); a real two-worker server in
multiprocess mode, and every metric moving as its event happens, are in
tests/test_operating_live.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from im_api.app import create_app
from im_core.config import Settings, SettingsError


def samples(text: str) -> dict[tuple, float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_off_the_public_api_by_default(client):
    for path in ("/metrics", "/api/metrics"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == 1005


@pytest.fixture
def metrics_client(settings):
    app = create_app(dataclasses.replace(settings, metrics_path="/metrics"))
    with app.test_client() as client:
        yield client


def test_a_metrics_path_answers_the_prometheus_text_format(metrics_client):
    response = metrics_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"im_http_request_duration_seconds", "im_ws_open_sockets"} <= names


def test_a_request_is_counted_under_its_operation_id_and_status(metrics_client):
    key = (
        "im_http_request_duration_seconds_count",
        (("operation", "checkHealth"), ("status", "200")),
    )
    before = samples(metrics_client.get("/metrics").text).get(key, 0.0)
    assert metrics_client.get("/api/health").status_code == 200
    after = samples(metrics_client.get("/metrics").text)[key]
    assert after == before + 1  # the scrapes themselves are not counted


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"IM_METRICS_PATH": "metrics"}, "IM_METRICS_PATH"),
        ({"IM_METRICS_PATH": "/api/metrics"}, "IM_METRICS_PATH"),
        ({"IM_METRICS_PORT": "70000"}, "IM_METRICS_PORT"),
        ({"IM_LOG_FORMAT": "xml"}, "IM_LOG_FORMAT"),
    ],
)
def test_a_wrong_operating_setting_stops_the_start_naming_it(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ).check()


def test_the_operating_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "IM_METRICS_PORT": "9464",
            "IM_METRICS_HOST": "0.0.0.0",
            "IM_METRICS_PATH": "/internal/metrics",
            "IM_LOG_FORMAT": "json",
            "IM_READY_TIMEOUT": "1.5",
        }
    )
    assert (settings.metrics_port, settings.metrics_host) == (9464, "0.0.0.0")
    assert (settings.metrics_path, settings.log_format) == ("/internal/metrics", "json")
    assert settings.ready_timeout == 1.5
    defaults = Settings.from_env({})
    assert (defaults.metrics_port, defaults.metrics_path, defaults.log_format) == (0, "", "text")
