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

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.keylog import load_logged_keys
from gateway.metrics import GatewayMetrics, create_metrics_app
from ohttp.aio.guard import ConnectionTracker
from ohttp.aio.logs import configure_logging
from ohttp.aio.serving import (
    TRACKER,
    run_worker,
    server_tls_context,
    serving,
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
    tracker = ConnectionTracker(config.max_connections, config.header_timeout)
    app[TRACKER] = tracker  # the gateway's routes mark their requests (tracked)
    metrics_app = None
    if config.metrics_address is not None:
        host, port = config.metrics_address
        metrics_app = (create_metrics_app(metrics.registry), (host, port + index))
    tls = server_tls_context(config.tls_cert, config.tls_key)
    host, port = config.listen_address
    async with serving(
        app, (host, port), tracker, tls=tls, reuse_port=config.workers > 1, metrics=metrics_app,
        shutdown_timeout=config.shutdown_timeout,
    ):
        # Everything loaded so far lives as long as the worker: keep the collector from
        # walking it again on every full collection while serving.
        gc.freeze()
        logger.info(
            "listening", extra={"host": host, "port": port, "worker": index, "tls": tls is not None}
        )
        try:
            await wait_for_stop()
        finally:
            logger.info("stopping", extra={"worker": index})


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
    configure_logging()
    if config.keys is None:
        logger.error("no_key_file")
        return 2
    try:
        asyncio.run(load_logged_keys(config))  # fail fast, before any worker starts
        _warn_if_others_can_read(config.keys)
        server_tls_context(config.tls_cert, config.tls_key)
    except (OSError, OHTTPError, ValueError, ssl.SSLError) as exc:
        logger.error("startup_failed", extra={"error": type(exc).__name__, "detail": str(exc)})
        return 1
    return run_workers(config.workers, partial(_worker, config), forward_sighup=True)
