"""The gateway's readiness checks (``ohttp.aio.readiness``): usable keys, a reachable origin,
an answering state store."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from gateway.config import parse_origin
from gateway.pipeline import GatewayState
from ohttp.aio.readiness import readiness_of, remembered

__all__ = ["add_gateway_checks"]


def add_gateway_checks(app: web.Application, state: GatewayState, origin: str | None) -> None:
    """``keys``: a key is advertised now; ``backend``: the origin URL ``origin`` (if the backend
    is one) accepts a TCP connection; ``state``: the store of replay records and spent tokens
    answers (issue 14: a gateway that cannot check replays is not ready)."""
    checks = readiness_of(app)

    async def keys() -> bool:
        return bool(state.keys.ring.current(time.time()))

    checks.add("keys", keys)
    checks.add("state", remembered(state.replay.ready))
    if origin is not None:
        url = parse_origin(origin)
        port = url.port or (443 if url.scheme == "https" else 80)
        checks.add("backend", remembered(lambda: _accepts(url.raw_host or "", port)))


async def _accepts(host: str, port: int) -> bool:
    # A TCP connection only: an HTTP request would reach the origin's logs and limits.
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    return True
