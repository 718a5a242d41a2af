"""An error answer's body as tests compare it: the envelope less its `request_id`, which
every error answer carries (checked here to be the response's `X-Request-ID`)."""

from __future__ import annotations


def error_body(response) -> dict:
    body = response.json()
    assert body.pop("request_id") == response.headers["x-request-id"], body
    return body
