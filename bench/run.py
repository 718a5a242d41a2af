"""The benchmark: the API against a bare Flask baseline, side by side in one run, as ratios.

    python -m bench --quick                  # under two minutes, SQLite
    python -m bench                          # the full run, for the numbers
    python -m bench --database-url postgresql://postgres@127.0.0.1:5432/test_bench --workers 2

It starts `im-api serve` and `bench.baseline_app` (same uvicorn, same worker count, same
database), seeds users, then drives each operation from a separate load process with the
same fixed number of keep-alive connections, alternating the servers round by round
(baseline, im-api, baseline, im-api, ...). It prints, per operation and server, requests/s,
p50 and p99 latency and errors, and the API's throughput as a ratio of the baseline's, then
the performance targets of the design with the figures measured in the same run. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from bench import fixtures, report
from bench.report import MB, Result
from bench.servers import (
    REPO,
    S3Endpoint,
    Server,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    memory_kib,
    reset_peak,
)
from im_core.config import Settings

OPERATIONS = {
    "me": "GET /user/me: token, session, profile",
    "change_name": "POST /user/change_name: token, session, rename, commit",
    "login": "POST /user/login: bcrypt check, new session",
    "register": "POST /user/register: bcrypt hash, new user and session",
    "list_messages": "GET /groups/{id}/messages: a page of messages",
    "list_conversations": "GET /groups: the first page (50) of a user's 500 conversations",
    "upload_1mb": "POST /groups/{id}/upload_file: 1 MB",
    "upload_max": "POST /groups/{id}/upload_file: maximum size",
    "upload_too_large": "POST /groups/{id}/upload_file: declares twice the maximum",
}
BCRYPT_OPERATIONS = {"login", "register"}
# The conversations of the user whose list `list_conversations` pages through.
CONVERSATIONS = 500
UPLOADS = {"upload_1mb", "upload_max", "upload_too_large"}
# Measured a third time on im-api with its speed module off (IM_CONNEXION_SPEEDUPS=false):
# the operations whose cost is Connexion's; bcrypt and uploads are not its.
SPEED_OPERATIONS = {"me", "change_name", "list_messages"}
# With --metrics, measured once more on im-api with its metrics on (IM_METRICS_PORT): the
# operations the design's targets are about, where a fixed cost per request weighs most.
METRICS_OPERATIONS = {"me", "change_name"}


@dataclass
class Mode:
    """Rounds per server and their length. Many short rounds beat a few long ones on a
    shared machine: each ratio compares two rounds a moment apart."""

    rounds: int  # JSON operations
    duration: float  # seconds per round
    bcrypt_rounds: int  # login and register
    bcrypt_duration: float
    upload_rounds: int
    uploads_1mb: int  # per round
    uploads_max: int
    too_large: int
    warmup: float
    messages: int  # in the group whose messages are listed


QUICK = Mode(rounds=6, duration=1.0, bcrypt_rounds=2, bcrypt_duration=3.0, upload_rounds=2,
             uploads_1mb=4, uploads_max=1, too_large=10, warmup=0.5, messages=20)  # fmt: skip
FULL = Mode(rounds=20, duration=2.0, bcrypt_rounds=6, bcrypt_duration=8.0, upload_rounds=4,
            uploads_1mb=20, uploads_max=2, too_large=50, warmup=2.0, messages=50)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the API against a bare Flask baseline, side by side, as ratios.",
    )
    parser.add_argument("--quick", action="store_true", help="short rounds (under two minutes)")
    parser.add_argument(
        "--database-url",
        default="",
        help="empty (default): SQLite in a temporary instance folder; or "
        "postgresql://... of a database whose name contains 'bench' (its tables are dropped)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="uvicorn workers of each server (default 1 on SQLite, the core count on PostgreSQL)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="concurrent connections of the JSON operations (default 16)",
    )
    parser.add_argument(
        "--bcrypt-connections",
        type=int,
        help="concurrent connections of login and register (default twice the cores: enough "
        "to keep every core hashing, few enough that a round ends soon after its time)",
    )
    parser.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=int(os.environ.get("IM_BCRYPT_ROUNDS", "12")),
        help="bcrypt cost (default IM_BCRYPT_ROUNDS or 12)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds per server of a JSON operation (default 6 quick, 20 full)",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per round of a JSON operation (default 1 or 2)"
    )
    parser.add_argument(
        "--ops",
        default=",".join(OPERATIONS),
        help=f"comma-separated operations (default all: {','.join(OPERATIONS)})",
    )
    parser.add_argument(
        "--s3",
        action="store_true",
        help="keep both servers' media in an S3 bucket of a moto server started for the run "
        "(default: the instance folder)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also run me and change_name on im-api with its metrics on (IM_METRICS_PORT), "
        "as a ratio of im-api without them in the same run",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args(argv)
    unknown = set(args.ops.split(",")) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    postgres = args.database_url.startswith(("postgresql://", "postgres://"))
    if args.database_url and not postgres:
        parser.error("--database-url takes a postgresql:// URL (empty: SQLite)")
    if args.workers and args.workers > 1 and not postgres:
        parser.error("SQLite serves one worker (as im-api serve): use --database-url for more")
    return args


class LoadProcess:
    """A load generator (`bench.load`, or `bench.fanout_load` for the fan-out), one task at a
    time over its stdin and stdout."""

    def __init__(self, env: dict, module: str = "bench.load"):
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, task: dict, limit: float) -> dict:
        self.process.stdin.write(json.dumps(task) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], limit)
        if not ready:
            self.stop()
            what = task.get("operation") or task.get("command")
            raise RuntimeError(f"the load process did not finish {what} in {limit} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the load process exited")
        return json.loads(line)

    def cpu(self) -> float:
        return cpu_seconds([self.process.pid])

    def stop(self) -> None:
        """Ends it: at once when idle (its input closes), else after its current task."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):  # a broken pipe: it has gone already
                self.process.stdin.close()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()


