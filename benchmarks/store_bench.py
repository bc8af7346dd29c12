"""State store costs, side by side in one run: ``python -m benchmarks.store_bench``.

The stores of ``ohttp.aio.store``: memory (one process), shared (the supervisor's store, here
served by a forked process as under ``--workers N``), and Redis (a redis-server started for
the run on a free loopback port; skipped with a note if it is not installed). For each:

- **sequential**: one caller awaiting ``add()`` after ``add()``: the round trip, µs per call
  (wall time) and the caller's CPU µs per call (what a gateway worker spends);
- **concurrent**: ``--concurrency`` callers at once, as under load: calls/s (wall) and the
  caller's CPU µs per call. The shared store pipelines on its one socket; the Redis store
  uses its connection pool;
- Redis once more with ``pipeline=False`` (every call its own command), to show what the
  store's pipelining of calls made in one turn of the event loop saves;
- **replay check**: ``ReplayGuard.check`` (hash, Date parse, ``add``) sequentially, the whole
  per-request cost the gateway adds for replay protection, in µs.

Rounds are interleaved (memory, shared, Redis, then again); the best round of each counts
(interference on a shared machine only ever adds time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate

from benchmarks.procs import redis_server
from gateway.replay import ReplayGuard
from ohttp.aio.store import MemoryStore, SharedStoreServer, Store, open_store
from ohttp.aio.store._redis import RedisStore

Row = tuple[str, str, float, float]  # (store, measurement, value, caller CPU µs per call)


@contextmanager
def shared_store() -> Iterator[Callable[[], Store]]:
    """A forked process serving the supervisor's store; this process is its one worker."""
    server = SharedStoreServer(10_000_000)
    server.pair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the serving child
        try:
            server.serve_forever()
        finally:
            os._exit(0)
    server.in_child(0)
    try:
        yield lambda: open_store(None)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


@contextmanager
def redis_store() -> Iterator[Callable[[], Store] | None]:
    with redis_server() as url:
        if url is None:
            print("note: redis-server is not installed; the Redis column is skipped")
            yield None
        else:
            yield lambda: RedisStore(url, timeout=2.0)


def _unpipelined(make: Callable[[], Store]) -> Store:
    store = make()
    assert isinstance(store, RedisStore)
    store._pipeline = False
    return store


async def _timed(calls: int, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall µs, CPU µs) per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return ((time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6)


async def _measure(
    store: Store, calls: int, concurrency: int, tag: int
) -> dict[str, tuple[float, float]]:
    keys = [b"bench:%d:%d" % (tag, i) for i in range(calls)]

    async def sequential() -> None:
        for key in keys:
            await store.add(key, 60)

    async def concurrent() -> None:
        async def caller(part: list[bytes]) -> None:
            for key in part:
                await store.add(key + b"c", 60)

        await asyncio.gather(*(caller(keys[i::concurrency]) for i in range(concurrency)))

    guard = ReplayGuard(60.0, require_date=False, store=store)
    date = formatdate(usegmt=True).encode()
    encs = [os.urandom(32) for _ in range(calls)]

    async def replay() -> None:
        for enc in encs:
            await guard.check(date, 1, enc)

    await store.ping()  # connect before timing
    return {
        "sequential": await _timed(calls, sequential),
        "concurrent": await _timed(calls, concurrent),
        "replay check": await _timed(calls, replay),
    }


def run(calls: int, concurrency: int, rounds: int) -> list[Row]:
    best: dict[tuple[str, str], tuple[float, float]] = {}
    with shared_store() as shared, redis_store() as redis:
        factories: dict[str, Callable[[], Store]] = {
            "memory": lambda: MemoryStore(max_entries=10_000_000), "shared": shared,
        }
        if redis is not None:
            factories["redis"] = redis
            factories["redis, no pipeline"] = lambda: _unpipelined(redis)
        stores = {name: make() for name, make in factories.items()}

        async def all_rounds() -> None:
            for tag in range(rounds):
                for name, store in stores.items():
                    for what, sample in (await _measure(store, calls, concurrency, tag)).items():
                        old = best.get((name, what))
                        best[(name, what)] = sample if old is None or sample[0] < old[0] else old
            for store in stores.values():
                await store.close()

        asyncio.run(all_rounds())
    rows = []
    for (name, what), (wall, cpu) in best.items():
        value = 1e6 / wall if what == "concurrent" else wall
        rows.append((name, what, value, cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent callers")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args(argv)
    rows = run(args.calls, args.concurrency, args.rounds)
    print("| store | measurement | value | caller CPU µs/call |")
    print("|---|---|---:|---:|")
    for name, what, value, cpu in sorted(rows, key=lambda r: (r[1], r[0])):
        unit = "calls/s" if what == "concurrent" else "µs/call"
        print(f"| {name} | {what} | {value:,.1f} {unit} | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
