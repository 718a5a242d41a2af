"""Media in a local folder: one file per SHA-256, `<folder>/<sha256>`.

A spool lives in `<folder>/.incoming/`, on the same file system, so placing it is an
`os.replace`: a reader sees a whole file or none, and a crash leaves at most a stray spool
(swept by `models.storage`), never a partial media file. Several machines can share the
folder only through a shared file system; an S3 bucket (`models.stores.s3`) is the other way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from im_core.errors import ApiError, Error
from models.stores import CHUNK, SHA256

if TYPE_CHECKING:
    from models.spool import Spool


class LocalStore:
    def __init__(self, folder: Path):
        self.folder = folder

    def describe(self) -> str:
        return f"folder {self.folder}"

    def path_of(self, sha256: str) -> Path:
        return self.folder / sha256

    def prepare(self, spool: Spool) -> None:
        with open(spool.path, "rb") as written:
            os.fsync(written.fileno())  # before the lock: a slow disk holds no one else up

    def place(self, spool: Spool) -> None:
        target = self.path_of(spool.sha256)
        if target.exists():
            return  # the same bytes are stored already; the caller discards the spool
        os.replace(spool.path, target)
        _fsync_dir(self.folder)

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def unreachable(self, timeout: float) -> str | None:
        if not self.folder.is_dir():
            return "the media folder is not there"
        if not os.access(self.folder, os.W_OK | os.X_OK):
            return "the media folder cannot be written"
        return None

    def objects(self) -> Iterator[tuple[str, float]]:
        # Only files named by a hash: the spool folder and anything else are not objects.
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if SHA256.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    try:
                        yield entry.name, entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue  # deleted meanwhile

    def open(self, sha256: str, start: int, length: int) -> FileChunks:
        try:
            return FileChunks(self.path_of(sha256), start, length)
        except FileNotFoundError:
            raise ApiError(Error.MEDIA_NOT_FOUND) from None


class FileChunks:
    """The bytes [start, start + length) of a file, read a chunk at a time as sent."""

    reads_in_loop = True  # see `models.stores.Chunks`

    def __init__(self, path: Path, start: int, length: int):
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close(), when the body is sent)
        self._file.seek(start)
        self._left = length

    def __iter__(self):
        while self._left > 0:
            chunk = self._file.read(min(CHUNK, self._left))
            if not chunk:
                break
            self._left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._file.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
