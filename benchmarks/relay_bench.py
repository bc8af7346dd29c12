"""Relay vs nginx ``proxy_pass``, side by side against the same upstream (a benchmark, not a test).

    python -m benchmarks.relay_bench [--seconds 5] [--rounds 3] [--connections 32] [--body 1024]
                                     [--floor] [--proxy-floor] [--baseline DIR] [--rate-limit]

Upstream: nginx answering every POST with a fixed ``message/ohttp-res`` body. Proxies: nginx
``proxy_pass`` (1 worker, keep-alive upstream) and ``python -m relay`` (1 worker, uvloop). wrk
sends 1 KiB POSTs; CPU per request is the proxy processes' utime+stime delta over the run divided
by the completed requests (also shown split into user and system time). Each round measures every
target once, one after the other (the order reversed every other round), so a change in machine
load hits all of them alike; the ratios are taken per round (each target vs that round's nginx
run) and their median and range printed.
``--floor`` adds a bare aiohttp server that answers without forwarding (the framework's own cost
per request, the floor under any aiohttp relay); ``--proxy-floor`` adds ``pfloor``, the least
a Python relay on uvloop can do per forwarded request (``benchmarks.proxy_floor``: llhttp on
both sides, pooled upstream connections, no checks at all); ``--baseline DIR`` adds a second
relay run from DIR (a copy of an older ``relay`` package) for before/after comparisons in the
same run; ``--rate-limit`` adds the relay with a per-client rate limit that is never reached
(every request is still counted): ``limited`` on the process's memory store and, when
redis-server is installed, ``limited-redis`` on a Redis started for the run (the shared state
of replicas), which is what the limit costs per request against ``relay``.
Needs nginx and wrk on PATH; loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks import procs, rounds
from benchmarks.loadgen import LoadSpec, Pool, wrk_binary

# The upstream's answer: 32 bytes, about a sealed answer's size.
UPSTREAM_ANSWER = "0123456789abcdef0123456789abcdef"
# A limit wrk never reaches in a run (one client address), so every request is counted and
# forwarded: the cost of the check, not of refusals.
UNREACHED_LIMIT = ("--rate-limit", "1000000000", "--rate-limit-window", "3600")


def start_targets(args: argparse.Namespace, workdir: Path,
                  redis_url: str | None = None) -> list[procs.Server]:
    """The static upstream first, then nginx, relay and the optional targets, in report order."""
    upstream = procs.start_static_nginx(workdir, UPSTREAM_ANSWER)
    if upstream is None:
        raise RuntimeError("nginx is not installed")
    servers = [upstream]
    try:
        nginx = procs.start_nginx(upstream, 1, workdir)
        assert nginx is not None
        servers.append(nginx)
        servers.append(procs.start_relay(upstream, 1, workdir))
        if args.baseline:
            servers.append(procs.start_relay(upstream, 1, workdir, "baseline",
                                             cwd=args.baseline.resolve()))
        if args.floor:
            servers.append(procs.start_floor(workdir, len(UPSTREAM_ANSWER), "/"))
        if args.proxy_floor:
            servers.append(procs.start_proxy_floor(upstream, workdir))
        if args.rate_limit:
            servers.append(procs.start_relay(upstream, 1, workdir, "limited",
                                             extra=UNREACHED_LIMIT))
        if args.rate_limit and redis_url is not None:
            servers.append(procs.start_relay(upstream, 1, workdir, "limited-redis",
                                             extra=(*UNREACHED_LIMIT, "--state", redis_url)))
    except BaseException:
        for server in servers:
            procs.stop(server)
        raise
    return servers


def main() -> int:
    parser = rounds.parser(__doc__)
    parser.add_argument("--body", type=int, default=1024)
    parser.add_argument("--floor", action="store_true", help="also measure a bare aiohttp server")
    parser.add_argument("--proxy-floor", action="store_true",
                        help="also measure the forwarding floor (benchmarks.proxy_floor)")
    parser.add_argument("--baseline", type=Path, help="directory holding an older relay package")
    parser.add_argument("--rate-limit", action="store_true",
                        help="also the relay with a rate limit, on memory and on Redis")
    args = parser.parse_args()
    if not procs.nginx_binary() or not wrk_binary():
        print("needs nginx and wrk")
        return 1
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(procs.redis_server()) if args.rate_limit else None
        pool = Pool.write(workdir / "pool", [b"x" * args.body], "message/ohttp-req")
        servers = start_targets(args, workdir, redis_url)
        try:

            def measure(server: procs.Server) -> Callable[[], rounds.Sample]:
                spec = LoadSpec(server.url + "/", pool, args.connections, args.seconds, threads=2)
                return lambda: rounds.measure_wrk(server, spec)[0]

            samples = rounds.interleave({s.name: measure(s) for s in servers[1:]}, args.rounds)
        finally:
            for server in servers:
                procs.stop(server)
    rounds.report(samples, "nginx", ("limited", "relay"), ("limited-redis", "relay"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
