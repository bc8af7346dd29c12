"""Serving the issuer through the shared shell (``ohttp.aio.serving``): one process.

One worker: the quota lives in the store of the ``state`` setting; the memory store is per
process. Replicas that share a store (its Redis backend) agree on every account's quota.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import replace
from functools import partial

from issuer.app import create_app
from issuer.config import IssuerConfig
from issuer.keys import load_accounts, load_issuer_keys
from ohttp.aio.guard import ConnectionTracker
from ohttp.aio.logs import configure_logging
from ohttp.aio.serving import TRACKER, run_worker, server_tls_context, serving, wait_for_stop
from ohttp.errors import OHTTPError

__all__ = ["serve"]

logger = logging.getLogger("ohttp.issuer")


async def _serve(config: IssuerConfig) -> None:
    app = create_app(replace(config, reload_on_sighup=True))
    tracker = ConnectionTracker(config.max_connections, config.header_timeout)
    app[TRACKER] = tracker
    tls = server_tls_context(config.tls_cert, config.tls_key)
    host, port = config.listen_address
    async with serving(
        app, (host, port), tracker, tls=tls, shutdown_timeout=config.shutdown_timeout
    ):
        logger.info("listening", extra={"host": host, "port": port, "tls": tls is not None})
        try:
            await wait_for_stop()
        finally:
            logger.info("stopping")


def serve(config: IssuerConfig) -> int:
    """Run the issuer until SIGTERM/SIGINT; returns the exit code."""
    configure_logging()
    try:  # fail fast on a bad file, with its path (configuration) and never its content
        if config.key is not None:
            load_issuer_keys(config.key)
            if config.key.stat().st_mode & 0o077:
                logger.warning("key_file_permissions", extra={"detail": f"{config.key}: chmod 600"})
        if config.accounts is not None:
            load_accounts(config.accounts)
        server_tls_context(config.tls_cert, config.tls_key)
    except (OSError, OHTTPError, ssl.SSLError) as exc:
        logger.error("startup_failed", extra={"error": type(exc).__name__})
        return 1
    return run_worker(partial(_serve, config))
