"""Serving the relay through the shared shell (``ohttp.aio.serving``): the serving engine's
listener with its connection limits, TLS and the metrics listener. Worker processes are
started by ``relay.cli``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from functools import partial

from aiohttp import web

from ohttp.aio.engine import EngineLimits
from ohttp.aio.metrics import Export, aggregated_metrics_app
from ohttp.aio.serving import Listening, server_tls_context, serving_engine
from relay.app import create_app
from relay.config import RelayConfig
from relay.engine import engine_handler, relay_lane
from relay.metrics import create_metrics_app
from relay.state import STATE_KEY

__all__ = ["serve"]


async def refresh_mirrors(app: web.Application) -> None:
    """Refetch every gateway's keys now (SIGHUP), at most once per 5 s each."""
    mirrors = app[STATE_KEY].mirrors.values()
    await asyncio.gather(*(mirror.refresh_soon() for mirror in mirrors))


@contextlib.contextmanager
def refresh_on_sighup(app: web.Application) -> Iterator[None]:
    """SIGHUP refreshes the key mirrors while the block runs (``ohttp relay``)."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def start() -> None:
        task = loop.create_task(refresh_mirrors(app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, start)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


@contextlib.asynccontextmanager
async def serve(config: RelayConfig, *, app: web.Application | None = None,
                reuse_port: bool = False, aggregate: bool = False) -> AsyncIterator[Listening]:
    """Run the relay (and its metrics listener) on the serving engine until the block ends;
    port 0 picks a free one.

    ``aggregate``: the metrics listener merges every worker's metrics (``ohttp relay``, whose
    supervisor sets up ``ohttp.aio.metrics``'s directory).
    """
    app = app or create_app(config)
    state = app[STATE_KEY]
    metrics = None
    export = Export(state.metrics.registry) if aggregate else None
    if config.metrics_host is not None and config.metrics_port is not None:
        metrics_app = (create_metrics_app(state.metrics) if export is None
                       else aggregated_metrics_app(export))
        metrics = (metrics_app, (config.metrics_host, config.metrics_port))
    tls = server_tls_context(config.tls_cert, config.tls_key)
    # An idle connection between requests gets the head deadline, as on aiohttp (the relay
    # has no keep-alive setting of its own).
    limits = EngineLimits(config.max_connections, config.header_timeout, config.header_timeout)
    async with serving_engine(
        app, engine_handler, (config.listen_host, config.listen_port), limits, tls=tls,
        reuse_port=reuse_port, metrics=metrics, shutdown_timeout=config.shutdown_timeout,
        on_count=partial(setattr, state.metrics, "connections"), lane=relay_lane,
    ) as listening:
        flushing = None if export is None else asyncio.create_task(export.flush_forever())
        try:
            yield listening
        finally:
            if flushing is not None:
                flushing.cancel()
