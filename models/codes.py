"""Email codes: sending, checking and consuming them. Not implemented yet (issue 4)."""

from __future__ import annotations

from im_api.errors import ApiError, Error


def send(email: str, purpose: str, session=None) -> dict:
    raise ApiError(Error.NOT_IMPLEMENTED, "Email codes are not implemented yet")


def consume(email: str, purpose: str, code: str | None) -> None:
    raise ApiError(Error.NOT_IMPLEMENTED, "Email codes are not implemented yet")


def login(email: str, code: str):
    raise ApiError(Error.NOT_IMPLEMENTED, "Email codes are not implemented yet")
