"""Prometheus metrics on an explicit registry; every label value comes from a closed enum.

The per-request metrics are plain counters that a collector turns into Prometheus samples only
when ``/metrics`` is scraped: a ``prometheus_client`` counter or histogram takes a lock on
every update, which costs several microseconds a request for nothing in a single-threaded
event loop. Update them from the event loop's thread only.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.utils import floatToGoString

from gateway.errors import Result
from ohttp.aio.logs import log_throttled

__all__ = ["GatewayMetrics", "LatencyHistogram", "create_metrics_app"]

# Sub-millisecond resolution: decapsulation is ~100 µs, a whole echo request well under 1 ms.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0)
_STAGES = ("decapsulate", "backend", "total")
# The origin (or another backend) failed: a log line too, with a closed reason.
_BACKEND_FAILURES = {Result.BACKEND_ERROR: "failed", Result.BACKEND_TIMEOUT: "timeout"}
_log = logging.getLogger("gateway")
_BOUND_LABELS = (*map(floatToGoString, _BUCKETS), "+Inf")


class LatencyHistogram:
    """Counts per bucket (upper bounds ``_BUCKETS``, then +Inf) and the sum, in seconds."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= the value.
        self.counts[bisect_left(_BUCKETS, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        cumulative, out = 0, []
        for bound, count in zip(_BOUND_LABELS, self.counts, strict=True):
            cumulative += count
            out.append((bound, float(cumulative)))
        return out


class GatewayMetrics:
    """The gateway's metrics. ``count``, the histograms, ``in_flight`` and ``key_requests``
    are plain Python values read at scrape time; ``key_reloads`` is a prometheus counter.
    ``pool_use``, when set, returns the backend connection pool's (in use, limit) at scrape
    time."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._by_result = dict.fromkeys(Result, 0)
        self.key_requests = 0
        self.in_flight = 0
        self.decapsulate_seconds = LatencyHistogram()
        self.backend_seconds = LatencyHistogram()
        self.total_seconds = LatencyHistogram()
        self.pool_use: Callable[[], tuple[int, int]] | None = None
        # Seconds until the last advertised key stops decrypting (None: no key expires).
        self.key_expiry: Callable[[], float | None] | None = None
        self.key_reloads = Counter(
            "ohttp_gateway_key_reloads",
            "Key file reloads by outcome",
            ["outcome"],
            registry=self.registry,
        )
        # Rare (an outage): a prometheus counter's lock costs nothing that matters here.
        self.store_errors = Counter(
            "ohttp_gateway_store_errors",
            "State store failures by reason (ohttp.aio.store.REASONS)",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(self)

    def count(self, result: Result) -> None:
        self._by_result[result] += 1
        if result in _BACKEND_FAILURES:  # the one place every outcome passes
            log_throttled(_log, "backend_failed", _BACKEND_FAILURES[result])

    def collect(self) -> Iterator[Metric]:
        """Prometheus samples of the plain values (the registry calls this on a scrape)."""
        requests = CounterMetricFamily(
            "ohttp_gateway_requests", "Gateway POST requests by result", labels=["result"]
        )
        for result, value in self._by_result.items():
            requests.add_metric([result.value], value)
        yield requests
        yield CounterMetricFamily(
            "ohttp_gateway_key_requests", "Key configuration fetches", value=self.key_requests
        )
        latency = HistogramMetricFamily(
            "ohttp_gateway_latency_seconds", "Time spent per stage", labels=["stage"]
        )
        histograms = (self.decapsulate_seconds, self.backend_seconds, self.total_seconds)
        for stage, histogram in zip(_STAGES, histograms, strict=True):
            latency.add_metric([stage], histogram.buckets(), histogram.sum)
        yield latency
        yield GaugeMetricFamily(
            "ohttp_gateway_in_flight", "POST requests being handled", value=self.in_flight
        )
        expiry = None if self.key_expiry is None else self.key_expiry()
        if expiry is not None:
            yield GaugeMetricFamily(
                "ohttp_gateway_key_expiry_seconds",
                "Seconds until the last advertised key stops decrypting (alert well before 0)",
                value=expiry,
            )
        if self.pool_use is not None:
            in_use, limit = self.pool_use()
            yield GaugeMetricFamily(
                "ohttp_gateway_backend_connections_in_use",
                "Backend pool connections handed out to requests",
                value=in_use,
            )
            yield GaugeMetricFamily(
                "ohttp_gateway_backend_connections_limit",
                "Most connections the backend pool opens (0: no limit)",
                value=limit,
            )


def create_metrics_app(registry: CollectorRegistry) -> web.Application:
    """A separate application serving ``GET /metrics``; bind it to its own listener."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
