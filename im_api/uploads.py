"""Streaming multipart uploads: the request body validator for `multipart/form-data`.

Connexion's own multipart validator keeps the whole body in memory, answers 500 for a
malformed body or for a text field sent under the file part's name, and replays every
byte to Flask, which parses it again. This one streams the body through python-multipart
into a spool file beside the media files (hashing it on the way), stops at the kind's byte
limit, and hands the spooled file to the handler through the ASGI scope (`received()`);
Flask gets an empty body. An upload thus costs a few chunks of memory whatever its size.

The operation's schema names the one file part (`image`, `expression`, `file`, `voice`,
`avatar`), and the part names its limit (`max_<part>_bytes`). Errors:

* MALFORMED_BODY: not valid multipart (no boundary, broken framing, cut short);
* MISSING_PART: the file part is missing, sent as a text field, or empty with an empty
  file name (a browser's "no file chosen");
* INVALID_REQUEST: any other part, or the file part twice;
* MEDIA_TOO_LARGE: the file passed the limit (reading stops there).
"""

from __future__ import annotations

import dataclasses

import flask
from connexion.validators import AbstractRequestBodyValidator
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope

from im_api.field_errors import entry, pointer
from im_core import metrics
from im_core.config import current
from im_core.errors import ApiError, Error
from models.spool import Spool

# The `errors` entries of a part the upload does not have, and of its one part sent twice.
_STRAY = "is not a part of this upload"
_TWICE = "is sent more than once"

RECEIVED = "im_api.upload"
MAX_HEADER_BYTES = 8192  # one header line of a part; more is not a browser's upload
# A list in the scope of what to discard when the request ends, whatever happened to it
# (the body-limit middleware calls `discard_all`); keeping a spool makes its discard a no-op.
SPOOLS = "im_api.spools"


@dataclasses.dataclass
class Received:
    """The file part of an upload, spooled to disk and closed."""

    part: str
    filename: str
    spool: Spool


def received() -> Received:
    """The upload of the current request (for a handler of a multipart operation)."""
    return flask.request.environ["asgi.scope"][RECEIVED]


def discard_all(spools: list) -> None:
    """Remove whatever the finished request spooled and did not keep."""
    while spools:
        spools.pop().discard()


class MultipartUploadValidator(AbstractRequestBodyValidator):
    """Streams the one file part of an upload to a spool; see the module's docstring."""

    def __init__(self, *, schema: dict, encoding: str, strict_validation: bool, **kwargs):
        super().__init__(schema=schema, encoding=encoding, strict_validation=strict_validation)
        self._part = file_part(schema)
        self._limit = getattr(current(), f"max_{self._part}_bytes")

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        reader = _Reader(self._part, self._limit, _boundary(scope))
        scope.get(SPOOLS, []).append(reader)
        try:
            more_body = True
            while more_body:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ApiError(Error.MALFORMED_BODY, "The client left during the upload")
                reader.feed(message.get("body", b""))
                more_body = message.get("more_body", False)
            upload = reader.finish()
        except BaseException:
            reader.discard()
            raise
        return _empty_body(receive), _handing_over(scope, upload)


def file_part(schema: dict) -> str:
    """The name of the one binary property of an upload schema."""
    parts = [
        name
        for name, prop in schema.get("properties", {}).items()
        if prop.get("type") == "string" and prop.get("format") == "binary"
    ]
    if len(parts) != 1:
        raise ValueError(f"An upload schema names exactly one file part, not {parts}")
    return parts[0]


class _Reader:
    """Feeds python-multipart and keeps the file part in a spool."""

    def __init__(self, part: str, limit: int, boundary: bytes):
        self.part = part
        self.limit = limit
        self.spool: Spool | None = None
        self.filename = ""
        self.seen_bytes = False
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_end": self._on_end,
                },
            )
        except FormParserError as error:
            raise _malformed(error) from None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.seen_bytes = True
        try:
            self._parser.write(chunk)
        except FormParserError as error:
            raise _malformed(error) from None

    def finish(self) -> Received:
        if not self.seen_bytes:
            raise ApiError(Error.MISSING_PART, part=self.part)
        if not self.ended:
            raise ApiError(Error.MALFORMED_BODY, "Malformed request body: the multipart ends early")
        if self.spool is None or (self.spool.size == 0 and not self.filename):
            raise ApiError(Error.MISSING_PART, part=self.part)
        self.spool.close()
        return Received(self.part, self.filename, self.spool)

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._check_header_size()

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._header_name) + len(self._header_value) > MAX_HEADER_BYTES:
            raise ApiError(
                Error.MALFORMED_BODY, "Malformed request body: a part header is too long"
            )

    def _on_header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._disposition)
        if disposition != b"form-data" or b"name" not in options:
            raise ApiError(
                Error.MALFORMED_BODY,
                "Malformed request body: a part without Content-Disposition: form-data; name",
            )
        name = options[b"name"].decode("utf-8", "replace")
        if name != self.part:
            raise ApiError(
                Error.INVALID_REQUEST,
                f"Invalid request: unexpected part {name[:64]!r}",
                extra={"errors": [entry("body", pointer([name]), "additionalProperties", _STRAY)]},
            )
        if self.spool is not None:
            raise ApiError(
                Error.INVALID_REQUEST,
                f"Invalid request: more than one [{self.part}]",
                extra={"errors": [entry("body", pointer([self.part]), "maxItems", _TWICE)]},
            )
        if b"filename" not in options:  # a text field, not a file
            raise ApiError(Error.MISSING_PART, part=self.part)
        self.filename = options[b"filename"].decode("utf-8", "replace")
        # Written here, in the event loop: a chunk into the page cache costs less than a
        # hop to a thread. The fsync waits until the upload is accepted (in the handler).
        self.spool = Spool()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.spool.write(data[start:end])
        if self.spool.size > self.limit:
            metrics.refused("body_size")
            raise ApiError(Error.MEDIA_TOO_LARGE, part=self.part, limit=self.limit)

    def _on_end(self) -> None:
        self.ended = True


def _boundary(scope: Scope) -> bytes:
    _, options = parse_options_header(Headers(scope=scope).get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if not boundary:
        raise ApiError(Error.MALFORMED_BODY, "Malformed request body: no multipart boundary")
    return boundary


def _malformed(error: Exception) -> ApiError:
    return ApiError(Error.MALFORMED_BODY, f"Malformed request body: {str(error)[:200]}")


def _handing_over(scope: Scope, upload: Received) -> Scope:
    """The scope Flask sees: the upload in it, and an empty body declared."""
    scope = {**scope, RECEIVED: upload, "headers": list(scope["headers"])}
    headers = MutableHeaders(scope=scope)
    del headers["transfer-encoding"]
    headers["content-length"] = "0"
    return scope


def _empty_body(receive: Receive) -> Receive:
    sent = False

    async def receive_empty() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return receive_empty
