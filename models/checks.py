"""Rules on text that the spec cannot state to every tool.

JSON can carry a lone surrogate (half of a UTF-16 pair) and NUL; no database stores the
first, PostgreSQL stores neither, and clients choke on both. A pattern could say so, but
Rust's regex (jsonschema-rs, hence schemathesis) refuses surrogate escapes and drops such a
pattern, so the server checks.
"""

from __future__ import annotations

from im_core.errors import ApiError, Error


def has_lone_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def refuse_lone_surrogates(field: str, text: str) -> None:
    """Raises INVALID_REQUEST naming `field` when `text` holds a lone surrogate."""
    if has_lone_surrogate(text):
        raise ApiError(Error.INVALID_REQUEST, f"Invalid request: '{field}' is not valid Unicode")
