"""Instructions per request, counted by callgrind: the cost of a request without the noise.

On a machine shared with others, requests per second swing with everybody else's load;
the number of instructions a server executes for one request does not. This starts both
servers (one worker each) under `valgrind --tool=callgrind` with counting off, warms them
up, counts only while a fixed number of requests of one operation is served, and prints
instructions per request and the baseline's count as a ratio of the API's. It counts every
thread of the server (uvicorn, the event loop, the WSGI thread pool), not waiting, cache
misses or the thread hand-offs that throughput also pays; bench/README.md has the numbers.

    python -m bench.instructions                      # me and change_name, SQLite
    python -m bench.instructions --ops list_messages --database-url postgresql://.../test_bench

Needs valgrind (Debian: apt-get install valgrind). A run takes a few minutes: the servers
start about fifty times slower under callgrind.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import fixtures
from bench.run import LoadProcess
from bench.servers import Server
from im_core.config import Settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--ops", default="me,change_name", help="JSON operations to count")
    parser.add_argument("--requests", type=int, default=200, help="requests counted (200)")
    parser.add_argument("--database-url", default="", help="empty: SQLite; or postgresql://")
    return parser.parse_args(argv)


def count(server: Server, task: dict, env: dict, requests: int) -> float:
    """Instructions per request of `requests` requests (after 50 uncounted ones)."""
    load = LoadProcess(env)
    try:
        return _count(server, load, task, requests)
    finally:
        load.stop()


def _count(server: Server, load: LoadProcess, task: dict, requests: int) -> float:
    load.run({**task, "port": server.port, "max_requests": 50}, limit=600)
    pid = str(server.process.pid)
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    outcome = load.run({**task, "port": server.port, "max_requests": requests}, limit=1800)
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
    if outcome["count"] != requests:
        raise RuntimeError(
            f"{server.name}: {outcome['count']} of {requests} answered: {outcome['error_samples']}"
        )
    server.stop()  # callgrind writes its totals when the process ends
    collected = re.findall(r"Collected : (\d+)", server.log.read_text())
    return int(collected[-1]) / requests


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.database_url:
        fixtures.wipe_postgres(args.database_url)
    folder = Path(tempfile.mkdtemp(prefix="im-bench-instructions-"))
    env = dict(
        os.environ,
        IM_INSTANCE_DIR=str(folder / "instance"),
        IM_DATABASE_URL=args.database_url,
        IM_BCRYPT_ROUNDS="4",
        IM_SECRET_KEYS=secrets.token_urlsafe(32),
        **fixtures.UNREACHED_LIMITS,
    )
    settings = Settings.from_env(environ={k: v for k, v in env.items() if k.startswith("IM_")})
    run_id = secrets.token_hex(2)
    # Both servers are counted at once, on one database: each renames its own four users.
    seeded = fixtures.seed(settings, run_id, 8, 1)
    servers: list[Server] = []
    try:
        print(f"{'operation':<14} {'baseline':>14} {'im-api':>14} {'ratio':>6}")
        for operation in args.ops.split(","):
            task = {
                "operation": operation,
                "host": "127.0.0.1",
                "connections": 4,
                "duration": 1800,
                "timeout": 600,
                "params": {
                    "tokens": seeded.tokens,
                    "names": seeded.names,
                    "login_names": seeded.login_names,
                    "password": fixtures.PASSWORD,
                    "prefix": f"i{run_id}{operation[:2]}_",
                    "group_id": seeded.group_id,
                },
            }
            pair = []
            for name, module in (("baseline", "bench.baseline_app"), ("im-api", "im_api.cli")):
                out = folder / f"{operation}-{name}.callgrind"
                prefix = ("valgrind", "--tool=callgrind", "--instr-atstart=no",
                          f"--callgrind-out-file={out}")  # fmt: skip
                log = folder / f"{operation}-{name}.log"
                server = Server(name, module, 1, env, log, prefix=prefix)
                servers.append(server)
                pair.append(server)
                server.start()
            for server in pair:
                server.wait_ready(timeout=600)
            if operation == "list_messages":
                fixtures.prepare_group(pair[1].port, seeded, 20)
                task["params"]["group_id"] = seeded.group_id
                task["params"]["tokens"] = seeded.member_tokens or seeded.tokens[:1]
            started = time.monotonic()
            tasks = []
            for index in range(2):
                own = slice(4 * index, 4 * index + 4)
                params = {**task["params"], "names": seeded.names[own]}
                if operation != "list_messages":
                    params["tokens"] = seeded.tokens[own]
                tasks.append({**task, "params": params})
            with ThreadPoolExecutor(2) as both:
                counted = both.map(
                    functools.partial(count, env=env, requests=args.requests), pair, tasks
                )
                counts = dict(zip(("baseline", "im-api"), counted, strict=True))
            baseline, api = counts["baseline"] / 1e6, counts["im-api"] / 1e6
            print(
                f"{operation:<14} {baseline:>12.2f} M {api:>12.2f} M {baseline / api:>6.2f}"
                f"   ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
