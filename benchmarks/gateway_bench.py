"""Gateway CPU per request and req/s against the aiohttp floor (a benchmark, not a test).

    python -m benchmarks.gateway_bench [--seconds 5] [--rounds 3] [--connections 32]
        [--pool 40000] [--workers2] [--stub] [--shell] [--engine-stub] [--engine-work]
        [--inproc] [--baseline DIR]
        [--profile SECONDS]

Load: wrk ``-t1 -cN`` POSTing pre-encapsulated 1 KiB ``message/ohttp-req`` requests from a pool
of distinct requests (built once, cached in ``--workdir``) without a Date field, so the replay
check does not run; the backend is ``echo``. Targets:

- ``floor``: a bare aiohttp server (uvloop, no access log) whose one POST route reads the body
  and answers a fixed 200 ``message/ohttp-res`` of the echo answer's size: the framework's own
  cost per request, the floor under any aiohttp gateway;
- ``gateway``: ``python -m gateway --backend echo`` with one worker;
- ``baseline`` (``--baseline DIR``): the same, run from DIR, a directory holding an older copy
  of the ``gateway`` package (for before/after in one run);
- ``stub`` (``--stub``): the floor plus ``decapsulate_request`` and a sealed fixed answer of the
  same size, one process: the issue 18 reference for the gateway's own cost;
- ``shell`` (``--shell``): the stub's handler served through the project's serving shell
  (connection guard, head deadline, ``tracked``, no ``Server`` field): shell/stub is the
  shell's cost, gateway/shell that of the gateway's request path alone;
- ``estub`` (``--engine-stub``): the stub on the serving engine of ``ohttp gateway``;
  gateway/estub is what the gateway's request path costs over decapsulation and sealing on
  the same engine;
- ``ework`` (``--engine-work``): the engine stub plus the request work the gateway must do
  (Binary HTTP decode and encode, the echo body, padding) without the gateway's own code:
  ework/estub is that work's cost in a server, gateway/ework the gateway's code around it;
- ``workers2`` (``--workers2``): the gateway with ``--workers 2`` (req/s is what counts there),
  and ``stub2``, the stub as two processes sharing its port: the issue's own reference pair;
- ``inproc`` (``--inproc``): ``pipeline.answer_request`` called in this process on the same
  requests, no HTTP at all (CPU per request only).

CPU per request is the target's utime+stime delta (all its processes) over the run divided by
the completed requests. Each round measures every target once, in an order reversed every other
round, so a change in machine load hits all alike; ratios to the floor are taken per round and
their median and range printed. ``--profile S`` then records S seconds of py-spy on one gateway
worker and on the floor under the same load and prints the top frames of each (self and
inclusive).
Needs wrk on PATH (and py-spy for ``--profile``); loopback only.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs, rounds
from benchmarks.load import LoadConfig, build_ohttp_pool
from benchmarks.loadgen import LoadSpec, Pool, run_wrk, wrk_binary
from benchmarks.rounds import Sample

_ECHO_ANSWER_BYTES = 1500  # about what the echo backend's sealed answer to a 1 KiB body is


@dataclass
class Target:
    name: str
    server: procs.Server | None  # None: measured in this process

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + procs.GATEWAY_PATH


def _gateway(name: str, keys: Path, workdir: Path, cwd: Path, workers: int = 1) -> procs.Server:
    return procs.start_gateway(keys, workers, workdir, name, cwd=cwd, metrics=False)


class _Cursor:
    """Where in the pool the next run starts, so runs go on with requests not sent yet."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.next = 0

    def take(self, count: int) -> int:
        start = self.next
        self.next = (self.next + count + 64) % self.size
        return start


def measure_http(target: Target, pool: Pool, cursor: _Cursor, seconds: float,
                 connections: int) -> Sample:
    assert target.server is not None
    spec = LoadSpec(target.url, pool, connections, seconds, cursor.take(0))
    sample, result = rounds.measure_wrk(target.server, spec)
    cursor.take(result.requests)
    return sample


def inproc_runner(keys: Path, bodies: list[bytes]) -> Callable[[int], Sample]:
    """CPU per request of ``answer_request`` alone, on ``count`` bodies of the pool."""
    import uvloop

    from gateway.app import GATEWAY_STATE, create_app
    from gateway.config import GatewayConfig
    from gateway.pipeline import answer_request

    state = create_app(GatewayConfig(backend="echo", keys=keys))[GATEWAY_STATE]
    loop = uvloop.new_event_loop()
    position = [0]

    async def read_nothing(_length: int | None, _limit: int) -> bytes:
        raise AssertionError("unused")

    async def run(count: int) -> int:
        failed = 0
        for _ in range(count):
            body = bodies[position[0] % len(bodies)]
            position[0] += 1

            async def read(_length: int | None, _limit: int, body: bytes = body) -> bytes:
                return body

            answer = await answer_request(state, "POST", "message/ohttp-req", len(body), read)
            failed += answer.status != 200
        return failed

    def measure(count: int) -> Sample:
        before = os.times()
        failed = loop.run_until_complete(run(count))
        after = os.times()
        cpu = procs.CpuTimes(after.user - before.user, after.system - before.system)
        return rounds.sample(None, count, cpu, failed)

    return measure


