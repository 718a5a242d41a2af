"""The servers under test as child processes, and their CPU and memory read from /proc (with
the CPU of the PostgreSQL backends serving one)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One server on a free loopback port, in its own process group: a uvicorn one, or the
    bare websockets server, whose sockets are on a second port (`ws_port`).

    `root` is the checkout whose code it runs (this one, or another git revision's, see
    `bench.against`): its working folder and the first entry of its PYTHONPATH, ahead of the
    virtual environment's editable install of this checkout."""

    def __init__(
        self, name: str, module: str, workers: int, env: dict, log: Path, prefix: tuple = (),
        root: Path = REPO,
    ):  # fmt: skip
        self.name = name
        self.port = free_port()
        self.ws_port = self.port  # where its sockets are
        self.root = root
        self.workers = workers
        self.log = log
        # `python -m im_api.cli serve` is the `im-api serve` console script, whatever the PATH.
        subcommand = ["serve"] if module == "im_api.cli" else []
        self.command = [*prefix, sys.executable, "-m", module, *subcommand]
        self.command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--workers", str(workers), "--log-level", "warning"]
        path = [str(root), env.get("PYTHONPATH", "")]
        self.env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, path))}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/api/health")
                if connection.getresponse().status == 200 and len(self.worker_pids()) >= 1:
                    connection.close()
                    if self._all_workers_up():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer:\n{self.log.read_text()[-3000:]}")

    def _all_workers_up(self) -> bool:
        return self.workers == 1 or len(self.worker_pids()) >= self.workers

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself, or uvicorn's workers."""
        if self.workers == 1:
            return [self.process.pid]
        return [pid for pid in _children(self.process.pid) if b"spawn_main" in _cmdline(pid)]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The group is the one this server was started in (start_new_session): its workers.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


class S3Endpoint:
    """moto's S3 in server mode (`python -m moto.server`) on a free loopback port, with one
    bucket: the media store of both servers with `--s3`. A process of its own, so its memory
    (it keeps objects in RAM) is never counted as a server's."""

    BUCKET = "bench-media"

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.media_url = f"s3://{self.BUCKET}/media?endpoint={self.url}"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        import boto3

        client = boto3.client("s3", endpoint_url=self.url, **_FAKE_KEYS)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=self.BUCKET)
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"moto did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    @staticmethod
    def use_fake_credentials(environ) -> None:
        """Fake credentials (moto takes any) in `environ`; none of the user's AWS setup."""
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            environ.pop(name, None)
        environ.update(
            AWS_ACCESS_KEY_ID=_FAKE_KEYS["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=_FAKE_KEYS["aws_secret_access_key"],
            AWS_DEFAULT_REGION=_FAKE_KEYS["region_name"],
            AWS_EC2_METADATA_DISABLED="true",
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_FAKE_KEYS = {
    "aws_access_key_id": "bench",
    "aws_secret_access_key": "bench",
    "region_name": "us-east-1",
}


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process still there (`cpu_seconds` per process)."""
    return {pid: cpu_seconds([pid]) for pid in pids if Path(f"/proc/{pid}").exists()}


def database_backends(url: str) -> list[int]:
    """The PostgreSQL backend processes serving the database of `url` (a server's pool and
    its LISTEN connection): their CPU is the server's database work. Read from
    pg_stat_activity over a connection to the `postgres` database, which is not one of
    them. The database server must be on this machine for their /proc to be read."""
    import psycopg2

    parts = urlsplit(url)
    connection = psycopg2.connect(parts._replace(path="/postgres").geturl())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (parts.path.lstrip("/"),)
            )
            return [pid for (pid,) in cursor.fetchall()]
    finally:
        connection.close()


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent on anything but idling, so far."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is in user


def memory_kib(pid: int, field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> bool:
    """Restart VmHWM from the current RSS (Linux `clear_refs` 5); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False
