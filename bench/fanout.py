"""The fan-out benchmark: the realtime socket against a bare Starlette baseline, in one run.

    python -m bench.fanout --quick                     # about 2 minutes, 200 sockets
    python -m bench.fanout                             # 2000 sockets, groups of 2 to 500
    python -m bench --fanout --sockets 3000            # the same through `python -m bench`

It starts `im-api serve` (one worker), `bench.fanout_baseline` (a bare Starlette app
that fans a posted message out to the same sockets with the same JSON shape, doing the same
database work through the API's own handler) and `bench.bare_websockets` (the `websockets`
package's server and a hand-written HTTP reader, no framework, no database: the lowest cost
a Python server delivers a frame at), seeds N users each in one group of every size
asked for (the "groups" of 2 are direct chats of two contacts: a direct message from post to
the other user's socket), and has a load process (`bench.fanout_load`) open one synced
socket per user on each server. Memory per idle socket is each server's RSS growth while its
N sockets opened, divided by N. Then, per group size, messages are posted over REST at a
fixed rate to the groups of that size, in rounds alternating baseline and im-api; it reports
per server the frames delivered per second, p50 and p99 from the post's scheduled time to
the frame's arrival, frames lost, the server's CPU per frame, and how many times the server
serialized a `message.created` frame per message (`bench.counted` counts them in every
server), then im-api's delivered frames/s as a ratio of the baseline's, its p50 against the
bare websockets server's, and the design's targets.
See bench/README.md, "Fan-out".
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import fixtures
from bench.report import percentile
from bench.run import LoadProcess
from bench.servers import Server, cpu_seconds, free_port, memory_kib
from im_core.config import Settings

KB = 1024
TARGET_RATIO = 0.7
TARGET_SOCKET_KB = 64
# Issue 21: at 50 posts/s, im-api's p50 post-to-socket at most this times the bare
# websockets server's.
TARGET_BARE_P50 = 3.0
TARGET_BARE_RATE = 50.0


@dataclass
class Mode:
    sockets: int
    sizes: tuple[int, ...]
    rounds: int  # per server and group size
    duration: float  # seconds of posting per round
    warmup: float


QUICK = Mode(sockets=200, sizes=(2, 10, 100), rounds=2, duration=2.0, warmup=1.0)
FULL = Mode(sockets=2000, sizes=(2, 10, 100, 500), rounds=4, duration=4.0, warmup=1.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Fan-out of the realtime socket against a bare Starlette baseline.",
    )
    parser.add_argument("--quick", action="store_true", help="200 sockets, short rounds")
    parser.add_argument("--sockets", type=int, help="sockets per server (default 2000, quick 200)")
    parser.add_argument(
        "--sizes", help="comma-separated group sizes (default 2,10,100,500; quick 2,10,100)"
    )
    parser.add_argument(
        "--frames",
        type=float,
        default=10000.0,
        help="frames per second offered per group size (default 10000, beyond what either "
        "server delivers on two cores for the large groups): messages are posted "
        "at this divided by the group size, at most --max-rate",
    )
    parser.add_argument(
        "--max-rate", type=float, default=100.0, help="messages per second at most (default 100)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per server and size (default 4; 2)")
    parser.add_argument("--duration", type=float, help="seconds of posting per round (4; 2)")
    parser.add_argument(
        "--drain", type=float, default=5.0, help="seconds to wait for late frames (default 5)"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="empty (default): SQLite in a temporary instance folder; or postgresql://... "
        "of a database whose name contains 'bench' (its tables are dropped)",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="the clients offer permessage-deflate, as browsers do (servers may decline)",
    )
    parser.add_argument(
        "--edits",
        type=float,
        default=0.2,
        help="fraction of the requests that edit the group's last message instead of posting "
        "one (its frame is message.updated; default 0.2; 0 for posts only)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url takes a postgresql:// URL (empty: SQLite)")
    return args


def raise_file_limit(sockets: int) -> str:
    """Every socket is a descriptor in a server and in the load process (both servers'
    sockets at once there): raise the soft limit to the hard one, which children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    needed = 2 * sockets + 200
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"{sockets} sockets need {needed} file descriptors; the limit is {soft}")
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


