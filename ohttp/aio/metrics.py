"""One ``/metrics`` for every worker: prometheus-client's multiprocess mode.

The request path keeps its plain counters (``gateway.metrics``, ``relay.metrics``: no lock per
update). Each worker copies what its registry collects, and its process metrics, into its own
file of the multiprocess directory once a second and before each scrape (:class:`Export`);
whichever worker answers a scrape merges every worker's file (``MultiProcessCollector``).
Counters and histograms add up over all workers, also ones that have ended; gauges add up
over the live ones, except those in ``_GAUGE_MODES``. ``ohttp_build_info`` names the version.

The supervisor makes the directory before the workers start and removes it after they end
(:func:`multiprocess_directory`); a worker's live gauges go when it ends (``worker_ended``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "ENV",
    "Export",
    "aggregated_metrics_app",
    "multiprocess_directory",
    "worker_ended",
]

ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for the directory
FLUSH_INTERVAL = 1.0
# Gauges merged otherwise than by a sum over the live workers.
_GAUGE_MODES = {
    "ohttp_gateway_key_expiry_seconds": "livemin",
    "process_start_time_seconds": "livemin",
    "process_max_fds": "livemax",
}
_SKIPPED_SUFFIXES = ("_created", "_count", "_gsum", "_gcount")


@contextlib.contextmanager
def multiprocess_directory(enabled: bool) -> Iterator[None]:
    """A fresh private directory in ``PROMETHEUS_MULTIPROC_DIR`` while the block runs (the
    workers fork inside it); removed afterwards. Nothing when not ``enabled``."""
    if not enabled:
        yield
        return
    path = tempfile.mkdtemp(prefix="ohttp-metrics-")  # mode 0700
    previous = os.environ.get(ENV)
    os.environ[ENV] = path
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def worker_ended(pid: int) -> None:
    """A worker's live gauges leave the merged view (its counters stay in the sums)."""
    path = os.environ.get(ENV)
    if path:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Export:
    """Copies ``registry``'s samples (and this process's metrics) into this process's
    multiprocess files. Create it in the worker, after the fork."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._sources = (registry, _process_registry())
        self._value_class: Any = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self._values: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}

    def flush(self) -> None:
        for registry in self._sources:
            for family in registry.collect():
                self._copy(family)

    async def flush_forever(self) -> None:
        """Flush every ``FLUSH_INTERVAL`` seconds until cancelled."""
        while True:
            self.flush()
            await asyncio.sleep(FLUSH_INTERVAL)

    def _copy(self, family: Metric) -> None:
        if family.type not in ("counter", "gauge", "histogram"):
            return
        below: dict[tuple[tuple[str, str], ...], float] = {}
        for sample in family.samples:
            if sample.name.endswith(_SKIPPED_SUFFIXES):
                continue
            value = sample.value
            if sample.name.endswith("_bucket"):  # cumulative here, per bucket in the files
                series = tuple((k, v) for k, v in sample.labels.items() if k != "le")
                value, below[series] = value - below.get(series, 0.0), value
            self._value(family, sample.name, sample.labels).set(value)

    def _value(self, family: Metric, name: str, labels: dict[str, str]) -> Any:
        key = (family.name, name, tuple(labels.items()))
        found = self._values.get(key)
        if found is None:
            mode = _GAUGE_MODES.get(family.name, "livesum") if family.type == "gauge" else ""
            found = self._values[key] = self._value_class(
                family.type, family.name, name, tuple(labels), tuple(labels.values()),
                family.documentation, multiprocess_mode=mode,
            )  # fmt: skip
        return found


def _process_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class _BuildInfo(Collector):
    def __init__(self) -> None:
        try:
            self._version = importlib.metadata.version("ohttp")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a tree
            self._version = "unknown"

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("ohttp_build_info", "The running release", labels=["version"])
        info.add_metric([self._version], 1.0)
        yield info


def aggregated_metrics_app(export: Export) -> web.Application:
    """``GET /metrics``: every worker's metrics merged, and ``ohttp_build_info``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ[ENV])  # type: ignore[no-untyped-call]
    registry.register(_BuildInfo())

    async def metrics(_: web.Request) -> web.Response:
        export.flush()  # this worker's own numbers are current; the others' at most 1 s old
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
