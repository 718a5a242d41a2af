"""Turning rounds of load results into the table and the target verdicts."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

MB = 1024 * 1024


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Side:
    """One server's rounds of one operation."""

    rounds: list[dict] = field(default_factory=list)
    memory_kib: list[int] = field(default_factory=list)  # peak over idle, per round
    cpu_seconds: list[float] = field(default_factory=list)  # the server's CPU time, per round
    others_cores: list[float] = field(default_factory=list)  # cores the rest of the machine
    # (the load generator, other users) kept busy during the round, on average

    @property
    def count(self) -> int:
        return sum(r["count"] for r in self.rounds)

    @property
    def elapsed(self) -> float:
        return sum(r["elapsed"] for r in self.rounds)

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def round_rps(self) -> list[float]:
        return [r["count"] / r["elapsed"] if r["elapsed"] else 0.0 for r in self.rounds]

    @property
    def latencies(self) -> list[float]:
        return [latency for r in self.rounds for latency in r["latencies"]]

    @property
    def errors(self) -> Counter:
        total: Counter = Counter()
        for r in self.rounds:
            total.update(r["errors"])
        return total

    @property
    def cpu_ms_per_request(self) -> float:
        count = sum(r["count"] for r in self.rounds[: len(self.cpu_seconds)])
        return sum(self.cpu_seconds) * 1000 / count if count else float("nan")

    def error_samples(self) -> dict[str, str]:
        samples: dict[str, str] = {}
        for r in self.rounds:
            for kind, text in r["error_samples"].items():
                samples.setdefault(kind, text)
        return samples

    def summary(self) -> dict:
        latencies = self.latencies
        return {
            "requests": self.count,
            "rps": self.rps,
            "round_rps": self.round_rps(),
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "cpu_ms_per_request": self.cpu_ms_per_request,
            "others_cores": self.others_cores,
            "errors": dict(self.errors),
            "error_samples": self.error_samples(),
            "peak_memory_mib": max(self.memory_kib) / 1024 if self.memory_kib else None,
        }


@dataclass
class Result:
    operation: str
    label: str
    baseline: Side = field(default_factory=Side)
    api: Side = field(default_factory=Side)
    speed_off: Side = field(default_factory=Side)  # im-api with IM_CONNEXION_SPEEDUPS=false
    metrics_on: Side = field(default_factory=Side)  # im-api with IM_METRICS_PORT (--metrics)
    size: int = 0  # upload bytes
    skipped: str | None = None

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios (see `round_ratios`): a slower or busier moment
        of the shared machine hits both servers."""
        return _median(self.round_ratios())

    @property
    def ratio_speed_off(self) -> float:
        """As `ratio`, for im-api with the speed module off (NaN when it was not measured)."""
        return _median(self.round_ratios(self.speed_off))

    @property
    def ratio_metrics_on(self) -> float:
        """im-api with metrics against im-api without them, rounds of the same run (NaN when
        it was not measured)."""
        return _median(self.round_ratios(self.metrics_on, reference=self.api))

    def round_ratios(self, side: Side | None = None, reference: Side | None = None) -> list[float]:
        """Each im-api round (of `side`, the API by default) against the rounds of
        `reference` (the baseline by default) just before and just after it (their mean),
        which cancels a load that rises or falls steadily meanwhile."""
        api, baseline = (side or self.api).round_rps(), (reference or self.baseline).round_rps()
        ratios = []
        for index, rps in enumerate(api):
            around = baseline[index : index + 2]
            reference = sum(around) / len(around) if around else 0.0
            ratios.append(rps / reference if reference else float("nan"))
        return ratios

    def summary(self) -> dict:
        return {
            "operation": self.operation,
            "label": self.label,
            "skipped": self.skipped,
            "size": self.size,
            "ratio": None if self.skipped else self.ratio,
            "round_ratios": [] if self.skipped else self.round_ratios(),
            "baseline": self.baseline.summary(),
            "im_api": self.api.summary(),
            "im_api_speed_off": self.speed_off.summary() if self.speed_off.rounds else None,
            "ratio_speed_off": None if not self.speed_off.rounds else self.ratio_speed_off,
            "im_api_metrics_on": self.metrics_on.summary() if self.metrics_on.rounds else None,
            "ratio_metrics_on_to_off": (
                None if not self.metrics_on.rounds else self.ratio_metrics_on
            ),
        }


def _median(ratios: list[float]) -> float:
    ratios = [r for r in ratios if r == r]
    return statistics.median(ratios) if ratios else float("nan")


def _number(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN prints as "-"


def table(results: list[Result]) -> str:
    head = (
        f"{'operation':<18} {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'cpu ms/req':>10}  {'ratio (rounds)':<17} notes"
    )
    lines = [head, "-" * len(head)]
    for result in results:
        if result.skipped:
            lines.append(f"{result.operation:<18} skipped: {result.skipped}")
            continue
        sides = [("baseline", result.baseline), ("im-api", result.api)]
        if result.speed_off.rounds:
            sides.append(("speed off", result.speed_off))
        if result.metrics_on.rounds:
            sides.append(("metrics", result.metrics_on))
        for name, side in sides:
            summary = side.summary()
            ratio = ""
            if side is not result.baseline:
                spread = [r for r in result.round_ratios(side) if r == r]
                ratio = f"{_median(spread):.2f}"
                if len(spread) > 1:
                    ratio += f" ({min(spread):.2f}-{max(spread):.2f})"
            notes = []
            if result.size and side.elapsed:
                notes.append(f"{side.count * result.size / MB / side.elapsed:.1f} MB/s")
            if summary["peak_memory_mib"] is not None:
                peak = max(0.0, summary["peak_memory_mib"])
                times = f" = {peak * MB / result.size:.2f}x size" if result.size else ""
                notes.append(f"peak +{peak:.1f} MiB{times}")
            errors = sum(summary["errors"].values())
            label = result.operation if side is result.baseline else ""
            lines.append(
                f"{label:<18} {name:<9} {_number(summary['rps']):>8} "
                f"{_number(summary['p50_ms']):>8} {_number(summary['p99_ms']):>8} "
                f"{errors:>6} {_number(summary['cpu_ms_per_request'], 2):>10}  {ratio:<17} "
                f"{', '.join(notes)}".rstrip()
            )
            for kind, sample in summary["error_samples"].items():
                lines.append(f"{'':<18}   {kind}: {sample[:100]}")
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