def top_frames(raw: Path, count: int = 25) -> str:
    """Self and inclusive shares of py-spy ``--format raw`` stacks (line numbers dropped)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        samples = int(number)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"py-spy: {total} samples", "--- self"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(count)]
    lines += ["--- inclusive"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in inclusive.most_common(count + 15)]
    return "\n".join(lines)


def profile(target: Target, pool: Pool, cursor: _Cursor, seconds: float, connections: int,
            out: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    assert target.server is not None
    pid = target.server.processes[0].pid
    spec = LoadSpec(target.url, pool, connections, seconds + 3, cursor.take(0))
    load = threading.Thread(target=run_wrk, args=(spec,))
    load.start()
    time.sleep(1.5)
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                    "--rate", "500", "--format", "raw", "-o", str(out)],
                   check=True, capture_output=True)
    load.join()
    print(top_frames(out))


def _pool(workdir: Path, size: int) -> tuple[Path, Pool]:
    from ohttp.aio.keyfile import load_key_file, save_key_file
    from ohttp.keys import GatewayKey

    keys = workdir / "keys.json"
    if not keys.exists():
        save_key_file(keys, [GatewayKey.generate(1)], force=True)
    directory = workdir / f"pool-{size}" / "ohttp-pool"
    if (directory / "pool.bin").exists():
        return keys, Pool(directory / "pool.bin", directory / "pool.idx", size,
                          "message/ohttp-req")
    config = load_key_file(keys).current()[0].config.encode()
    pool, _ = build_ohttp_pool(config, LoadConfig(pool_size=size, body_size=1024),
                               workdir / f"pool-{size}")
    return keys, pool


def prepare(workdir: Path, pool_size: int) -> tuple[Path, Pool] | None:
    """The key file and the request pool in ``workdir``; None (said why) without wrk."""
    if not wrk_binary():
        print("needs wrk")
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    return _pool(workdir, pool_size)


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pool`` and ``--workdir``: where ``prepare`` keeps the keys and the request pool."""
    parser.add_argument("--pool", type=int, default=40_000, help="distinct requests")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ohttp-gateway-bench"))


def main() -> int:
    parser = rounds.parser(__doc__)
    add_pool_arguments(parser)
    parser.add_argument("--workers2", action="store_true", help="also run --workers 2")
    parser.add_argument("--inproc", action="store_true", help="also the pipeline without HTTP")
    parser.add_argument("--baseline", type=Path, help="directory holding an older gateway")
    parser.add_argument("--stub", action="store_true", help="also the floor + crypto stub")
    parser.add_argument("--shell", action="store_true", help="also the stub in our serving shell")
    parser.add_argument("--engine-stub", action="store_true", help="also the stub on the engine")
    parser.add_argument("--engine-work", action="store_true",
                        help="also the engine stub with the gateway's request work")
    parser.add_argument("--profile", type=float, default=0, help="py-spy seconds afterwards")
    args = parser.parse_args()
    prepared = prepare(args.workdir, args.pool)
    if prepared is None:
        return 1
    keys, pool = prepared
    cursor = _Cursor(pool.size)
    targets = [Target("floor", procs.start_floor(args.workdir, _ECHO_ANSWER_BYTES,
                                                 procs.GATEWAY_PATH)),
               Target("gateway", _gateway("gateway", keys, args.workdir, procs.REPO))]
    if args.baseline:
        targets.append(Target("baseline", _gateway("baseline", keys, args.workdir,
                                                   args.baseline.resolve())))
    if args.stub:
        targets.append(Target("stub", procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES,
                                                       procs.GATEWAY_PATH)))
    if args.shell:
        targets.append(Target("shell", procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES,
                                                        procs.GATEWAY_PATH, name="shell",
                                                        shell=True)))
    if args.engine_stub:
        targets.append(Target("estub", procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES,
                                                        procs.GATEWAY_PATH, name="estub",
                                                        engine=True)))
    if args.engine_work:
        targets.append(Target("ework", procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES,
                                                        procs.GATEWAY_PATH, name="ework",
                                                        engine=True, work=True)))
    if args.workers2:
        targets.append(Target("workers2", _gateway("workers2", keys, args.workdir, procs.REPO,
                                                   workers=2)))
        targets.append(Target("stub2", procs.start_stub(args.workdir, keys, _ECHO_ANSWER_BYTES,
                                                        procs.GATEWAY_PATH, name="stub2",
                                                        processes=2)))
    inproc = inproc_runner(keys, pool.load()[:5000]) if args.inproc else None
    if inproc is not None:
        targets.append(Target("inproc", None))
    try:
        for target in targets:  # warm-up
            if target.server is not None:
                measure_http(target, pool, cursor, 1, args.connections)

        def measure(target: Target) -> Callable[[], Sample]:
            if target.server is None:
                assert inproc is not None
                return lambda: inproc(3000)
            return lambda: measure_http(target, pool, cursor, args.seconds, args.connections)

        samples = rounds.interleave({t.name: measure(t) for t in targets}, args.rounds)
        rounds.report(samples, "floor", ("gateway", "baseline"), ("gateway", "stub"),
                      ("shell", "stub"), ("gateway", "shell"), ("estub", "stub"),
                      ("gateway", "estub"), ("ework", "estub"), ("gateway", "ework"),
                      ("workers2", "stub"), ("workers2", "stub2"))
        for target in targets[:2] if args.profile else []:  # the floor, then the gateway
            print(f"=== {target.name}")
            profile(target, pool, cursor, args.profile, args.connections,
                    args.workdir / f"{target.name}.pyspy.raw")
    finally:
        for target in targets:
            if target.server is not None:
                procs.stop(target.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
