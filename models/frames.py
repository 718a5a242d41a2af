"""The socket's server frames as the text that is sent: the wire form of the models' views.

Made where the change they announce is made (a message's frame in the request that posts it,
on SQLite) or where the hub reads it back (PostgreSQL); either way rendered once and the same
text queued on every socket that gets it. The contract is `openapi/asyncapi.yaml`.
"""

from __future__ import annotations

import json


def dumps(frame: dict) -> str:
    """A server frame as sent: compact JSON, non-ASCII as is (smaller frames)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def message_created(message: dict) -> str:
    """The `message.created` frame of a message (its `models.messages.view`)."""
    return dumps({"type": "message.created", "message": message})


def message_updated(message: dict) -> str:
    """The `message.updated` frame of a changed message (its new state)."""
    return dumps({"type": "message.updated", "message": message})


def session_ended(reason: str) -> str:
    return dumps({"type": "session.ended", "reason": reason})
