"""The longest the event loop is blocked by one hostile request within the default limits.

``python -m benchmarks.worst_cases [--quick]`` (issue 13, finding 4). For each parser an
attacker reaches with many tiny pieces it builds the worst input that fits the gateway's
default ``--max-body`` (1 MiB), and times the longest synchronous step the gateway takes on it,
before (no chunk limit, the whole network piece fed at once) and after (the default limits and
the slicing of ``gateway.pipeline.streamed``), side by side in one run:

- Binary HTTP, indeterminate length: one-byte content chunks (2 bytes each);
- chunked OHTTP: one-byte chunks (18 bytes each, one AEAD operation each), arriving as one
  1 MiB network piece.

Timing: process CPU time, best of the repeats (interference only ever adds time).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable

from gateway.config import GatewayConfig
from gateway.pipeline.streamed import _FEED_SLICE
from ohttp import bhttp
from ohttp.chunked import ChunkedRequestDecoder, ChunkedRequestEncoder, ChunkLimits
from ohttp.errors import OHTTPError
from ohttp.keys import GatewayKey, KeyRing
from ohttp.varint import encode_varint

MAX_BODY = GatewayConfig().max_body


def _best_ms(step: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        with contextlib.suppress(OHTTPError):  # a limit refusing the input is measured too
            step()
        best = min(best, time.process_time() - started)
    return best * 1000


def _tiny_bhttp() -> bytes:
    control = b"".join(encode_varint(len(p)) + p for p in (b"GET", b"https", b"a", b"/"))
    chunks = (MAX_BODY - 256) // 2  # room for the encapsulation around it
    return encode_varint(2) + control + b"\x00" + b"\x01a" * chunks + b"\x00\x00"


def _tiny_chunked(key: GatewayKey) -> bytes:
    encoder = ChunkedRequestEncoder(key.config)
    body = bytearray(encoder.header())
    while len(body) < MAX_BODY - 256:
        body += encoder.chunk(b"x")
    return bytes(body + encoder.final(b""))


def _feed(ring: KeyRing, body: bytes, slice_size: int) -> Callable[[], float]:
    def step() -> float:
        limit = 1 << 14
        decoder = ChunkedRequestDecoder(ring, limits=ChunkLimits(limit, limit))
        longest = 0.0
        for start in range(0, len(body), slice_size):
            began = time.process_time()
            decoder.feed(body[start : start + slice_size])
            longest = max(longest, time.process_time() - began)
        return longest

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worst_cases")
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    message = _tiny_bhttp()
    before = bhttp.Limits(max_content_bytes=MAX_BODY, max_content_chunks=1 << 30)
    after = bhttp.Limits(max_content_bytes=MAX_BODY)
    key = GatewayKey.generate(1)
    ring = KeyRing([key])
    chunked = _tiny_chunked(key)
    rows = [
        ("bhttp, 1-byte chunks", len(message),
         _best_ms(lambda: bhttp.decode_request(message, before), repeats),
         _best_ms(lambda: bhttp.decode_request(message, after), repeats)),
    ]  # fmt: skip
    # The chunked decoder's longest single feed: the whole piece, then one slice.
    whole = min(_feed(ring, chunked, len(chunked))() for _ in range(repeats))
    sliced = min(_feed(ring, chunked, _FEED_SLICE)() for _ in range(repeats))
    rows.append(("chunked OHTTP, 1-byte chunks", len(chunked), whole * 1000, sliced * 1000))
    print(f"{'worst case':32} {'bytes':>9} {'before ms':>10} {'after ms':>9}")
    for name, size, old, new in rows:
        print(f"{name:32} {size:9d} {old:10.1f} {new:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
