"""The client's key transparency cost: ``python -m benchmarks.tlog_bench [--rounds N]``.

One request through a real gateway (in-process aiohttp server on 127.0.0.1, echo backend),
with its keys from the gateway, three ways, interleaved in one run:

- **no log, cold**: a fresh ``Client`` per request (new connection, key fetch, request);
- **log, cold**: the same with ``log=``: also fetch the checkpoint and every tile over HTTP
  from ``ohttp log serve``'s app, verify the signature, rebuild the tiles, check the root and
  the key statement;
- **no log, cached**: one ``Client`` reused (keys cached, connection kept);
- **log, cached**: one ``Client`` with ``log=`` reused: the verified log is kept (for
  ``refresh`` seconds), so each request pays a lookup of its key's statement only.

"x no log" compares each log case with the no-log case of the same kind.

For logs of 1 and 1,000 key statements (a key a day for almost three years). Wall time per
request, median over rounds (the machine is shared; ratios side by side are what count).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.app import GATEWAY_PATH, create_app
from gateway.config import GatewayConfig
from ohttp.aio.client import Client
from ohttp.aio.tlog_dir import append_keys, init_log
from ohttp.aio.tlog_serve import create_log_app
from ohttp.keys import GatewayKey, KeyRing

TARGET = "https://echo.internal/x"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _make_log(directory: Path, key: GatewayKey, size: int) -> str:
    signer = init_log(directory, "bench.example/log", directory.parent / "log.key")
    others = [GatewayKey.generate(i % 256) for i in range(size - 1)]
    append_keys(directory, [*others, key], signer, now=int(time.time()))
    return signer.verifier.vkey


async def _time(operation: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await operation()
    return (time.perf_counter() - start) * 1e3


async def _bench(size: int, rounds: int) -> dict[str, float]:
    key = GatewayKey.generate(1)
    with tempfile.TemporaryDirectory() as temporary:
        log_dir = Path(temporary) / "log"
        vkey = _make_log(log_dir, key, size)
        config = GatewayConfig(backend="echo")
        gateway, gateway_url = await _serve(create_app(config, keys=KeyRing([key])))
        log_server, log_url = await _serve(create_log_app(log_dir))
        relay, keys = gateway_url + GATEWAY_PATH, gateway_url + GATEWAY_PATH
        try:

            async def plain() -> None:
                async with Client(relay, keys_url=keys) as client:
                    await client.request("GET", TARGET)

            async def cold() -> None:
                async with Client(relay, keys_url=keys, log=log_url, log_key=vkey) as client:
                    await client.request("GET", TARGET)

            async with (
                Client(relay, keys_url=keys) as reused,
                Client(relay, keys_url=keys, log=log_url, log_key=vkey) as cached,
            ):
                await reused.request("GET", TARGET)
                await cached.request("GET", TARGET)
                cases: dict[str, Callable[[], Awaitable[object]]] = {
                    "no log, cold": plain,
                    "log, cold": cold,
                    "no log, cached": lambda: reused.request("GET", TARGET),
                    "log, cached": lambda: cached.request("GET", TARGET),
                }
                samples: dict[str, list[float]] = {name: [] for name in cases}
                for _ in range(rounds):
                    for name, case in cases.items():
                        samples[name].append(await _time(case))
        finally:
            await log_server.cleanup()
            await gateway.cleanup()
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="requests per case")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 1000], help="log sizes")
    args = parser.parse_args(argv)
    print("| log size | case | ms/request | x no log |")
    print("|---:|---|---:|---:|")
    for size in args.sizes:
        result = asyncio.run(_bench(size, args.rounds))
        for name, value in result.items():
            base = result["no log, " + name.rsplit(" ", 1)[1]]
            print(f"| {size} | {name} | {value:.2f} | {value / base:.2f} |")


if __name__ == "__main__":
    main()
