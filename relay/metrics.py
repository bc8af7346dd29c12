"""Prometheus metrics for the relay. Labels come only from closed enums, never from requests."""

from __future__ import annotations

import enum

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


class Result(enum.StrEnum):
    """How one client request ended (the only label of the request counter)."""

    FORWARDED = "forwarded"  # gateway 2xx streamed back
    GATEWAY_CLIENT_ERROR = "gateway_client_error"  # gateway 4xx passed through
    GATEWAY_SERVER_ERROR = "gateway_server_error"  # gateway 3xx/5xx/bad media type -> 502/503
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # 502: unreachable or broke off
    UPSTREAM_TIMEOUT = "upstream_timeout"  # 504
    BAD_REQUEST = "bad_request"  # 400
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    TOO_LARGE = "too_large"  # 413
    CLIENT_TIMEOUT = "client_timeout"  # body deadline passed
    CLIENT_ABORTED = "client_aborted"  # client went away mid-forward
    RATE_LIMITED = "rate_limited"  # 429
    OVERLOADED = "overloaded"  # 503: in-flight cap
    KEYS_SERVED = "keys_served"
    KEYS_UNAVAILABLE = "keys_unavailable"


class Direction(enum.StrEnum):
    UPSTREAM = "upstream"  # client -> gateway body bytes
    DOWNSTREAM = "downstream"  # gateway -> client body bytes


class RelayMetrics:
    """One explicit registry per app, so tests and workers never share global state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ohttp_relay_requests", "Client requests by result", ["result"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "ohttp_relay_upstream_latency_seconds",
            "Time from starting the forward to the gateway's response head",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.bytes = Counter(
            "ohttp_relay_body_bytes", "Body bytes relayed", ["direction"], registry=self.registry
        )
        self.in_flight = Gauge(
            "ohttp_relay_in_flight", "Forwards in progress", registry=self.registry
        )
        self.connections = Gauge(
            "ohttp_relay_connections", "Open client connections", registry=self.registry
        )

        # Children resolved once: labels() per request is measurable on the hot path.
        self._results = {result: self.requests.labels(result.value) for result in Result}
        self._directions = {d: self.bytes.labels(d.value) for d in Direction}

    def count(self, result: Result) -> None:
        self._results[result].inc()

    def add_bytes(self, direction: Direction, amount: int) -> None:
        self._directions[direction].inc(amount)


def create_metrics_app(metrics: RelayMetrics) -> web.Application:
    """The separate metrics listener: ``GET /metrics`` only."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app
