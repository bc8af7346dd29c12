"""Serving the gateway through the shared shell (``ohttp.aio``): listener, connection
guard, TLS, uvloop, worker processes, JSON-lines logs.

One worker runs in this process. ``workers > 1`` forks that many children, each serving the
same port through SO_REUSEPORT and loading the same key file (checklist A1.10: every worker
serves the same keys). The parent forwards SIGHUP (reload keys) and SIGTERM/SIGINT (stop) to
the children by PID and stops them all if one dies.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
from dataclasses import replace
from functools import partial
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.auth import load_tokens
from gateway.config import GatewayConfig
from gateway.engine import engine_handler, gateway_lane
from gateway.keylog import load_logged_keys
from gateway.metrics import GatewayMetrics
from gateway.pipeline.tokens import check_token_source
from gateway.rotation import rotate_forever
from ohttp.aio.engine import EngineLimits
from ohttp.aio.logs import configure_logging
from ohttp.aio.metrics import Export, aggregated_metrics_app
from ohttp.aio.serving import (
    ports_free,
    run_worker,
    server_tls_context,
    serving_engine,
    wait_for_stop,
)
from ohttp.aio.supervisor import run_workers
from ohttp.errors import OHTTPError

__all__ = ["serve"]

logger = logging.getLogger("gateway")


async def _serve_worker(config: GatewayConfig, index: int) -> None:
    metrics = GatewayMetrics()
    keys = await load_logged_keys(config)  # checked against the key transparency log, if any
    app = create_app(replace(config, reload_on_sighup=True), keys=keys, metrics=metrics)
    limits = EngineLimits(config.max_connections, config.header_timeout, config.keepalive_timeout)
    export = None if config.metrics_address is None else Export(metrics.registry)
    metrics_app = None
    if export is not None and config.metrics_address is not None:
        # One port for all workers: whichever answers merges every worker's numbers.
        metrics_app = (aggregated_metrics_app(export), config.metrics_address)
    tls = server_tls_context(config.tls_cert, config.tls_key, config.client_ca)
    host, port = config.listen_address
    async with serving_engine(
        app, engine_handler, (host, port), limits, tls=tls, reuse_port=config.workers > 1,
        metrics=metrics_app, shutdown_timeout=config.shutdown_timeout, lane=gateway_lane,
    ):
        # Everything loaded so far lives as long as the worker: keep the collector from
        # walking it again on every full collection while serving.
        gc.freeze()
        logger.info(
            "listening", extra={"host": host, "port": port, "worker": index, "tls": tls is not None}
        )
        tasks = [t for t in (_start_rotation(app, config, index), _start_export(export)) if t]
        try:
            await wait_for_stop()
        finally:
            logger.info("stopping", extra={"worker": index})
            for task in tasks:
                task.cancel()


def _start_rotation(
    app: web.Application, config: GatewayConfig, index: int
) -> asyncio.Task[None] | None:
    # One worker writes the key file; the supervisor's SIGHUP makes the others load it.
    if not config.key_rotation or index != 0 or config.keys is None:
        return None
    return asyncio.create_task(rotate_forever(
        app, config.keys, config.key_rotation, config.key_rotation_overlap,
        tell_parent=config.workers > 1,
    ))  # fmt: skip


def _start_export(export: Export | None) -> asyncio.Task[None] | None:
    return None if export is None else asyncio.create_task(export.flush_forever())


def _worker(config: GatewayConfig, index: int) -> int:
    return run_worker(partial(_serve_worker, config, index))


def _warn_if_others_can_read(path: Path) -> None:
    # Private keys: `ohttp keygen` writes 0600; anything readable by group or others is a leak.
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("key_file_permissions", extra={"detail": f"{path} has mode {mode:04o}; "
                                                                "use chmod 600"})


def serve(config: GatewayConfig) -> int:
    """Run the gateway until SIGTERM/SIGINT; returns the exit code."""
    configure_logging(config.log_level)
    if config.keys is None:
        logger.error("no_key_file")
        return 2
    try:
        asyncio.run(load_logged_keys(config))  # fail fast, before any worker starts
        check_token_source(config)
        _warn_if_others_can_read(config.keys)
        if config.relay_token_file is not None:
            load_tokens(config.relay_token_file)
            _warn_if_others_can_read(config.relay_token_file)
        server_tls_context(config.tls_cert, config.tls_key, config.client_ca)
    except (OSError, OHTTPError, ValueError, ssl.SSLError) as exc:
        logger.error("startup_failed", extra={"error": type(exc).__name__, "detail": str(exc)})
        return 1
    if config.workers > 1 and not ports_free(_addresses(config)):
        return 1
    # Without Redis, the workers share the supervisor's store (ohttp.aio.store._shared).
    shared = config.replay_cache_size if config.state is None else None
    return run_workers(config.workers, partial(_worker, config), forward_sighup=True,
                       shared_store=shared, metrics=config.metrics_address is not None)


def _addresses(config: GatewayConfig) -> list[tuple[str, int]]:
    metrics = config.metrics_address
    return [config.listen_address, *(() if metrics is None else (metrics,))]
