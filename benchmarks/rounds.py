"""Interleaved rounds against several targets, and their "median (range)" report.

Each round measures every target once, in an order reversed every other round, so a change in
machine load hits all of them alike; ratios are taken per round (each target against that
round's reference run) and their median and range printed. Used by relay_bench and
gateway_bench.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import procs
from benchmarks.loadgen import LoadResult, LoadSpec, run_wrk


@dataclass(frozen=True)
class Sample:
    """One measurement of one target. CPU figures are microseconds per completed request."""

    requests_per_s: float | None  # None: not measured over HTTP
    user_us: float
    system_us: float  # the kernel's share (loopback TCP is most of it)
    failed: int

    @property
    def cpu_us(self) -> float:
        return self.user_us + self.system_us


def sample(requests_per_s: float | None, requests: int, cpu: procs.CpuTimes, failed: int) -> Sample:
    """A sample from ``cpu`` seconds spent on ``requests`` requests."""
    per_request = 1e6 / max(1, requests)
    return Sample(requests_per_s, cpu.user * per_request, cpu.system * per_request, failed)


def measure_wrk(server: procs.Server, spec: LoadSpec) -> tuple[Sample, LoadResult]:
    """One wrk run against ``spec.url``; CPU is that of all of ``server``'s processes."""
    pids = server.pids()
    before = procs.cpu_seconds(pids)
    result = run_wrk(spec)
    cpu = procs.cpu_seconds(pids) - before
    return sample(result.rps, result.requests, cpu, result.failed), result


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A command line with the options every rounds benchmark has (its first doc line as
    description)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="seconds per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    return parser


def interleave(measures: dict[str, Callable[[], Sample]], rounds: int) -> dict[str, list[Sample]]:
    """``rounds`` rounds over the targets, the order reversed every other round."""
    samples: dict[str, list[Sample]] = {name: [] for name in measures}
    order = list(measures)
    for round_number in range(rounds):
        for name in order if round_number % 2 == 0 else order[::-1]:
            samples[name].append(measures[name]())
    return samples


def spread(values: list[float], digits: int = 1) -> str:
    """``median (min-max)``."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def table(samples: dict[str, list[Sample]]) -> list[str]:
    """One line per target: req/s and CPU per request, median (range); user, sys medians."""
    width = max([9, *map(len, samples)])
    lines = [
        f"{'target':{width}} {'req/s median (range)':>26} {'CPU us/req median (range)':>28} "
        f"{'user':>6} {'sys':>6}  failed"
    ]
    for name, runs in samples.items():
        rates = [r.requests_per_s for r in runs if r.requests_per_s is not None]
        rate = spread(rates, 0) if len(rates) == len(runs) else "-"
        lines.append(
            f"{name:{width}} {rate:>26} {spread([r.cpu_us for r in runs]):>28} "
            f"{statistics.median(r.user_us for r in runs):6.1f} "
            f"{statistics.median(r.system_us for r in runs):6.1f}  "
            f"{sum(r.failed for r in runs)}"
        )
    return lines


def ratio(samples: dict[str, list[Sample]], name: str, reference: str) -> str:
    """``NAME/REFERENCE per round:`` CPU ratio, CPU above it and (over HTTP) throughput ratio."""
    pairs = list(zip(samples[name], samples[reference], strict=True))
    cpu = spread([r.cpu_us / f.cpu_us for r, f in pairs], 2)
    extra = spread([r.cpu_us - f.cpu_us for r, f in pairs])
    line = f"{name}/{reference} per round: CPU {cpu}x, {extra} us/req above {reference}"
    rates = [(r.requests_per_s, f.requests_per_s) for r, f in pairs]
    if all(r is not None and f for r, f in rates):
        line += f", throughput {spread([r / f for r, f in rates if r is not None and f], 2)}x"
    return line


def report(samples: dict[str, list[Sample]], reference: str, *extra: tuple[str, str]) -> None:
    """Print the table, every target against ``reference``, then each (name, reference) pair
    of ``extra`` present in ``samples``."""
    lines = table(samples)
    lines += [ratio(samples, name, reference) for name in samples if name != reference]
    lines += [ratio(samples, a, b) for a, b in extra if a in samples and b in samples]
    print("\n".join(lines))