def _hash_for(seconds_and_hash: tuple[float, bytes]) -> float:
    """In a pool process: bcrypt checks for about `seconds`; how many it did per second."""
    seconds, password_hash = seconds_and_hash
    done, started = 0, time.perf_counter()
    while time.perf_counter() < started + seconds:
        bcrypt.checkpw(b"x" * 44, password_hash)
        done += 1
    return done / (time.perf_counter() - started)


class BcryptProbe:
    """The bcrypt limit of the design: cores / the time of one hash at the configured cost.

    Also measured: what `cores` processes hashing side by side really achieve right now,
    which is lower when the other users of this shared machine take CPU.
    """

    def __init__(self, rounds: int, cores: int):
        self.cores = cores
        self.hash = bcrypt.hashpw(b"x" * 44, bcrypt.gensalt(rounds))
        self.pool = multiprocessing.get_context("spawn").Pool(cores)
        self.one: list[float] = []
        self.capacity: list[float] = []

    def measure(self, seconds: float) -> None:
        # The CPU time of one hash: what it costs, however busy the machine is meanwhile.
        for _ in range(3):
            started = time.thread_time()
            bcrypt.checkpw(b"x" * 44, self.hash)
            self.one.append(time.thread_time() - started)
        self.capacity.append(sum(self.pool.map(_hash_for, [(seconds, self.hash)] * self.cores)))

    @property
    def one_hash(self) -> float:
        return statistics.median(self.one)

    @property
    def limit(self) -> float:
        return self.cores / self.one_hash

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = QUICK if args.quick else FULL
        if args.rounds:
            self.mode = dataclasses.replace(self.mode, rounds=args.rounds)
        if args.duration:
            self.mode = dataclasses.replace(self.mode, duration=args.duration)
        self.cores = len(os.sched_getaffinity(0))
        self.postgres = args.database_url.startswith(("postgresql://", "postgres://"))
        self.workers = args.workers or (self.cores if self.postgres else 1)
        self.bcrypt_connections = args.bcrypt_connections or 2 * self.cores
        self.run_id = "".join(
            secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4)
        )
        self.folder = Path(tempfile.mkdtemp(prefix="im-bench-"))
        self.servers: dict[str, Server] = {}
        self.s3: S3Endpoint | None = None
        self.load: LoadProcess | None = None
        self.probe: BcryptProbe | None = None
        self.task_number = 0

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update(
            IM_INSTANCE_DIR=str(self.folder / "instance"),
            IM_DATABASE_URL=self.args.database_url,
            IM_BCRYPT_ROUNDS=str(self.args.bcrypt_rounds),
            IM_SECRET_KEYS=secrets.token_urlsafe(32),
            **fixtures.UNREACHED_LIMITS,
        )
        if self.s3:
            self.s3.use_fake_credentials(env)
            env["IM_MEDIA_URL"] = self.s3.media_url
        return env

    def run(self) -> list[Result]:
        started = time.monotonic()
        if self.args.s3:
            self.s3 = S3Endpoint(self.folder / "moto.log")
            self.s3.use_fake_credentials(os.environ)  # the seeding below builds the store too
        env = self.environment()
        settings = Settings.from_env(environ={k: v for k, v in env.items() if k.startswith("IM_")})
        self.settings = settings
        if self.postgres:
            fixtures.wipe_postgres(self.args.database_url)
        self.fixtures = fixtures.seed(
            settings, self.run_id, self.args.connections, min(self.args.connections, 4)
        )
        plain = {**env, "IM_CONNEXION_SPEEDUPS": "false"}
        self.servers = {
            "baseline": Server("baseline", "bench.baseline_app", self.workers, env,
                               self.folder / "baseline.log"),
            "im-api": Server("im-api", "im_api.cli", self.workers, env, self.folder / "im-api.log"),
            "speed off": Server("speed off", "im_api.cli", self.workers, plain,
                                self.folder / "im-api-speed-off.log"),
        }  # fmt: skip
        if self.args.metrics:
            # Its own metrics folder and port; the other servers keep metrics off.
            metered = {**env, "IM_METRICS_PORT": str(free_port())}
            metered["PROMETHEUS_MULTIPROC_DIR"] = str(self.folder / "metrics")
            self.servers["metrics"] = Server(
                "metrics", "im_api.cli", self.workers, metered, self.folder / "im-api-metrics.log"
            )
        for server in self.servers.values():
            server.start()
        for server in self.servers.values():
            server.wait_ready()
        self.load = LoadProcess(env)
        operations = [name for name in OPERATIONS if name in self.args.ops.split(",")]
        if {"list_messages", "upload_1mb", "upload_max"} & set(operations):
            fixtures.prepare_group(self.servers["im-api"].port, self.fixtures, self.mode.messages)
        if "list_conversations" in operations:
            fixtures.prepare_conversations(self.run_id, self.fixtures, CONVERSATIONS)
        print(self.header(), flush=True)
        results = []
        for operation in operations:
            result = self.measure(operation)
            results.append(result)
            print(f"  {operation}: {self.progress(result)}", file=sys.stderr, flush=True)
        print()
        print(report.table(results))
        print()
        print(self.targets(results))
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"\n(run took {time.monotonic() - started:.0f} s; load average now {load})")
        if self.args.json:
            self.args.json.write_text(json.dumps(self.summary(results), indent=2))
        return results

    def header(self) -> str:
        database = "PostgreSQL " + self.args.database_url if self.postgres else "SQLite (temporary)"
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        validation = os.environ.get("IM_VALIDATE_RESPONSES", "off (default)")
        media = "an S3 bucket (moto server)" if self.s3 else "the instance folder"
        return (
            f"bench {'quick' if self.args.quick else 'full'}: {database}, media in {media}, "
            f"{self.workers} worker(s) "
            f"per server, {self.args.connections} connections ({self.bcrypt_connections} for login "
            "and register, 1 for uploads); rounds alternate baseline and "
            f"im-api: {self.mode.rounds} x {self.mode.duration:g} s per JSON operation, "
            f"{self.mode.bcrypt_rounds} x {self.mode.bcrypt_duration:g} s for login and register; "
            f"bcrypt cost {self.args.bcrypt_rounds}, {self.cores} cores, load average {load}, "
            f"response validation {validation}; {', '.join(sorted(SPEED_OPERATIONS))} also on "
            "im-api with its speed module off (IM_CONNEXION_SPEEDUPS=false)"
            + (
                f"; {', '.join(sorted(METRICS_OPERATIONS))} also on im-api with its metrics on "
                "(IM_METRICS_PORT)"
                if self.args.metrics
                else ""
            )
        )

    @staticmethod
    def progress(result: Result) -> str:
        if result.skipped:
            return "skipped"
        return f"{result.api.rps:.1f} req/s, {result.ratio:.2f} of baseline"

    # -- one operation ---------------------------------------------------------------------

    def measure(self, operation: str) -> Result:
        result = Result(operation, OPERATIONS[operation])
        note = self.fixtures.notes.get(operation)
        if note:
            result.skipped = note
            return result
        if operation == "upload_too_large" and self.fixtures.group_id is None:
            self.fixtures.group_id = 1  # refused before routing: no group is needed
        if operation == "upload_1mb":
            result.size = MB
        elif operation == "upload_max":
            result.size = self.settings.max_file_bytes
        if self.probe_status(operation) == 501:
            result.skipped = "answers 501 (not implemented yet)"
            return result
        names = ["baseline", "im-api"] + (["speed off"] if operation in SPEED_OPERATIONS else [])
        if self.args.metrics and operation in METRICS_OPERATIONS:
            names.append("metrics")
        if operation not in UPLOADS:
            for name in names:
                self.task(operation, name, self.mode.warmup)
        if operation == "login" and self.probe is None:
            self.probe = BcryptProbe(self.args.bcrypt_rounds, self.cores)
        rounds = self.mode.rounds
        if operation in BCRYPT_OPERATIONS:
            rounds = self.mode.bcrypt_rounds
        elif operation in UPLOADS:
            rounds = self.mode.upload_rounds
        for _ in range(rounds):
            if operation == "login":
                self.probe.measure(self.mode.bcrypt_duration)
            for name in names:
                side = {
                    "baseline": result.baseline,
                    "im-api": result.api,
                    "speed off": result.speed_off,
                    "metrics": result.metrics_on,
                }[name]
                self.round(operation, name, side, operation in UPLOADS)
        return result

    def round(self, operation: str, name: str, side, watch_memory: bool) -> None:
        """One round on one server, with the CPU it used, what the rest of the machine used
        meanwhile, and (uploads) the peak memory its workers added."""
        pids = self.servers[name].worker_pids()
        rss_before = {}
        if watch_memory:
            for pid in pids:
                reset_peak(pid)  # VmHWM restarts from the current RSS
                rss_before[pid] = memory_kib(pid, "VmRSS")
        cpu_before, machine_before = cpu_seconds(pids), machine_busy_seconds()
        outcome = self.task(operation, name)
        server_cpu = cpu_seconds(pids) - cpu_before
        others = machine_busy_seconds() - machine_before - server_cpu
        side.rounds.append(outcome)
        side.cpu_seconds.append(server_cpu)
        side.others_cores.append(max(0.0, others) / outcome["elapsed"])
        if watch_memory:
            side.memory_kib.append(max(memory_kib(pid, "VmHWM") - rss_before[pid] for pid in pids))

    def probe_status(self, operation: str) -> int:
        """One request of the operation against the API; 501 means not written yet."""
        answer = self.task(operation, "im-api", duration=60, max_requests=1, connections=1)
        errors = answer["errors"]
        return 501 if "HTTP 501" in errors else 0

    def task(self, operation: str, server: str, duration: float | None = None,
             max_requests: int | None = None, connections: int | None = None) -> dict:  # fmt: skip
        self.task_number += 1
        mode = self.mode
        params = {
            "tokens": self.fixtures.tokens,
            "names": self.fixtures.names,
            "login_names": self.fixtures.login_names,
            "password": fixtures.PASSWORD,
            "prefix": f"r{self.run_id}{self.task_number:03x}_",
            "group_id": self.fixtures.group_id,
        }
        timeout = 30.0
        if operation == "list_messages":
            params["tokens"] = self.fixtures.member_tokens or self.fixtures.tokens[:1]
        if operation == "list_conversations":
            params["tokens"] = [self.fixtures.busy_token]
        if operation in UPLOADS:
            count = {"upload_1mb": mode.uploads_1mb, "upload_max": mode.uploads_max}.get(
                operation, mode.too_large
            )
            sizes = {"upload_1mb": MB, "upload_max": self.settings.max_file_bytes}
            params["size"] = sizes.get(operation, 2 * self.settings.max_file_bytes)
            connections = connections or 1
            max_requests = max_requests or count
            duration = duration or 300.0
            timeout = 120.0
        if operation in BCRYPT_OPERATIONS:
            connections = connections or self.bcrypt_connections
        if duration is None:
            duration = mode.bcrypt_duration if operation in BCRYPT_OPERATIONS else mode.duration
        task = {
            "operation": operation,
            "host": "127.0.0.1",
            "port": self.servers[server].port,
            "connections": connections or self.args.connections,
            "duration": duration,
            "max_requests": max_requests or 1_000_000,
            "timeout": timeout,
            "params": params,
        }
        return self.load.run(task, limit=duration + timeout + 60)

    # -- verdicts --------------------------------------------------------------------------

    def targets(self, results: list[Result]) -> str:
        by_name = {result.operation: result for result in results}
        lines = ["Targets (design: Performance targets)"]

        authenticated = by_name.get("change_name") or by_name.get("me")
        if authenticated and not authenticated.skipped:
            ratio = authenticated.ratio
            lines.append(
                f"  authenticated JSON ({authenticated.operation}) >= 0.80 of bare Flask: "
                f"{ratio:.2f}  {'MET' if ratio >= 0.8 else 'NOT MET'}"
            )
        speed = [
            f"{result.operation} {result.ratio:.2f} on, {result.ratio_speed_off:.2f} off"
            for result in results
            if result.speed_off.rounds and not result.skipped
        ]
        if speed:
            lines.append(f"  speed module (of bare Flask): {'; '.join(speed)}")
        for result in results:
            if not result.metrics_on.rounds or result.skipped:
                continue
            spread = [r for r in result.round_ratios(result.metrics_on, result.api) if r == r]
            ratio = result.ratio_metrics_on
            cpu = result.api.cpu_ms_per_request / result.metrics_on.cpu_ms_per_request
            lines.append(
                f"  metrics on >= 0.95 of metrics off ({result.operation}, same run): "
                f"{ratio:.2f} (rounds {min(spread):.2f}-{max(spread):.2f}; CPU per request, "
                f"off over on: {cpu:.2f})  {'MET' if ratio >= 0.95 else 'NOT MET'}"
            )
        login = by_name.get("login")
        if login and not login.skipped and self.probe:
            probe = self.probe
            ratio = login.api.rps / probe.limit
            capacity = statistics.median(probe.capacity)
            others = statistics.median(login.api.others_cores)
            hashes = login.api.cpu_ms_per_request / (probe.one_hash * 1000)
            free = max(0.1, probe.cores - others) / probe.one_hash
            lines.append(
                f"  login >= 0.90 of the bcrypt limit: {login.api.rps:.2f}/s against "
                f"{probe.cores} cores / {probe.one_hash * 1000:.0f} ms = {probe.limit:.2f}/s: "
                f"{ratio:.2f}  {'MET' if ratio >= 0.9 else 'NOT MET'}"
            )
            lines.append(
                f"    the rest of the machine kept {others:.2f} of its {probe.cores} cores busy "
                f"meanwhile; {probe.cores} processes doing nothing but bcrypt got {capacity:.2f}/s"
                f" (login: {login.api.rps / capacity:.2f} of that); a login cost "
                f"{hashes:.2f} hashes of server CPU (baseline login {login.baseline.rps:.2f}/s)"
            )
            lines.append(
                f"    against the cores left free ({probe.cores} - {others:.2f}) / "
                f"{probe.one_hash * 1000:.0f} ms = {free:.2f}/s, login reached "
                f"{login.api.rps / free:.2f}"
            )
        listed = by_name.get("list_conversations")
        if listed and not listed.skipped:
            queries = self.fixtures.queries_per_page
            counted = ", ".join(f"{n} for a user in {c}" for c, n in sorted(queries.items()))
            shown = listed.api.summary()
            lines.append(
                f"  conversation list, {CONVERSATIONS} conversations: p50 "
                f"{shown['p50_ms']:.1f} ms, p99 {shown['p99_ms']:.1f} ms, "
                f"{listed.ratio:.2f} of the baseline; queries per page: {counted}  "
                f"{'MET' if len(set(queries.values())) == 1 else 'NOT MET'} (bounded)"
            )
        upload = by_name.get("upload_max")
        if upload and not upload.skipped and upload.api.memory_kib:
            times = max(upload.api.memory_kib) * 1024 / upload.size
            lines.append(
                f"  maximum-size upload ({upload.size / MB:.0f} MB) <= 1.5x its size in server "
                f"memory: peak +{max(upload.api.memory_kib) / 1024:.1f} MiB = {times:.2f}x  "
                f"{'MET' if times <= 1.5 else 'NOT MET'}"
            )
        elif upload:
            lines.append(f"  maximum-size upload: not measured ({upload.skipped})")
        refused = by_name.get("upload_too_large")
        if refused and not refused.skipped and refused.api.memory_kib:
            lines.append(
                f"  refused too-large upload costs almost no memory: peak "
                f"+{max(refused.api.memory_kib) / 1024:.1f} MiB"
            )
        return "\n".join(lines)

    def summary(self, results: list[Result]) -> dict:
        return {
            "mode": "quick" if self.args.quick else "full",
            "database": "postgresql" if self.postgres else "sqlite",
            "media": "s3" if self.s3 else "folder",
            "workers": self.workers,
            "connections": self.args.connections,
            "rounds": self.mode.rounds,
            "bcrypt_rounds": self.args.bcrypt_rounds,
            "cores": self.cores,
            "bcrypt_one_hash_s": self.probe.one_hash if self.probe else None,
            "bcrypt_capacity_per_s": self.probe.capacity if self.probe else None,
            "results": [result.summary() for result in results],
        }

    def close(self) -> None:
        # A second Ctrl-C while cleaning up must not leave a server behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for server in self.servers.values():
                server.stop()
            if self.load:
                self.load.stop()
            if self.probe:
                self.probe.close()
            if self.s3:
                self.s3.stop()
            if self.args.keep:
                print(f"kept {self.folder}", file=sys.stderr)
            else:
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.close()
    return 0
