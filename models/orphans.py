"""Stored media that no row names, and removing it.

An upload's object is placed before the row that names it is committed (`models.storage`),
so a server killed between the two (kill -9, a lost machine) leaves an object no row names:
stored, never served, never deleted. `reconcile` finds such objects in the media store (the
folder or the bucket) and removes those older than a grace period (`IM_MEDIA_ORPHAN_GRACE`):
a younger one may be an upload about to commit.

Each removal goes through `storage.forget` under the hash's lock, the one a placing holds
until its transaction ends, and checks again that no row names the object: an object a
committed row names is never removed, nor one an upload in flight is giving a row. An
upload that found an old leftover of the same bytes and skipped sending them (S3) sends
them again under that lock (`S3Store.place`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time

from pony.orm import db_session, select

from models import storage
from models.entities import Media

logger = logging.getLogger(__name__)

# Objects looked up in the database at once.
BATCH = 500


@dataclasses.dataclass
class Reconciled:
    checked: int = 0  # objects in the store
    removed: int = 0  # no row named them, and they were older than the grace period
    recent: int = 0  # no row named them yet, but younger than it: left alone

    def __str__(self) -> str:
        return (
            f"{self.checked} stored objects checked, {self.removed} removed (no row named "
            f"them), {self.recent} without a row kept for now (within the grace period)"
        )


def reconcile(grace_seconds: float) -> Reconciled:
    """Remove the objects of the media store that no `Media` row names and that were last
    written more than `grace_seconds` ago. Needs the app's settings installed and the
    database bound. Raises MEDIA_STORE_UNAVAILABLE when the store fails."""
    media_store = storage.store()
    cutoff = time.time() - grace_seconds
    done = Reconciled()
    listed = media_store.objects()
    while batch := list(itertools.islice(listed, BATCH)):
        done.checked += len(batch)
        with db_session:
            hashes = [sha256 for sha256, _ in batch]
            named = set(select(m.sha256 for m in Media if m.sha256 in hashes))
        for sha256, modified in batch:
            if sha256 in named:
                continue
            if modified > cutoff:
                done.recent += 1
                continue
            with db_session:
                if storage.forget(sha256, lambda sha256=sha256: Media.exists(sha256=sha256)):
                    done.removed += 1
                    logger.info("Removed media object %s: no row names it", sha256)
    return done
