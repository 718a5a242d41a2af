"""Rules on text that the spec cannot state to every tool.

JSON can carry a lone surrogate (half of a UTF-16 pair) and NUL; no database stores the
first, PostgreSQL stores neither, and clients choke on both. A pattern could say so, but
Rust's regex (jsonschema-rs, hence schemathesis) refuses surrogate escapes and drops such a
pattern, so the server checks.
"""

from __future__ import annotations

from im_core.errors import ApiError, Error, field_error


def has_lone_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def refuse_lone_surrogates(field: str, text: str) -> None:
    """Raises INVALID_REQUEST naming `field` (a top-level field of the body) when `text`
    holds a lone surrogate."""
    if has_lone_surrogate(text):
        raise invalid_text(field, "unicode", "is not valid Unicode (a lone surrogate)")


def refuse_nul(field: str, text: str) -> None:
    """Raises INVALID_REQUEST naming `field` when `text` holds NUL."""
    if "\x00" in text:
        raise invalid_text(field, "pattern", "must not hold NUL")


def invalid_text(field: str, rule: str, message: str) -> ApiError:
    return ApiError(
        Error.INVALID_REQUEST,
        f"Invalid request: '{field}' {message}",
        extra={"errors": [field_error("body", f"/{field}", rule, message)]},
    )
