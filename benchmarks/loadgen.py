"""Load generators: wrk with a Lua script (highest load) or a built-in asyncio one.

Both cycle through a pool of distinct pre-built request bodies, hold a fixed number of
keep-alive connections for a fixed duration, and count every response by status and every
socket error by kind: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_post.lua"
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The quantile grid a result keeps (for merging rounds and for CDF plots).
QUANTILE_GRID: tuple[float, ...] = (
    *(round(i * 0.5, 1) for i in range(1, 199)),
    *(round(99.0 + i * 0.05, 2) for i in range(1, 20)),
    100.0,
)


def quantile(quantiles: dict[float, float], q: float) -> float:
    """The value at grid point ``q`` (nan when there were no samples)."""
    if not quantiles:
        return math.nan
    return quantiles[min(quantiles, key=lambda k: abs(k - q))]


@dataclass(frozen=True)
class Pool:
    """Request bodies in files (``data`` concatenated, ``index`` one length per line)."""

    data: Path
    index: Path
    size: int
    content_type: str

    @classmethod
    def write(cls, directory: Path, bodies: Sequence[bytes], content_type: str) -> Pool:
        directory.mkdir(parents=True, exist_ok=True)
        data, index = directory / "pool.bin", directory / "pool.idx"
        data.write_bytes(b"".join(bodies))
        index.write_text("".join(f"{len(body)}\n" for body in bodies))
        return cls(data, index, len(bodies), content_type)

    def load(self) -> list[bytes]:
        raw = self.data.read_bytes()
        bodies, offset = [], 0
        for line in self.index.read_text().split():
            bodies.append(raw[offset : offset + int(line)])
            offset += int(line)
        return bodies


@dataclass(frozen=True)
class LoadSpec:
    url: str
    pool: Pool
    connections: int
    duration: float
    start_index: int = 0
    timeout: float = 10.0
    threads: int = 1
    status_detail: bool = False  # wrk: count every status exactly (costs wrk CPU)


@dataclass
class LoadResult:
    """What one load phase measured. Latency quantiles are in microseconds."""

    tool: str
    requests: int
    duration: float
    statuses: dict[str, int]
    errors: dict[str, int]
    quantiles: dict[float, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def failed(self) -> int:
        return self.requests - self.ok + sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0


def quantiles_of(latencies_us: list[float]) -> dict[float, float]:
    """Nearest-rank quantiles of raw samples on QUANTILE_GRID."""
    if not latencies_us:
        return {}
    ordered = sorted(latencies_us)
    last = len(ordered) - 1
    return {
        q: ordered[min(last, max(0, math.ceil(q / 100 * len(ordered)) - 1))] for q in QUANTILE_GRID
    }


def merge_quantiles(parts: Sequence[tuple[int, dict[float, float]]]) -> dict[float, float]:
    """Quantiles of the mixture of several phases, each weighted by its request count."""
    points: list[tuple[float, float]] = []
    for weight, quantiles in parts:
        previous = 0.0
        for q in sorted(quantiles):
            points.append((quantiles[q], weight * (q - previous) / 100))
            previous = q
    total = sum(w for _, w in points)
    if total <= 0:
        return {}
    points.sort()
    merged: dict[float, float] = {}
    cumulative: float = 0.0
    targets = iter(QUANTILE_GRID)
    target = next(targets, None)
    for value, share in points:
        cumulative += share
        while target is not None and cumulative >= total * target / 100 - 1e-9:
            merged[target] = value
            target = next(targets, None)
    while target is not None:
        merged[target] = points[-1][0]
        target = next(targets, None)
    return merged


# --- wrk ---


def wrk_binary() -> str | None:
    return shutil.which("wrk")


_WRK_LINE = re.compile(r"^WRK (\S+) (\S+)$")


def run_wrk(spec: LoadSpec) -> LoadResult:
    """Run wrk with wrk_post.lua; its done() prints one ``WRK key value`` line per figure."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    threads = max(1, min(spec.threads, spec.connections))
    argv = [
        binary,
        f"-t{threads}",
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.duration))}s",
        f"--timeout={max(1, round(spec.timeout))}s",
        "-s",
        str(WRK_SCRIPT),
        spec.url,
        "--",
        str(spec.pool.data),
        str(spec.pool.index),
        str(spec.start_index),
        spec.pool.content_type,
        str(threads),
    ]
    env = {
        **os.environ,
        "WRK_QUANTILES": " ".join(str(q) for q in QUANTILE_GRID),
        "WRK_STATUS_DETAIL": "1" if spec.status_detail else "0",
    }
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=spec.duration + 60, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    figures: dict[str, float] = {}
    quantiles: dict[float, float] = {}
    for line in done.stdout.splitlines():
        match = _WRK_LINE.match(line.strip())
        if match is None:
            continue
        key, value = match.groups()
        if key.startswith("q"):
            quantiles[float(key[1:])] = float(value)
        else:
            figures[key] = float(value)
    if "requests" not in figures:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]}")
    requests = int(figures["requests"])
    statuses = {k.removeprefix("status_"): int(v) for k, v in figures.items() if k[:7] == "status_"}
    if sum(statuses.values()) != requests:
        # Fall back on wrk's own split: it counts responses with status > 399 as errors.
        bad_status = int(figures.get("wrk_status_errors", 0))
        statuses = {"2xx/3xx": requests - bad_status} | (
            {"4xx/5xx": bad_status} if bad_status else {}
        )
    errors = {
        kind: int(figures.get(kind, 0))
        for kind in ("connect", "read", "write", "timeout")
        if figures.get(kind, 0)
    }
    return LoadResult("wrk", requests, figures["duration_us"] / 1e6, statuses, errors, quantiles)


