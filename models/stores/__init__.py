"""Where media bytes live: the instance folder (`local`) or an S3-compatible bucket (`s3`),
chosen by `IM_MEDIA_URL`.

Objects are named by the SHA-256 of their bytes, so identical uploads share one. A store
does no bookkeeping of its own: `models.storage` decides when to place and delete an
object (under the per-hash lock, in the transaction of the rows that name it), and the
serving code reads byte ranges back through `Store.open`.

Failures of the store itself are raised as MEDIA_STORE_UNAVAILABLE (503); an object that
is not there as MEDIA_NOT_FOUND (404).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from im_core.config import Settings
    from models.spool import Spool

# How an object's name looks: the lower-case hex SHA-256 of its bytes.
SHA256 = re.compile(r"[0-9a-f]{64}")
# Bytes read from a store at a time for a client: small enough that hundreds of stalled
# clients hold little memory (about a chunk each above what the kernel buffers), large
# enough that a fast one costs few sends.
CHUNK = 64 * 1024


class Chunks(Protocol):
    """The bytes of one range, read a chunk at a time; `close()` frees what it holds (the
    file, the connection) whether or not it was read to the end, and may be called twice.
    `reads_in_loop`, when present and true, says a read is quick enough (a local file, in
    the page cache) for the event loop to do itself."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Store(Protocol):
    """The operations every media store offers. Every call may block on I/O: from async
    code, run it in a thread."""

    def describe(self) -> str:
        """The store in words for logs (no secret)."""

    def prepare(self, spool: Spool) -> None:
        """The slow part of keeping a closed spool, done before any lock is taken: make its
        bytes durable (the folder), or upload them under their hash unless they are there
        (S3). Nothing a reader sees depends on it yet."""

    def place(self, spool: Spool) -> None:
        """Make the spool's object exist under its hash (cheap after `prepare`). Called under
        the hash's lock, so no deletion of the same hash runs meanwhile."""

    def delete(self, sha256: str) -> None:
        """Delete the object (nothing happens if it is not there). Called under the lock."""

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str, start: int, length: int) -> Chunks:
        """The bytes [start, start + length) of the object, streamed as they are read.

        Opened eagerly, so a missing object (MEDIA_NOT_FOUND) or an unavailable store
        (MEDIA_STORE_UNAVAILABLE) is raised here, before any response has started.
        """

    def unreachable(self, timeout: float) -> str | None:
        """Why the store cannot be used now, in a few words; None when it can (a readiness
        check, answered within about `timeout` seconds)."""

    def objects(self) -> Iterator[tuple[str, float]]:
        """Every object stored: (its hash, when it was last written, in seconds since the
        epoch), in no particular order; read as they are listed (`models.orphans`)."""


_stores: dict[tuple, Store] = {}
_lock = threading.Lock()


def for_settings(settings: Settings) -> Store:
    """The store `settings` name, made once per distinct configuration (its clients are
    shared by the threads of the process). Raises ValueError naming IM_MEDIA_URL when it is
    malformed, or when no credentials are found for S3."""
    key = (
        settings.media_url,
        str(settings.media_dir),
        settings.media_timeout,
        settings.media_attempts,
    )
    store = _stores.get(key)
    if store is None:
        with _lock:
            store = _stores.get(key)
            if store is None:
                if len(_stores) > 256:  # tests make an app per test; a server makes one
                    _stores.clear()
                store = _stores[key] = _make(settings)
    return store


def _make(settings: Settings) -> Store:
    if not settings.media_url:
        from models.stores.local import LocalStore

        return LocalStore(settings.media_dir)
    if not settings.media_url.startswith("s3://"):
        raise ValueError(
            "IM_MEDIA_URL must be empty (the instance folder) or s3://bucket[/prefix]?..."
        )
    from models.stores.s3 import S3Store, parse_url

    return S3Store(parse_url(settings.media_url), settings.media_timeout, settings.media_attempts)


async def async_chunks(chunks: Chunks) -> AsyncIterator[bytes]:
    """`chunks` for an ASGI sender: each read of a remote store runs in a thread, so a slow
    store never holds the event loop (a local file is read in the loop: a hop to a thread
    costs more than a read of the page cache); closed at the end, also when the consumer
    stops early."""
    iterator = iter(chunks)
    in_loop = getattr(chunks, "reads_in_loop", False)
    try:
        while True:
            chunk = (
                next(iterator, None) if in_loop else await asyncio.to_thread(next, iterator, None)
            )
            if chunk is None:
                return
            yield chunk
    finally:
        if in_loop:
            chunks.close()
        else:
            await asyncio.to_thread(chunks.close)