@dataclass
class Users:
    """One server's users: N, each with a session, and its groups."""

    ids: list[int]
    tokens: list[str]
    groups: dict[int, list[tuple[int, int]]]  # size: [(group id, index of its first member)]


# The servers with a database, seeded through the models; then the bare websockets server,
# whose users and groups are made up (it has no database) and handed to it in a file.
SERVERS = {"baseline": "bench.fanout_baseline", "im-api": "im_api.cli"}
BARE = "websockets"


def made_up(count: int, sizes: tuple[int, ...]) -> Users:
    """The bare websockets server's users and groups: the same layout as a seeded server's,
    with ids of its own (it checks no token)."""
    ids = list(range(1, count + 1))
    made: dict[int, list[tuple[int, int]]] = {}
    group_ids = itertools.count(1)
    for size in sizes:
        made[size] = [(next(group_ids), first) for first in range(0, count - size + 1, size)]
    return Users(ids, ["bare"] * count, made)


def memberships(users: Users, sizes: tuple[int, ...]) -> dict[str, list[int]]:
    """`{"user id": [group ids]}` of made-up users, for the bare server's `--groups` file."""
    groups: dict[str, list[int]] = {str(user): [] for user in users.ids}
    for size in sizes:
        for group_id, first in users.groups[size]:
            for user in users.ids[first : first + size]:
                groups[str(user)].append(group_id)
    return groups


def seed(settings: Settings, run_id: str, count: int, sizes: tuple[int, ...]) -> dict:
    """For each server, N users of its own with a session each, cut for every size into
    groups of that size (each user in one group per size), written straight through the
    models: thousands of memberships through the API would take minutes and measure nothing.

    Users and groups of their own per server, because either server's messages would
    otherwise reach the other's sockets: the API's hub hears the baseline's messages (through
    NOTIFY on PostgreSQL) in groups its sockets are in, and on SQLite fills a gap in a
    group's seq by loading the messages it did not hear of."""
    from pony.orm import commit, db_session

    from im_core import config, security
    from im_core.config import now
    from models import database, groups, sessions, users
    from models.entities import Membership, User

    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)
    settings.bcrypt_rounds = 4  # these users never log in
    seeded = {}
    for number, server in enumerate(SERVERS):
        ids, tokens = [], []
        with db_session:
            for index in range(count):
                user = users.create(f"f{run_id}{number}{index:05d}", fixtures.PASSWORD)
                token, _ = sessions.open_session(user)
                ids.append(user.id)
                tokens.append(token)
            commit()
        made: dict[int, list[tuple[int, int]]] = {}
        with db_session:
            for size in sizes:
                made[size] = []
                for first in range(0, count - size + 1, size):
                    if size == 2:  # a direct message: two contacts and their direct chat
                        group = fixtures.direct_chat(User[ids[first]], User[ids[first + 1]])
                    else:
                        group = groups.create(User[ids[first]], f"{server} {size} #{first // size}")
                        for index in range(first + 1, first + size):
                            Membership(group=group, user=User[ids[index]], joined_at=now())
                    made[size].append((group.id, first))
                commit()
        seeded[server] = Users(ids, tokens, made)
    return seeded


def label(size: int) -> str:
    """How a group size is named in the reports: 2 is a direct chat."""
    return "direct chats" if size == 2 else f"groups of {size}"


