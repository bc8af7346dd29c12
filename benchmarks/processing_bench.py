"""The processing backend's hot path: µs per encapsulated request through ``gateway.pipeline``.

    python -m benchmarks.processing_bench [--requests 2000] [--rounds 5] [--path /v1/rewrite]
        [--baseline DIR]

Builds ``--requests`` distinct ``message/ohttp-req`` requests for ``processing.internal``
(client crypto is done before timing), then answers them in this process with
``pipeline.answer_request`` on a ``GatewayState`` whose backend is
``backend_from_spec("processing")``, one after the other on one event loop. No HTTP in front:
what is measured is the gateway's pipeline plus its way of reaching the processing service.
Every answer is checked afterwards (outer 200, inner 200).

``--baseline DIR`` also measures the ``gateway`` and ``ohttp`` packages of DIR (an older tree),
each round running both trees, each in a fresh subprocess, in alternating order; printed are
the median and range over the rounds of wall-clock and CPU µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_CHAT = (
    ("ana", "The release moves to Friday because the integration tests failed."),
    ("bo", "I will fix the flaky test tomorrow morning."),
    ("ana", "Great, then we ship on Friday at noon."),
)
_BODIES: dict[str, dict[str, Any]] = {
    "/v1/summarize": {
        "messages": [{"sender": s, "text": t} for s, t in _CHAT],
        "max_sentences": 2,
    },
    "/v1/summarize/stream": {
        "messages": [{"sender": s, "text": t} for s, t in _CHAT],
        "max_sentences": 2,
    },
    "/v1/rewrite": {"text": "hi team, the the report is basically done", "style": "formal"},
}


def _measure(tree: str | None, path: str, count: int) -> dict[str, float]:
    """One run in this process, with the packages of ``tree`` (None: this checkout)."""
    if tree is not None:
        sys.path.insert(0, tree)
    from gateway.backends import backend_from_spec
    from gateway.config import GatewayConfig
    from gateway.pipeline import Answer, GatewayState, answer_request
    from ohttp import bhttp
    from ohttp.encapsulation import encapsulate_request
    from ohttp.keys import GatewayKey, KeyRing

    key = GatewayKey.generate(1)
    content = json.dumps(_BODIES[path]).encode()
    inner = bhttp.Request(
        b"POST", b"https", b"processing.internal", path.encode(),
        headers=((b"content-type", b"application/json"),), content=content,
    )  # fmt: skip
    encoded = bhttp.encode_request(inner)
    pairs = [encapsulate_request(key.config, encoded) for _ in range(count)]
    backend = backend_from_spec("processing")
    state = GatewayState.from_config(GatewayConfig(backend="processing"), KeyRing([key]), backend)

    async def run() -> tuple[list[Answer], float, float]:
        await backend.start()
        try:
            answers: list[Answer] = []
            cpu, wall = os.times(), time.perf_counter()
            for body, _ in pairs:

                async def read(_length: int | None, _limit: int, body: bytes = body) -> bytes:
                    return body

                answer = await answer_request(state, "POST", "message/ohttp-req", len(body), read)
                assert isinstance(answer, Answer)
                answers.append(answer)
            wall, after = time.perf_counter() - wall, os.times()
            return answers, wall, (after.user - cpu.user) + (after.system - cpu.system)
        finally:
            await backend.close()

    answers, wall, cpu_seconds = asyncio.run(run())
    for answer, (_, opener) in zip(answers, pairs, strict=True):
        if answer.status != 200 or bhttp.decode_response(opener.open(answer.body)).status != 200:
            raise RuntimeError("a processing request failed")
    return {"wall_us": wall / count * 1e6, "cpu_us": cpu_seconds / count * 1e6}


def _subprocess(tree: str | None, path: str, count: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.processing_bench", "--once", "--path", path,
               "--requests", str(count)]  # fmt: skip
    if tree is not None:
        command += ["--tree", tree]
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=repo)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _summary(name: str, runs: list[dict[str, float]]) -> str:
    parts = []
    for metric in ("wall_us", "cpu_us"):
        values = [run[metric] for run in runs]
        parts.append(
            f"{metric} {statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"
        )
    return f"{name:>9}: " + "  ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--path", choices=sorted(_BODIES), default="/v1/rewrite")
    parser.add_argument("--baseline", help="a directory holding an older gateway/ and ohttp/")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        print(json.dumps(_measure(args.tree, args.path, args.requests)))
        return
    trees: list[tuple[str, str | None]] = [("current", None)]
    if args.baseline:
        trees.append(("baseline", str(Path(args.baseline).resolve())))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for number in range(args.rounds):
        order = trees if number % 2 == 0 else trees[::-1]
        for name, tree in order:
            runs[name].append(_subprocess(tree, args.path, args.requests))
    print(f"{args.path}, {args.requests} requests x {args.rounds} rounds, µs per request, "
          "median (range):")  # fmt: skip
    for name, _ in trees:
        print(_summary(name, runs[name]))


if __name__ == "__main__":
    main()
