"""Content-addressed media files: one file per SHA-256, `<media folder>/<sha256>`.

An upload is spooled into `<media folder>/.incoming/` while it streams in, hashed as it is
written; once accepted it is fsynced and renamed into place with `os.replace`, so a reader
sees a whole file or none, and a crash leaves at most a stray spool file (swept after a
day), never a partial media file. Identical uploads share one file; `Media` rows name it
by `sha256`.

Placing and deleting a file happen under a per-hash lock held until the transaction ends
(a PostgreSQL advisory lock; on SQLite, the database's write lock), after the rows are
flushed, so one request never deletes a file that a concurrent one is giving a new row.
A transaction that fails after placing a file removes it again (`media.committing`); one
whose commit fails after deleting a file leaves rows that were on their way out without
their file, which fetch answers 404 (never a partial file).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from pony.orm import flush

from im_api.config import current
from models.database import db

logger = logging.getLogger(__name__)

INCOMING = ".incoming"
STALE_SPOOL_SECONDS = 24 * 3600

_swept: set[Path] = set()


def path_of(sha256: str) -> Path:
    """Where the file with this hash lives (it may not exist)."""
    return current().media_dir / sha256


class Spool:
    """An upload being received: a temporary file next to the media files, hashed as written."""

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
    """Move a closed spool into place as its hash's file; returns the hash.

    Call inside the transaction that adds the row naming the file, after that row is
    flushed: the file and the row then appear together, or the row never does.
    """
    sha256 = spool.sha256
    with open(spool.path, "rb") as written:
        os.fsync(written.fileno())  # before the lock: a slow disk holds no one else up
    _lock(sha256)
    target = path_of(sha256)
    if target.exists():
        spool.discard()  # the same bytes are stored already
        return sha256
    os.replace(spool.path, target)
    _fsync_dir(target.parent)
    return sha256


def forget(sha256: str, still_used) -> None:
    """Delete the hash's file unless `still_used()` (a query for its rows) is true.

    Call after the rows that named the file are deleted and flushed, inside that
    transaction.
    """
    _lock(sha256)
    if still_used():
        return
    path_of(sha256).unlink(missing_ok=True)
    logger.debug("Media file %s deleted", sha256)


def _lock(sha256: str) -> None:
    """Hold the hash's lock until the transaction ends (`db.execute` opens one if needed)."""
    flush()
    if db.provider_name == "postgres":
        key = int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)
        db.execute("SELECT pg_advisory_xact_lock($key)", {}, {"key": key})
    else:
        # SQLite has one writer at a time: inside a transaction Pony began IMMEDIATE, this
        # process holds the write lock until the transaction ends.
        db.execute("SELECT 1")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
