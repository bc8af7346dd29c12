"""Why the same decapsulate-and-seal costs more inside a server than in a loop (issue 18).

    python -m benchmarks.crypto_in_server [--seconds 3] [--rounds 3] [--requests 3000]
        [--pool 40000]

Thread CPU time per request of ``decapsulate_request`` + ``seal`` (1 KiB requests, a sealed
answer of the echo answer's size), measured three ways in each round:

- ``warm loop``: one request after another in this process, caches warm;
- ``loop, N KiB evicted``: the same, touching every cache line of an N KiB buffer between
  requests (what a server's other work does to the caches: the kernel's network stack, the
  event loop, HTTP parsing);
- ``in server``: inside the stub gateway (``benchmarks.stub --timed``) under ``wrk -c32``,
  timed around the same two calls. Also the stub's whole CPU per request.

A benchmark, not a test; needs wrk; loopback only.
"""

from __future__ import annotations

import statistics
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks import procs, rounds
from benchmarks.gateway_bench import _ECHO_ANSWER_BYTES, add_pool_arguments, prepare
from benchmarks.loadgen import LoadSpec
from ohttp.aio.keyfile import load_key_file
from ohttp.encapsulation import decapsulate_request

_EVICT_KIB = (1024, 4096)


def loop_cpu_us(keys: Path, bodies: list[bytes], evict_kib: int) -> float:
    """Thread CPU µs per decapsulate + seal, evicting ``evict_kib`` KiB of cache before each."""
    ring = load_key_file(keys)
    answer = bytes(_ECHO_ANSWER_BYTES - 32)
    junk = bytearray(evict_kib * 1024)
    lines = b"\x01" * len(junk[::64])
    spent = 0.0
    for body in bodies:
        if evict_kib:
            junk[::64] = lines  # one write per 64-byte cache line
        started = time.thread_time()
        _inner, sealer = decapsulate_request(ring, body)
        sealer.seal(answer)
        spent += time.thread_time() - started
    return 1e6 * spent / len(bodies)


def _crypto_cpu(server: procs.Server) -> tuple[int, float]:
    with urllib.request.urlopen(server.url + "/crypto-cpu", timeout=5) as answer:
        count, seconds = answer.read().split()
    return int(count), float(seconds)


def server_cpu_us(server: procs.Server, spec: LoadSpec) -> tuple[float, float]:
    """(crypto thread CPU µs per request, whole process CPU µs per request) under ``spec``."""
    count, seconds = _crypto_cpu(server)
    sample, _ = rounds.measure_wrk(server, spec)
    count_after, seconds_after = _crypto_cpu(server)
    return 1e6 * (seconds_after - seconds) / max(1, count_after - count), sample.cpu_us


def main() -> int:
    parser = rounds.parser(__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="per loop measurement")
    add_pool_arguments(parser)
    args = parser.parse_args()
    prepared = prepare(args.workdir, args.pool)
    if prepared is None:
        return 1
    keys, pool = prepared
    bodies = pool.load()
    stub = procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES, procs.GATEWAY_PATH,
                            name="timed-stub", timed=True)
    results: dict[str, list[float]] = {}
    try:
        for number in range(args.rounds):
            start = number * args.requests % max(1, len(bodies) - args.requests)
            chunk = bodies[start : start + args.requests]
            for kib in (0, *_EVICT_KIB):
                name = "warm loop" if not kib else f"loop, {kib} KiB evicted"
                results.setdefault(name, []).append(loop_cpu_us(keys, chunk, kib))
            spec = LoadSpec(stub.url + procs.GATEWAY_PATH, pool, args.connections, args.seconds,
                            start)
            crypto, whole = server_cpu_us(stub, spec)
            results.setdefault("in server (crypto only)", []).append(crypto)
            results.setdefault("in server (whole stub process)", []).append(whole)
    finally:
        procs.stop(stub)
    warm = statistics.median(results["warm loop"])
    print(f"{'decapsulate + seal, thread CPU per request':44s} {'median us':>10s} {'vs warm':>8s}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:44s} {median:10.1f} {median / warm:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
