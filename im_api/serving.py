"""Answering a GET of a stored media: ETag, one Range, and headers that keep a browser from
running it; the bytes come from the media store (`models.stores`: the folder or S3).

Every answer carries `X-Content-Type-Options: nosniff` and `Content-Security-Policy:
sandbox`; verified images and audio go `inline`, everything else as an `attachment`, both
with an RFC 6266 file name (an ASCII `filename=` and the exact `filename*=UTF-8''...`).

The handler runs on a request thread, which must not wait on a slow client: it answers the
status and headers, opens the range in the store (so a missing object is 404 and a failing
store 503, in the envelope) and leaves it in the request's `FileSlot`; the front
(`im_api.downloads`) sends the bytes from the event loop.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

import flask
from werkzeug.datastructures import Range
from werkzeug.http import parse_range_header

from im_core.errors import ApiError, Error
from models.stores import Chunks, Store

# Where the front leaves a `FileSlot` in the ASGI scope of a media download.
SEND_FILE = "im_api.send_file"
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Accept-Ranges": "bytes",
}


class FileSlot:
    """The opened range of a download, [start, start + length) of its object, to send."""

    def __init__(self):
        self.chunks: Chunks | None = None
        self.length = 0

    def put(self, chunks: Chunks, length: int) -> None:
        """Opened now (`Store.open`), so a deletion after the headers were decided cannot cut
        it, and a store that fails is answered in the envelope."""
        self.chunks = chunks
        self.length = length

    def close(self) -> None:
        if self.chunks is not None:
            self.chunks.close()
            self.chunks = None


def send(store: Store, media, *, inline: bool, fresh_for: int) -> flask.Response:
    """The response to a GET or HEAD of `media` (its object in `store`) for the current
    request: status and headers, the opened range left in the request's `FileSlot` for a
    body to send. A browser may reuse it for `fresh_for` seconds (what its URL has left).

    Raises RANGE_NOT_SATISFIABLE for a single range outside the media, MEDIA_NOT_FOUND when
    the object went meanwhile, MEDIA_STORE_UNAVAILABLE when the store fails.
    """
    request = flask.request
    headers = {
        **SAFE_HEADERS,
        # The signed URL is a credential: no shared cache. The URL stays the same for a while
        # (`models.present.stable_url`), so the browser's copy serves it until it expires.
        "Cache-Control": f"private, max-age={fresh_for}",
        "ETag": f'"{media.sha256}"',
        "Content-Disposition": content_disposition(media.filename, inline),
    }
    if request.if_none_match.contains_weak(media.sha256):
        _ensure_exists(store, media.sha256)
        return flask.Response(status=304, headers=headers)
    span = _range(request, media.sha256, media.size)
    if span is None:
        start, length, status = 0, media.size, 200
    else:
        start, stop = span
        length, status = stop - start, 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{media.size}"
    headers["Content-Length"] = str(length)
    if request.method == "GET" and length:
        chunks = store.open(media.sha256, start, length)
        request.environ["asgi.scope"][SEND_FILE].put(chunks, length)
    else:  # HEAD, or an empty media: no bytes to read, but they must be there
        _ensure_exists(store, media.sha256)
    # No body here: the front sends the bytes (HEAD sends none).
    return flask.Response(status=status, headers=headers, mimetype=media.content_type)


def _ensure_exists(store: Store, sha256: str) -> None:
    if not store.exists(sha256):
        raise ApiError(Error.MEDIA_NOT_FOUND)


def content_disposition(filename: str, inline: bool) -> str:
    """An RFC 6266 Content-Disposition: no CR, LF, quote or control reaches the header."""
    name = "".join(ch for ch in filename if unicodedata.category(ch)[0] != "C") or "download"
    ascii_name = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%' else "_"
        for ch in unicodedata.normalize("NFKD", name)
        if not unicodedata.combining(ch)
    )
    encoded = quote(name.encode("utf-8", "replace"), safe="!#$&+^`|~")
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


_EMPTY_SUFFIX = re.compile(r"\s*bytes\s*=\s*-0+\s*")


def _range(request: flask.Request, sha256: str, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as (start, stop); None to send the whole file."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if_range = request.if_range
    if if_range.date is not None or (if_range.etag and if_range.etag != sha256):
        return None  # the client's copy is another one: it gets the whole file
    parsed: Range | None = parse_range_header(header)
    # A suffix of zero bytes is valid syntax that no byte satisfies (RFC 9110, 14.1.1);
    # Werkzeug reads it as malformed, which would send the whole file.
    empty_suffix = _EMPTY_SUFFIX.fullmatch(header) is not None
    if not empty_suffix and (parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1):
        return None  # not one byte range: RFC 9110 lets us ignore it
    span = None if empty_suffix else parsed.range_for_length(size)
    if span is None:
        raise ApiError(Error.RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
    return span
