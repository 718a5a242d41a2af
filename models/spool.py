"""An upload being received: spooled to a temporary file on the local disk while it streams
in, hashed as it is written, before `models.storage` keeps it in the media store.

A crash leaves at most a stray spool file, swept after a day by the next process that
spools into the same folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from im_core.config import current

logger = logging.getLogger(__name__)

INCOMING = ".incoming"
STALE_SPOOL_SECONDS = 24 * 3600

_swept: set[Path] = set()


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
