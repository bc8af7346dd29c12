"""What every relay handler shares: configuration, metrics, pools and mirrors, in one object."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ohttp.aio.guard import ConnectionTracker
from relay.config import RelayConfig
from relay.keymirror import KeyMirror
from relay.metrics import RelayMetrics
from relay.ratelimit import RateLimiter
from relay.upstream import UpstreamPool


@dataclass
class RelayState:
    """The relay application's state; pools and mirrors exist while the app runs."""

    config: RelayConfig
    metrics: RelayMetrics
    tracker: ConnectionTracker
    limiter: RateLimiter | None
    pools: dict[str, UpstreamPool] = field(default_factory=dict)
    mirrors: dict[str, KeyMirror] = field(default_factory=dict)
    in_flight: int = 0


STATE_KEY = web.AppKey("relay_state", RelayState)