# --- built-in ---


class _Shared:
    def __init__(self, bodies: list[bytes], start: int) -> None:
        self.bodies = bodies
        self.next_index = start
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def take(self) -> bytes:
        body = self.bodies[self.next_index % len(self.bodies)]
        self.next_index += 1
        return body


def _request_head(url: str, content_type: str) -> bytes:
    """Request line and headers up to the Content-Length value (appended per request)."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: "
    )
    return head.encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns (status, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked, keep_alive = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep_alive


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(stream: Stream, shared: _Shared, head: bytes, timeout: float) -> bool:
    """One request on an open connection; returns whether the connection stays open."""
    reader, writer = stream
    body = shared.take()
    started = time.perf_counter()
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, keep_alive = await asyncio.wait_for(_read_response(reader), timeout)
    shared.latencies.append((time.perf_counter() - started) * 1e6)
    shared.statuses[str(status)] += 1
    return keep_alive


async def _connection(spec: LoadSpec, shared: _Shared, head: bytes, deadline: float) -> None:
    """One client connection: requests back to back until the deadline, reconnecting on error."""
    parts = urlsplit(spec.url)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    stream: Stream | None = None
    while time.monotonic() < deadline:
        try:
            if stream is None:
                connecting = asyncio.open_connection(host, port, ssl=tls)
                stream = await asyncio.wait_for(connecting, spec.timeout)
            if not await _exchange(stream, shared, head, spec.timeout):
                _close(stream)
                stream = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            shared.errors[type(exc).__name__] += 1
            _close(stream)
            stream = None
            await asyncio.sleep(0.01)  # a refused connection must not spin the loop
        except TimeoutError:
            shared.errors["timeout"] += 1
            _close(stream)
            stream = None
    _close(stream)


def _close(stream: Stream | None) -> None:
    """Close ``stream`` if open."""
    if stream is not None:
        with contextlib.suppress(Exception):
            stream[1].close()


async def run_builtin_async(spec: LoadSpec) -> LoadResult:
    """The built-in generator: ``connections`` keep-alive connections for ``duration`` s."""
    shared = _Shared(spec.pool.load(), spec.start_index)
    head_start = _request_head(spec.url, spec.pool.content_type)
    started = time.monotonic()
    deadline = started + spec.duration
    await asyncio.gather(
        *(_connection(spec, shared, head_start, deadline) for _ in range(spec.connections))
    )
    elapsed = time.monotonic() - started
    requests = sum(shared.statuses.values())
    return LoadResult(
        "builtin",
        requests,
        elapsed,
        dict(shared.statuses),
        dict(shared.errors),
        quantiles_of(shared.latencies),
    )


def run_builtin(spec: LoadSpec) -> LoadResult:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_builtin_async(spec))
    return uvloop.run(run_builtin_async(spec))


def run_load(spec: LoadSpec, tool: str) -> LoadResult:
    """Run one load phase with ``tool`` ("wrk" or "builtin")."""
    return run_wrk(spec) if tool == "wrk" else run_builtin(spec)
