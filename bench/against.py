"""Another git revision of this repository as a server of the run (`--against REV`).

The code of REV is extracted with `git archive` into the run's temporary folder (no worktree
to register and remove, nothing checked out in this one), and served by `im-api serve`
started with that folder as its working folder and the first entry of its PYTHONPATH, with
this checkout's virtual environment: its packages, the revision's own modules. The
environment's editable install of this checkout comes after PYTHONPATH on `sys.path`, and
`check_code` makes sure of it before the server starts, as
tests/fixtures/release_0_1_0/make.py does for the release's server.

The revision gets a database of its own (an older revision refuses a database migrated by a
newer one): its own SQLite file, or a second PostgreSQL database named after the bench's
(`second_database`). It is seeded through its own API (`bench.posts.seed`), so its models
may differ from today's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

from bench.servers import REPO


class Revision:
    """A commit of this repository, extracted into `folder`."""

    def __init__(self, rev: str, folder: Path):
        self.asked = rev
        self.commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
        self.short = _git("rev-parse", "--short", self.commit)
        self.subject = _git("log", "-1", "--format=%s", self.commit)
        self.root = folder / f"rev-{self.short}"
        self.root.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "archive", "--format=tar", self.commit], cwd=REPO, stdout=subprocess.PIPE
        )
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            # Only plain files and folders inside the root (Python 3.10.12+ and 3.11.4+).
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(self.root, **safe)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {self.commit} failed")
        check_code(self.root)

    def describe(self) -> str:
        subject = self.subject if len(self.subject) <= 50 else self.subject[:49] + "..."
        return f"{self.short}: {subject}"


def check_code(root: Path) -> None:
    """A server started from `root` must run that checkout's modules, not this one's."""
    probe = "import im_api.cli, models.entities; print(models.entities.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise SystemExit(f"the revision's code does not import:\n{found.stderr[-2000:]}")
    if not Path(found.stdout.strip()).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the revision's modules are shadowed: {found.stdout.strip()}")


def second_database(url: str, suffix: str) -> str:
    """The bench's PostgreSQL URL with `suffix` appended to the database name (its tables
    are dropped too: the name still says it is the bench's)."""
    parts = urlsplit(url)
    return parts._replace(path=parts.path.rstrip("/") + suffix).geturl()


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()
