"""No log line carries a credential: a URL's query string, a bearer token, or the value of a
token, password or code field.

Our own lines never write one (the access log leaves query strings out); uvicorn's do: its
websocket lines (`"WebSocket /api/ws/user/1/?token=..." [accepted]`, logger uvicorn.error)
write the whole URL. `RedactSecrets` is a logging filter that `im-api serve` puts on its one
handler, so it sees every record of every logger, uvicorn's workers included, and rewrites
a line that holds one of these before it is written.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A path or URL followed by a query string: the query goes (media links carry a signature,
# a socket URL may carry a token someone put there).
_QUERY = re.compile(r"(?P<path>(?:[a-z][a-z0-9+.-]*://[^\s?#\"']*|/[^\s?#\"']*))\?[^\s#\"']+")
_BEARER = re.compile(r"(?P<scheme>\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)
# `token=...`, `"password": "..."` and the like, wherever they were written.
_FIELD = re.compile(
    r"(?P<name>\b(?:access_token|token|password|old_password|new_password|security_code)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` without query strings, bearer tokens or credential fields' values."""
    if "?" in text:
        text = _QUERY.sub(lambda m: f"{m['path']}?{REDACTED}", text)
    text = _BEARER.sub(lambda m: m["scheme"] + REDACTED, text)
    return _FIELD.sub(lambda m: m["name"] + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message holds a credential (see the module's docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that does not format: logging reports it itself
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
