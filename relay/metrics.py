"""Prometheus metrics for the relay. Labels come only from closed enums, never from requests."""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector


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
    STATE_UNAVAILABLE = "state_unavailable"  # 503: the state store did not answer


class Direction(enum.StrEnum):
    UPSTREAM = "upstream"  # client -> gateway body bytes
    DOWNSTREAM = "downstream"  # gateway -> client body bytes


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class RelayMetrics:
    """One explicit registry per app, so tests and workers never share global state.

    The per-request numbers are plain ints and floats read only when scraped: prometheus_client's
    Counter and Histogram take a lock on every update, which is measurable per request. The relay
    runs on one event loop thread per process, so no lock is needed.
    """

    def __init__(self, in_flight: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = dict.fromkeys(Result, 0)
        self._bytes = dict.fromkeys(Direction, 0)
        self._latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        self.connections = 0
        self.in_flight = in_flight
        self.registry.register(_Collector(self))

    def count(self, result: Result) -> None:
        self._requests[result] += 1

    def add_bytes(self, direction: Direction, amount: int) -> None:
        self._bytes[direction] += amount

    def observe_latency(self, seconds: float) -> None:
        self._latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "ohttp_relay_requests", "Client requests by result", labels=["result"]
        )
        for result, value in self._requests.items():
            requests.add_metric([result.value], value)
        yield requests
        cumulative = list(itertools.accumulate(self._latency_counts))
        yield HistogramMetricFamily(
            "ohttp_relay_upstream_latency_seconds",
            "Time from starting the forward to the gateway's response head",
            buckets=[(_le(b), c) for b, c in zip(LATENCY_BUCKETS, cumulative, strict=False)]
            + [("+Inf", cumulative[-1])],
            sum_value=self._latency_sum,
        )
        body = CounterMetricFamily("ohttp_relay_body_bytes", "Body bytes relayed",
                                   labels=["direction"])
        for direction, value in self._bytes.items():
            body.add_metric([direction.value], value)
        yield body
        yield GaugeMetricFamily("ohttp_relay_in_flight", "Forwards in progress",
                                value=self.in_flight())
        yield GaugeMetricFamily("ohttp_relay_connections", "Open client connections",
                                value=self.connections)


def _le(bound: float) -> str:
    return repr(float(bound))  # "0.001", "1.0": what prometheus_client prints for these bounds


class _Collector(Collector):
    def __init__(self, metrics: RelayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.families()


def create_metrics_app(metrics: RelayMetrics) -> web.Application:
    """The separate metrics listener: ``GET /metrics`` only."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app