@dataclass
class Side:
    """One server's rounds of one group size."""

    rounds: list[dict] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(r[key] for r in self.rounds)

    @property
    def elapsed(self) -> float:
        return sum(r["elapsed"] for r in self.rounds)

    @property
    def frames_per_second(self) -> float:
        return self.total("received") / self.elapsed if self.elapsed else 0.0

    def round_fps(self) -> list[float]:
        return [r["received"] / r["elapsed"] for r in self.rounds]

    @property
    def messages(self) -> int:
        return sum(r["statuses"].get("201", 0) for r in self.rounds)

    @property
    def latencies(self) -> list[float]:
        return [value for r in self.rounds for value in r["latencies"]]

    @property
    def cpu_us_per_frame(self) -> float:
        received = self.total("received")
        return sum(r["server_cpu"] for r in self.rounds) * 1e6 / received if received else 0.0

    @property
    def serialized_per_message(self) -> float:
        messages = self.messages
        return self.total("serialized") / messages if messages else float("nan")

    def errors(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for r in self.rounds:
            for status, count in r["statuses"].items():
                if status not in ("201", "200"):  # a post made, an edit made
                    found[status] = found.get(status, 0) + count
        return found

    def summary(self) -> dict:
        latencies = self.latencies
        return {
            "messages": self.messages,
            "frames_expected": self.total("expected"),
            "frames_received": self.total("received"),
            "frames_per_second": self.frames_per_second,
            "round_frames_per_second": self.round_fps(),
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "cpu_us_per_frame": self.cpu_us_per_frame,
            "serialized_per_message": self.serialized_per_message,
            "post_errors": self.errors(),
            "sockets_closed": self.total("sockets_closed"),
            "load_cores": [r["load_cores"] for r in self.rounds],
        }


@dataclass
class Scenario:
    size: int
    groups: int
    rate: float
    baseline: Side = field(default_factory=Side)
    api: Side = field(default_factory=Side)
    bare: Side = field(default_factory=Side)  # the bare websockets server

    @property
    def ratio(self) -> float:
        """Median over im-api's rounds of its frames/s against the mean of the baseline
        rounds just before and after it (house style: a busy moment weighs on both)."""
        return statistics.median(self.round_ratios()) if self.round_ratios() else float("nan")

    def sides(self) -> list[tuple[str, Side]]:
        return [("baseline", self.baseline), ("im-api", self.api), (BARE, self.bare)]

    @property
    def p50_over_bare(self) -> float:
        """im-api's p50 post-to-socket over the bare websockets server's."""
        bare = percentile(self.bare.latencies, 0.5)
        return percentile(self.api.latencies, 0.5) / bare if bare else float("nan")

    def round_ratios(self, side: Side | None = None) -> list[float]:
        base, api = self.baseline.round_fps(), (side or self.api).round_fps()
        ratios = []
        for index, value in enumerate(api):
            around = base[index : index + 2]  # baseline rounds i (before) and i+1 (after)
            if around and statistics.mean(around):
                ratios.append(value / statistics.mean(around))
        return ratios


class FanoutBench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        mode = QUICK if args.quick else FULL
        if args.sockets:
            mode = dataclasses.replace(mode, sockets=args.sockets)
        if args.sizes:
            mode = dataclasses.replace(mode, sizes=tuple(int(s) for s in args.sizes.split(",")))
        if args.rounds:
            mode = dataclasses.replace(mode, rounds=args.rounds)
        if args.duration:
            mode = dataclasses.replace(mode, duration=args.duration)
        self.mode = mode
        self.sizes = tuple(size for size in mode.sizes if size <= mode.sockets)
        self.postgres = args.database_url.startswith(("postgresql://", "postgres://"))
        self.run_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))
        self.folder = Path(tempfile.mkdtemp(prefix="im-bench-fanout-"))
        self.servers: dict[str, Server] = {}
        self.load: LoadProcess | None = None
        self.memory: dict[str, dict] = {}
        self.notes: list[str] = []

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update(
            IM_INSTANCE_DIR=str(self.folder / "instance"),
            IM_DATABASE_URL=self.args.database_url,
            IM_BCRYPT_ROUNDS="4",
            IM_SECRET_KEYS=secrets.token_urlsafe(32),
            **fixtures.UNREACHED_LIMITS,
        )
        return env

    def counter_file(self, name: str) -> Path:
        return self.folder / f"{name.replace(' ', '-')}.counts.json"

    def serialized(self, name: str) -> int:
        """The server's count of message.created serializations, a fresh reading."""
        path = self.counter_file(name)
        before = path.stat().st_mtime_ns if path.exists() else 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the counting thread rewrites it every 0.1 s
            if path.exists() and path.stat().st_mtime_ns != before:
                break
            time.sleep(0.02)
        return json.loads(path.read_text())["message.created"]

    def run(self) -> list[Scenario]:
        started = time.monotonic()
        limit = raise_file_limit(self.mode.sockets)
        env = self.environment()
        settings = Settings.from_env(environ={k: v for k, v in env.items() if k.startswith("IM_")})
        if self.postgres:
            fixtures.wipe_postgres(self.args.database_url)
        users = seed(settings, self.run_id, self.mode.sockets, self.sizes)
        users[BARE] = made_up(self.mode.sockets, self.sizes)
        groups_file = self.folder / "bare-groups.json"
        groups_file.write_text(json.dumps(memberships(users[BARE], self.sizes)))
        for name, module in {**SERVERS, BARE: "bench.bare_websockets"}.items():
            server_env = {**env, "BENCH_COUNTER_FILE": str(self.counter_file(name))}
            server = Server(name, module, 1, server_env, self.folder / f"{name}.log")
            server.command.insert(2, "bench.counted")  # python -m bench.counted MODULE ...
            if name == BARE:
                server.ws_port = free_port()
                server.command += ["--ws-port", str(server.ws_port), "--groups", str(groups_file)]
            self.servers[name] = server
            server.start()
        for server in self.servers.values():
            server.wait_ready()
        self.load = LoadProcess(env, "bench.fanout_load")
        print(self.header(limit), flush=True)

        for name, server in self.servers.items():
            pairs = list(zip(users[name].ids, users[name].tokens, strict=True))
            self.open_sockets(name, server, pairs)

        scenarios = []
        for size in self.sizes:
            rate = min(self.args.max_rate, self.args.frames / size)
            scenario = Scenario(size, len(users["im-api"].groups[size]), rate)
            posts = {
                name: [[group_id, own.tokens[first], size] for group_id, first in own.groups[size]]
                for name, own in users.items()
            }
            for name in self.servers:
                self.round(name, posts[name], rate, self.mode.warmup, None)
            for _ in range(self.mode.rounds):
                for name, side in scenario.sides():
                    self.round(name, posts[name], rate, self.mode.duration, side)
            # One more baseline round: every im-api round has a baseline round on each side.
            self.round("baseline", posts["baseline"], rate, self.mode.duration, scenario.baseline)
            scenarios.append(scenario)
            print(f"  {label(size)}: {self.progress(scenario)}", file=sys.stderr, flush=True)
        print()
        print(self.table(scenarios))
        print()
        print(self.targets(scenarios))
        for note in self.notes:
            print(f"  note: {note}")
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"\n(run took {time.monotonic() - started:.0f} s; load average now {load})")
        if self.args.json:
            self.args.json.write_text(json.dumps(self.summary(scenarios), indent=2))
        return scenarios

    def header(self, limit: str) -> str:
        database = "PostgreSQL" if self.postgres else "SQLite (temporary)"
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        return (
            f"bench fanout {'quick' if self.args.quick else 'full'}: {database}, 1 worker per "
            f"server (baseline: bare Starlette; {BARE}: the bare websockets server, no "
            f"database), {self.mode.sockets} sockets per server (one per user, each user in one "
            f"group of each size {', '.join(map(str, self.sizes))}), {self.args.frames:g} "
            f"frames/s offered per size (at most {self.args.max_rate:g} messages/s, "
            f"{self.args.edits:.0%} of them edits), rounds alternate baseline, im-api and "
            f"{BARE}: {self.mode.rounds} x {self.mode.duration:g} s; "
            f"permessage-deflate {'offered' if self.args.deflate else 'not offered'}; "
            f"{len(os.sched_getaffinity(0))} cores, load average {load}, file limit {limit}"
        )

    def open_sockets(self, name: str, server: Server, pairs: list) -> None:
        """Opens and syncs every user's socket, reading the server's RSS before and after.

        Ten sockets and one message first, so that what any first socket allocates (code
        paths, caches, the hub's structures) is in the figure before, not spread over N."""
        port = server.ws_port
        warm = self.load.run(
            {"command": "open", "server": name, "port": port, "users": pairs[:10],
             "compress": self.args.deflate}, limit=120,
        )  # fmt: skip
        self.check_opened(name, warm, 10)
        self.load.run({"command": "close", "server": name}, limit=60)
        time.sleep(1)
        pid = server.worker_pids()[0]
        before = memory_kib(pid, "VmRSS")
        opened = self.load.run(
            {"command": "open", "server": name, "port": port, "users": pairs,
             "compress": self.args.deflate}, limit=600,
        )  # fmt: skip
        self.check_opened(name, opened, len(pairs))
        time.sleep(2)  # idle: no frame in flight
        after = memory_kib(pid, "VmRSS")
        per_socket = (after - before) * KB / max(1, opened["opened"])
        self.memory[name] = {
            "rss_before_kib": before,
            "rss_after_kib": after,
            "sockets": opened["opened"],
            "bytes_per_socket": per_socket,
            "open_seconds": opened["elapsed"],
        }
        print(
            f"  {name}: {opened['opened']} sockets opened and synced in {opened['elapsed']:.1f} s,"
            f" RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB = {per_socket / KB:.1f} KB per "
            "socket",
            file=sys.stderr,
            flush=True,
        )

    @staticmethod
    def check_opened(name: str, answer: dict, wanted: int) -> None:
        if answer["opened"] != wanted:
            raise RuntimeError(f"{name}: {answer['opened']} of {wanted} sockets: {answer}")

    def round(self, name: str, posts: list, rate: float, duration: float, side) -> None:
        server = self.servers[name]
        pids = server.worker_pids()
        counted_before = self.serialized(name)
        cpu_before, load_before = cpu_seconds(pids), self.load.cpu()
        outcome = self.load.run(
            {"command": "round", "server": name, "port": server.port, "rate": rate,
             "duration": duration, "drain": self.args.drain, "edits": self.args.edits,
             "posts": posts},
            limit=duration + self.args.drain + 120,
        )  # fmt: skip
        outcome["server_cpu"] = cpu_seconds(pids) - cpu_before
        outcome["load_cores"] = (self.load.cpu() - load_before) / outcome["elapsed"]
        time.sleep(0.15)  # the counting thread's next write
        outcome["serialized"] = self.serialized(name) - counted_before
        if side is not None:
            side.rounds.append(outcome)

    @staticmethod
    def progress(scenario: Scenario) -> str:
        return (
            f"baseline {scenario.baseline.frames_per_second:.0f} frames/s, im-api "
            f"{scenario.api.frames_per_second:.0f} frames/s, ratio {scenario.ratio:.2f}; {BARE} "
            f"{scenario.bare.frames_per_second:.0f} frames/s"
        )

    def table(self, scenarios: list[Scenario]) -> str:
        head = (
            f"{'group size':<14}{'server':<11}{'msg/s':>7}{'frames/s':>10}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'lost':>7}{'cpu us/frame':>13}{'ser/msg':>8}  ratio (rounds)"
        )
        lines = [head, "-" * len(head)]
        for scenario in scenarios:
            for name, side in scenario.sides():
                if not side.rounds:
                    continue
                latencies = side.latencies
                lost = side.total("expected") - side.total("received")
                ratio = ""
                ratios = scenario.round_ratios(side) if name != "baseline" else []
                if ratios:
                    low, high = min(ratios), max(ratios)
                    ratio = f"{statistics.median(ratios):.2f} ({low:.2f}-{high:.2f})"
                size = "direct" if scenario.size == 2 else scenario.size
                first = f"{size} x {scenario.groups}" if name == "baseline" else ""
                row = (
                    f"{first:<14}{name:<11}{side.messages / side.elapsed:>7.1f}"
                    f"{side.frames_per_second:>10,.0f}"
                    f"{percentile(latencies, 0.5) * 1000:>9.1f}"
                    f"{percentile(latencies, 0.99) * 1000:>9.1f}{lost:>7}"
                    f"{side.cpu_us_per_frame:>13.1f}{side.serialized_per_message:>8.2f}  {ratio}"
                )
                lines.append(row.rstrip())
                load = max((r["load_cores"] for r in side.rounds), default=0.0)
                if load > 0.8:  # the client process, not the server, may have been the limit
                    lines.append(f"{'':<24}the load process used up to {load:.2f} cores")
                errors = side.errors()
                if errors or side.total("sockets_closed"):
                    lines.append(
                        f"{'':<14}{'':<11}post errors {errors}, sockets closed "
                        f"{side.total('sockets_closed')}"
                    )
        return "\n".join(lines)

    def targets(self, scenarios: list[Scenario]) -> str:
        lines = ["Targets (issue 14: the fan-out; issue 21: against the bare websockets server)"]
        for scenario in scenarios:
            ratio = scenario.ratio
            verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
            cost = scenario.baseline.cpu_us_per_frame / (scenario.api.cpu_us_per_frame or 1e-9)
            lines.append(
                f"  {label(scenario.size)}: delivered frames/s >= {TARGET_RATIO} of the "
                f"baseline: {ratio:.2f}  {verdict} (offered {scenario.rate * scenario.size:,.0f}"
                f"/s; server CPU per frame, baseline's over im-api's: {cost:.2f})"
            )
        lines += self.bare_targets(scenarios)
        api, base = self.memory.get("im-api"), self.memory.get("baseline")
        if api:
            per = api["bytes_per_socket"] / KB
            grown = (api["rss_after_kib"] - api["rss_before_kib"]) / 1024
            bare = self.memory.get(BARE)
            bare = f"; {BARE} {bare['bytes_per_socket'] / KB:.1f} KB" if bare else ""
            lines.append(
                f"  server memory per idle socket <= {TARGET_SOCKET_KB} KB: {per:.1f} KB "
                f"({api['sockets']} sockets, RSS +{grown:.1f} MiB; "
                f"baseline {base['bytes_per_socket'] / KB:.1f} KB{bare})  "
                f"{'MET' if per <= TARGET_SOCKET_KB else 'NOT MET'}"
            )
        counts = [s.api.serialized_per_message for s in scenarios if s.api.messages]
        if counts:
            worst = max(counts)
            total = sum(s.api.total("serialized") for s in scenarios)
            messages = sum(s.api.messages for s in scenarios)
            lines.append(
                f"  a message frame serialized once however many sockets get it: {total} "
                f"serializations of message.created for {messages} messages "
                f"(most per message in one size: {worst:.2f})  "
                f"{'MET' if total == messages else 'NOT MET'}"
            )
        return "\n".join(lines)

    @staticmethod
    def bare_targets(scenarios: list[Scenario]) -> list[str]:
        """im-api's p50 post-to-socket against the bare websockets server's, per size; issue
        21 sets the target at 50 posts/s (`--max-rate 50`), so only a size posted at that
        rate gets a verdict."""
        lines = []
        for scenario in scenarios:
            if not (scenario.bare.rounds and scenario.api.rounds):
                continue
            times = scenario.p50_over_bare
            api = percentile(scenario.api.latencies, 0.5) * 1000
            bare = percentile(scenario.bare.latencies, 0.5) * 1000
            if abs(scenario.rate - TARGET_BARE_RATE) < 1e-6:
                verdict = "MET" if times <= TARGET_BARE_P50 else "NOT MET"
            else:
                verdict = f"(the target is at {TARGET_BARE_RATE:g} posts/s: --max-rate 50)"
            lines.append(
                f"  {label(scenario.size)} at {scenario.rate:g} posts/s: im-api p50 <= "
                f"{TARGET_BARE_P50:g}x the bare {BARE} server's: {api:.1f} / {bare:.1f} ms = "
                f"{times:.2f}x  {verdict}"
            )
        return lines

    def summary(self, scenarios: list[Scenario]) -> dict:
        return {
            "mode": "quick" if self.args.quick else "full",
            "database": "postgresql" if self.postgres else "sqlite",
            "sockets": self.mode.sockets,
            "frames_offered": self.args.frames,
            "memory": self.memory,
            "scenarios": [
                {
                    "size": s.size,
                    "groups": s.groups,
                    "rate": s.rate,
                    "ratio": s.ratio,
                    "round_ratios": s.round_ratios(),
                    "baseline": s.baseline.summary(),
                    "im-api": s.api.summary(),
                    BARE: s.bare.summary(),
                    "bare_round_ratios": s.round_ratios(s.bare),
                    "p50_over_bare": s.p50_over_bare,
                }
                for s in scenarios
            ],
        }

    def close(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.load:
                self.load.stop()
            for server in self.servers.values():
                server.stop()
            if self.args.keep:
                print(f"kept {self.folder}", file=sys.stderr)
            else:
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = FanoutBench(args)
    try:
        bench.run()
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
