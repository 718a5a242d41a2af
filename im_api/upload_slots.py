"""At most N uploads of one account at once, counted across every worker of an instance.

Each account has N slots; an upload holds one from its admission until its answer is sent.
A slot is a POSIX record lock on one byte of one file in the instance folder (byte
`account * N + n` of `upload-slots`), so every worker process serving that folder sees the
same slots, a crashed worker's slots free themselves (the kernel drops its locks), and the
file never grows. Taking or leaving a slot is one `fcntl` call.

POSIX locks belong to a process, not to a file descriptor: two uploads in one process would
both "get" the same byte. So each process also remembers the slots it holds, and keeps one
descriptor per file open for good (closing any descriptor of a file drops all the process's
locks on it). Several machines share the count only where they share the instance folder
on a filesystem with working POSIX locks; otherwise the limit is per machine.

The realtime endpoint counts sockets at once per user and per client address the same way
(`socket-slots-user`, `socket-slots-address`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

_files: dict[Path, tuple[int, dict[int, set[int]]]] = {}
_files_lock = threading.Lock()
# A forked child holds none of its parent's locks (they are not inherited): it starts afresh.
os.register_at_fork(after_in_child=_files.clear)


class Slot:
    """One upload's place; `release()` when the upload is answered (idempotent)."""

    def __init__(self, slots: UploadSlots, account: int, number: int):
        self._slots, self._account, self._number = slots, account, number

    def release(self) -> None:
        if self._slots is not None:
            self._slots._release(self._account, self._number)
            self._slots = None


class UploadSlots:
    def __init__(self, path: Path, per_account: int):
        self.path = path
        self.per_account = max(1, per_account)

    def take(self, account: int) -> Slot | None:
        """A free slot of `account`, None when all of them are held (here or elsewhere)."""
        fd, held = self._file()
        mine = held.setdefault(account, set())
        for number in range(self.per_account):
            if number in mine:
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._offset(account, number))
            except OSError as error:
                if error.errno in (errno.EACCES, errno.EAGAIN):
                    continue  # another worker holds it
                raise
            mine.add(number)
            return Slot(self, account, number)
        if not mine:
            del held[account]
        return None

    def _release(self, account: int, number: int) -> None:
        fd, held = self._file()
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, self._offset(account, number))
        mine = held.get(account, set())
        mine.discard(number)
        if not mine:
            held.pop(account, None)

    def _offset(self, account: int, number: int) -> int:
        return account * self.per_account + number

    def _file(self) -> tuple[int, dict[int, set[int]]]:
        """This process's descriptor of the slots file and the slots it holds there."""
        with _files_lock:
            found = _files.get(self.path)
            if found is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                found = _files[self.path] = (fd, {})
            return found
