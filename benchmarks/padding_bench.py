"""Padding benchmark: what the default size classes cost on the demo's traffic.

``python -m benchmarks.padding_bench [--repeats N]`` (also ``python -m benchmarks padding``)

- **Bandwidth**: the demo's four exchanges (``ohttp demo``: a summary of the French chat and of
  the English chat, the English summary again as chunked OHTTP, a rewrite), sent by the real
  client through a recording relay to a real gateway with the processing backend, all in
  process on 127.0.0.1, once with ``--padding none`` on both sides and once with ``classes``.
  The bytes are what the relay carried (the encapsulated bodies), so HPKE overhead is in both.
- **CPU**: the one-shot exchanges' core work per request (encode and pad the request,
  encapsulate, decapsulate, decode; encode and pad the response, seal, open, decode) with and
  without padding. Process CPU time, the two interleaved; the ratio is the median over
  ``--repeats`` of paired samples, which cancels most of a shared machine's drift.

Not a test: nothing checks these numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

__all__ = ["main", "run"]

PROCESSING = "https://processing.internal"
OPS_PER_SAMPLE = 40


@dataclass
class Carried:
    """What the recording relay carried, per exchange: (label, request, response) bytes."""

    rows: list[tuple[str, int, int]] = field(default_factory=list)
    label: str = ""


def _recorder(gateway_url: str, carried: Carried) -> Any:
    import aiohttp
    from aiohttp import web

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                gateway_url, data=body, headers={"Content-Type": request.content_type}
            ) as answer,
        ):
            payload = await answer.read()
        carried.rows.append((carried.label, len(body), len(payload)))
        return web.Response(status=answer.status, body=payload, content_type=answer.content_type)

    app = web.Application()
    app.router.add_post("/", forward)
    return app


@asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[str]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _demo_calls() -> list[tuple[str, str, dict[str, object], bool]]:
    """The demo's exchanges (ohttp/cli/demo.py): (label, path, JSON body, chunked)."""
    from gateway.processing.samples import (
        ENGLISH_CHAT,
        ENGLISH_DRAFT,
        FRENCH_CHAT,
        summarize_payload,
    )

    return [
        ("summarize French chat", "/v1/summarize", summarize_payload(FRENCH_CHAT, 3), False),
        ("summarize English chat", "/v1/summarize", summarize_payload(ENGLISH_CHAT, 3), False),
        ("summarize, streamed", "/v1/summarize/stream", summarize_payload(ENGLISH_CHAT, 3), True),
        ("rewrite", "/v1/rewrite", {"text": ENGLISH_DRAFT, "style": "formal"}, False),
    ]


async def _carry(padding: str) -> list[tuple[str, int, int]]:
    from gateway.app import create_app
    from gateway.config import GatewayConfig
    from ohttp.aio.client import Client
    from ohttp.keys import GatewayKey, KeyRing

    key = GatewayKey.generate(1)
    carried = Carried()
    gateway_app = create_app(GatewayConfig(padding=padding), keys=KeyRing([key]))
    async with _serving(gateway_app) as gateway:
        recorder = _recorder(gateway + "/.well-known/ohttp-gateway", carried)
        async with (
            _serving(recorder) as relay,
            Client(relay + "/", key_config=key.config, padding=padding) as client,
        ):
            for label, path, body, chunked in _demo_calls():
                carried.label = label
                if chunked:
                    async with client.stream("POST", PROCESSING + path, json=body) as response:
                        async for _ in response:
                            pass
                else:
                    await client.request("POST", PROCESSING + path, json=body)
    return carried.rows


def bandwidth() -> list[str]:
    """Markdown rows: per exchange, the bytes carried without and with padding."""
    plain, padded = asyncio.run(_carry("none")), asyncio.run(_carry("classes"))
    lines = [
        "| exchange | request none | request classes | response none | response classes |",
        "|---|---:|---:|---:|---:|",
    ]
    for (label, req0, res0), (_, req1, res1) in zip(plain, padded, strict=True):
        lines.append(f"| {label} | {req0} | {req1} | {res0} | {res1} |")
    total0 = sum(req + res for _, req, res in plain)
    total1 = sum(req + res for _, req, res in padded)
    lines.append(
        f"| **total** | | | | **{total0} → {total1} bytes, +{100 * (total1 / total0 - 1):.1f}%** |"
    )
    return lines


def _round_trip(padding: str) -> Callable[[], None]:
    """One one-shot exchange's core work per demo request, as a callable over all three."""
    import json

    from gateway.backends.base import encode_response
    from gateway.processing import ProcessingBackend
    from ohttp import bhttp
    from ohttp.aio.client import build_inner_request
    from ohttp.encapsulation import decapsulate_request, encapsulate_request
    from ohttp.keys import GatewayKey, KeyRing
    from ohttp.padding import pad_message

    key = GatewayKey.generate(1)
    ring = KeyRing([key])
    backend = ProcessingBackend()
    date = ("date", formatdate(usegmt=True))
    pairs = []
    for _, path, body, chunked in _demo_calls():
        if chunked:
            continue
        request = build_inner_request(
            "POST", PROCESSING + path, [("content-type", "application/json"), date],
            json.dumps(body, ensure_ascii=False).encode(),
        )  # fmt: skip
        response = asyncio.run(backend.handle(request))
        pairs.append((request, response))

    def work() -> None:
        for request, response in pairs:
            inner = pad_message(bhttp.encode_request(request), padding)
            sealed, opener = encapsulate_request(key.config, inner)
            plaintext, sealer = decapsulate_request(ring, sealed)
            bhttp.decode_request(plaintext)
            answer = sealer.seal(pad_message(encode_response(response), padding))
            bhttp.decode_response(opener.open(answer))

    return work


def _sample(work: Callable[[], None]) -> float:
    started = time.process_time()
    for _ in range(OPS_PER_SAMPLE):
        work()
    return (time.process_time() - started) / OPS_PER_SAMPLE


def cpu(repeats: int) -> list[str]:
    """Markdown rows: CPU per demo round of three one-shot exchanges, none vs classes."""
    plain, padded = _round_trip("none"), _round_trip("classes")
    samples: list[tuple[float, float]] = []
    for _ in range(repeats):
        samples.append((_sample(plain), _sample(padded)))
    best0 = min(s[0] for s in samples)
    best1 = min(s[1] for s in samples)
    ratio = statistics.median(s[1] / s[0] for s in samples)
    return [
        "| core work for the 3 one-shot exchanges | µs (best) | x none (median of pairs) |",
        "|---|---:|---:|",
        f"| padding none | {best0 * 1e6:.0f} | 1.00 |",
        f"| padding classes | {best1 * 1e6:.0f} | {ratio:.2f} |",
    ]


def run(repeats: int) -> int:
    print("### Bandwidth on the demo's traffic (bytes the relay carried)\n")
    print("\n".join(bandwidth()))
    print("\n### CPU cost of padding\n")
    print("\n".join(cpu(repeats)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.padding_bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=21, help="paired CPU samples [21]")
    args = parser.parse_args(argv)
    return run(args.repeats)


if __name__ == "__main__":
    sys.exit(main())
