"""Streaming benchmark: chunked OHTTP through a real relay and gateway vs the origin directly.

``python -m benchmarks.streaming [--repeats N] [--bulk-mib N]``

In one run, with an origin process that streams its body:

- a **paced** response: 64 KiB produced over 1 s (64 writes of 1 KiB, 1/64 s apart). Time to
  first byte and total time, fetched from the origin directly and as chunked OHTTP through
  ``ohttp relay`` + ``ohttp gateway --backend http://origin`` (``Client.stream``);
- a **bulk** response (8 MiB by default, written as fast as possible): throughput of chunked
  OHTTP (``Client.stream``) vs non-chunked OHTTP (``Client.request``) through the same stack,
  and of the origin directly.

Wall-clock times, median of ``--repeats`` runs after one warm-up. Not a test: nothing checks
the numbers. The origin: ``python -m benchmarks.streaming origin --listen 127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks.procs import (
    LOOPBACK,
    Server,
    free_port,
    start_gateway,
    start_python,
    start_relay,
    stop,
)

__all__ = ["main", "run"]

PACED_PIECES = 64
PACED_PIECE = 1024
PACED_SECONDS = 1.0
BULK_WRITE = 64 * 1024


# --- the origin --------------------------------------------------------------------------


def _run_origin(listen: str) -> None:
    from aiohttp import web

    async def paced(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        piece = b"p" * PACED_PIECE
        for index in range(PACED_PIECES):
            if index:
                await asyncio.sleep(PACED_SECONDS / PACED_PIECES)
            await response.write(piece)
        await response.write_eof()
        return response

    async def bulk(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        block = b"b" * BULK_WRITE
        for start in range(0, size, BULK_WRITE):
            await response.write(block[: min(BULK_WRITE, size - start)])
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/paced", paced)
    app.router.add_get("/bulk", bulk)
    app.router.add_get("/healthz", healthz)
    host, _, port = listen.rpartition(":")
    web.run_app(app, host=host, port=int(port), access_log=None, print=None)


# --- measurements ------------------------------------------------------------------------


Fetch = Callable[[str], Awaitable[tuple[float, float, int]]]


async def _direct(url: str) -> tuple[float, float, int]:
    import aiohttp

    started = time.perf_counter()
    first = 0.0
    size = 0
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        async for chunk in response.content.iter_any():
            if not size:
                first = time.perf_counter() - started
            size += len(chunk)
    return first, time.perf_counter() - started, size


def _through(client: object, chunked: bool) -> Fetch:
    from ohttp.aio.client import Client

    assert isinstance(client, Client)

    async def fetch(url: str) -> tuple[float, float, int]:
        started = time.perf_counter()
        if not chunked:
            response = await client.request("GET", url)
            elapsed = time.perf_counter() - started
            return elapsed, elapsed, len(response.content)
        first = 0.0
        size = 0
        async with client.stream("GET", url) as streamed:
            async for chunk in streamed:
                if not size:
                    first = time.perf_counter() - started
                size += len(chunk)
        return first, time.perf_counter() - started, size

    return fetch


async def _measure(fetch: Fetch, url: str, repeats: int, size: int) -> tuple[float, float]:
    await fetch(url)  # warm-up: connections, keys
    firsts, totals = [], []
    for _ in range(repeats):
        first, total, received = await fetch(url)
        if received != size:
            raise RuntimeError(f"received {received} bytes, expected {size}")
        firsts.append(first)
        totals.append(total)
    return statistics.median(firsts), statistics.median(totals)


async def _run(relay_url: str, origin_url: str, repeats: int, bulk: int) -> list[str]:
    from ohttp.aio.client import Client

    lines = []
    paced_size = PACED_PIECES * PACED_PIECE
    inner = origin_url  # the gateway forwards to the origin; inner URLs name its authority
    async with Client(relay_url, timeout=60, max_response_bytes=bulk + (1 << 20)) as client:
        rows = [
            ("origin directly", _direct, origin_url),
            ("chunked OHTTP via relay + gateway", _through(client, True), inner),
        ]
        lines.append(f"Paced: {paced_size // 1024} KiB over {PACED_SECONDS:g} s "
                     f"({PACED_PIECES} pieces), median of {repeats}")
        lines.append("| path | time to first byte | total |")
        lines.append("|---|---:|---:|")
        for name, fetch, base in rows:
            first, total = await _measure(fetch, base + "/paced", repeats, paced_size)
            lines.append(f"| {name} | {first * 1000:.1f} ms | {total * 1000:.0f} ms |")
        lines.append("")
        lines.append(f"Bulk: {bulk // (1 << 20)} MiB as fast as possible, median of {repeats}")
        lines.append("| path | total | throughput |")
        lines.append("|---|---:|---:|")
        bulk_rows = [
            ("origin directly", _direct, origin_url),
            ("chunked OHTTP via relay + gateway", _through(client, True), inner),
            ("non-chunked OHTTP via relay + gateway", _through(client, False), inner),
        ]
        for name, fetch, base in bulk_rows:
            _, total = await _measure(fetch, f"{base}/bulk?size={bulk}", repeats, bulk)
            rate = bulk / total / (1 << 20)
            lines.append(f"| {name} | {total * 1000:.0f} ms | {rate:.1f} MiB/s |")
    return lines


def run(repeats: int = 5, bulk_mib: int = 8) -> int:
    from ohttp.aio.keyfile import save_key_file
    from ohttp.keys import GatewayKey

    with tempfile.TemporaryDirectory(prefix="ohttp-bench-stream-") as directory:
        workdir = Path(directory)
        keys = workdir / "keys.json"
        save_key_file(keys, [GatewayKey.generate(1)])
        origin_port = free_port()
        origin_args = ["benchmarks.streaming", "origin", "--listen", f"{LOOPBACK}:{origin_port}"]
        origin = start_python("origin", origin_args, origin_port, workdir)
        started: list[Server] = [origin]
        try:
            gateway = start_gateway(keys, 1, workdir, metrics=False, backend=origin.url)
            started.append(gateway)
            relay = start_relay(gateway, 1, workdir)
            started.append(relay)
            lines = asyncio.run(_run(relay.url + "/", origin.url, repeats, bulk_mib << 20))
        finally:
            for server in reversed(started):
                stop(server)
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    origin = sub.add_parser("origin", help="run the streaming origin")
    origin.add_argument("--listen", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bulk-mib", type=int, default=8)
    args = parser.parse_args(argv)
    if args.command == "origin":
        _run_origin(args.listen)
        return 0
    return run(args.repeats, args.bulk_mib)


if __name__ == "__main__":
    sys.exit(main())
