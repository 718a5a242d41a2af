"""Keeping media: uploads spooled to disk, then placed in the media store under their hash.

An upload is spooled into `<media folder>/.incoming/` (on the local disk whichever store
is used) while it streams in, hashed as it is written; once accepted it goes to the store
(`models.stores`: the instance folder, or an S3 bucket) under its SHA-256. Identical
uploads share one object; `Media` rows name it by `sha256`. A crash leaves at most a stray
spool file (swept after a day), never a partial object, or an object no row names (between
placing it and committing its row), which `models.orphans` removes after a grace period.

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

import logging

from im_core.config import current
from models import locks, stores
from models.spool import Spool

logger = logging.getLogger(__name__)


def store() -> stores.Store:
    """The media store of the app this process serves."""
    return stores.for_settings(current())


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


def forget(sha256: str, still_used) -> bool:
    """Delete the hash's object unless `still_used()` (a query for its rows) is true;
    whether it was deleted.

    Call after the rows that named the object are deleted, inside that transaction. Raises
    MEDIA_STORE_UNAVAILABLE when the store fails (the transaction then rolls back whole).
    """
    _lock(sha256)
    if still_used():
        return False
    store().delete(sha256)
    logger.debug("Media object %s deleted", sha256)
    return True


def _lock(sha256: str) -> None:
    """Hold the hash's lock until the transaction ends."""
    locks.media_file(sha256)
