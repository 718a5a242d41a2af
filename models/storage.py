"""Keeping media: uploads spooled to disk, then placed in the media store under their hash.

An upload is spooled into `<media folder>/.incoming/` (on the local disk whichever store
is used) while it streams in, hashed as it is written; once accepted it goes to the store
(`models.stores`: the instance folder, or an S3 bucket) under its SHA-256. Identical
uploads share one object; `Media` rows name it by `sha256`. A crash leaves at most a stray
spool file (swept after a day), never a partial object.

Placing and deleting an object happen under a per-hash lock held until the transaction
ends (a PostgreSQL advisory lock, which every process and machine on the database shares;
on SQLite, the database's write lock), after the rows are flushed, so one request never
deletes an object that a concurrent one is giving a new row. The slow part of placing
(fsync, or the upload to S3) runs before the lock. A transaction that fails after placing
an object removes it again (`media.committing`); one whose commit fails after deleting an
object leaves rows that were on their way out without it, which fetch answers 404 (never a
partial object).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from im_api.config import current
from models import locks, stores

logger = logging.getLogger(__name__)

INCOMING = ".incoming"
STALE_SPOOL_SECONDS = 24 * 3600

_swept: set[Path] = set()


def store() -> stores.Store:
    """The media store of the app this process serves."""
    return stores.for_settings(current())


class Spool:
    """An upload being received: a temporary file in the instance media folder's `.incoming/`
    (on the local disk whatever the store), hashed as written."""

    def __init__(self, media_dir: Path | None = None):
        incoming = (media_dir or current().media_dir) / INCOMING
        incoming.mkdir(exist_ok=True)
        _sweep_once(incoming)
        fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        self.path = Path(name)
        self.size = 0
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._sha256 = ""

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        """End of the upload: the bytes are all written (fsync waits until `keep`)."""
        if not self._file.closed:
            self._file.close()
            self._sha256 = self._hash.hexdigest()

    @property
    def sha256(self) -> str:
        if not self._sha256:
            raise RuntimeError("The spool is still being written")
        return self._sha256

    def discard(self) -> None:
        """Forget the upload (nothing happens if it was kept already)."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def keep(spool: Spool) -> str:
    """Put a closed spool in the store as its hash's object; returns the hash.

    Call inside the transaction that adds the row naming the object, after making that row:
    the object then exists before the row is committed, or the row never is. Raises
    MEDIA_STORE_UNAVAILABLE when the store fails.
    """
    sha256 = spool.sha256
    media_store = store()
    media_store.prepare(spool)  # the slow part, before the lock
    _lock(sha256)
    media_store.place(spool)
    spool.discard()  # a no-op once the folder store moved it into place
    return sha256


def forget(sha256: str, still_used) -> None:
    """Delete the hash's object unless `still_used()` (a query for its rows) is true.

    Call after the rows that named the object are deleted, inside that transaction. Raises
    MEDIA_STORE_UNAVAILABLE when the store fails (the transaction then rolls back whole).
    """
    _lock(sha256)
    if still_used():
        return
    store().delete(sha256)
    logger.debug("Media object %s deleted", sha256)


def _lock(sha256: str) -> None:
    """Hold the hash's lock until the transaction ends."""
    locks.media_file(sha256)


def _sweep_once(incoming: Path) -> None:
    """Remove spools a crashed process left behind, once per folder and process."""
    if incoming in _swept:
        return
    _swept.add(incoming)
    limit = time.time() - STALE_SPOOL_SECONDS
    for leftover in incoming.iterdir():
        try:
            if leftover.stat().st_mtime < limit:
                leftover.unlink()
                logger.info("Removed a stale upload spool %s", leftover.name)
        except OSError:
            pass  # another worker swept it first
