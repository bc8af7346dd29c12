"""Serving the gateway: listeners, TLS, uvloop, worker processes, signals, JSON-lines logs.

One worker runs in this process. ``workers > 1`` forks that many children, each serving the
same port through SO_REUSEPORT and loading the same key file (checklist A1.10: every worker
serves the same keys). The parent forwards SIGHUP (reload keys) and SIGTERM/SIGINT (stop) to
the children by PID and stops them all if one dies.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

from aiohttp import web

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics, create_metrics_app
from ohttp.errors import OHTTPError
from ohttp.keys import load_key_file

__all__ = ["JsonLinesFormatter", "configure_logging", "serve"]

logger = logging.getLogger("gateway")

# Extra fields a gateway log record may carry; all are operator data or fixed names.
_LOG_FIELDS = ("error", "detail", "advertised", "host", "port", "worker", "workers", "tls", "code")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and whitelisted fields.

    Privacy by construction: the event is the record's message template, never formatted
    with its arguments, and exception tracebacks are never written. aiohttp's own records
    (e.g. "Error handling request from %s" with the peer address as argument) therefore
    lose their arguments.
    """

    def format(self, record: logging.LogRecord) -> str:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        document: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": template.split("\n", 1)[0][:120],
        }
        if record.name == "gateway" or record.name.startswith("gateway."):
            for name in _LOG_FIELDS:
                value = record.__dict__.get(name)
                if isinstance(value, str | int | float | bool):
                    document[name] = value
        return json.dumps(document)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _tls_context(config: GatewayConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


async def _serve_worker(config: GatewayConfig, index: int) -> None:
    metrics = GatewayMetrics()
    app = create_app(replace(config, reload_on_sighup=True), metrics=metrics)
    # access_log=None: aiohttp's default access log records client addresses and headers.
    runners = [web.AppRunner(app, access_log=None, handle_signals=False)]
    host, port = config.listen_address
    await runners[0].setup()
    reuse_port = True if config.workers > 1 else None
    site = web.TCPSite(
        runners[0], host, port, ssl_context=_tls_context(config), reuse_port=reuse_port
    )
    await site.start()
    metrics_address = config.metrics_address
    if metrics_address is not None:
        metrics_runner = web.AppRunner(
            create_metrics_app(metrics.registry), access_log=None, handle_signals=False
        )
        runners.append(metrics_runner)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, metrics_address[0], metrics_address[1] + index).start()
    # Everything loaded so far lives as long as the worker: keep the collector from walking it
    # again on every full collection while serving.
    gc.freeze()
    logger.info(
        "listening",
        extra={"host": host, "port": port, "worker": index, "tls": config.tls_cert is not None},
    )
    try:
        await _wait_for_stop()
    finally:
        logger.info("stopping", extra={"worker": index})
        for runner in reversed(runners):
            await runner.cleanup()


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def _run_worker(config: GatewayConfig, index: int) -> int:
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # the event loop is chosen here, in the entry point, never on import

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(_serve_worker(config, index))
        except OSError as exc:  # e.g. the port is taken: operator data only
            logger.error("listen_failed", extra={"error": type(exc).__name__})
            return 1
    return 0


def _run_workers(config: GatewayConfig) -> int:
    children: set[int] = set()
    for index in range(config.workers):
        pid = os.fork()
        if pid == 0:  # child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                code = _run_worker(config, index)
            finally:
                os._exit(code)
        children.add(pid)
    logger.info("workers_started", extra={"workers": config.workers})
    return _supervise(children)


def _supervise(children: set[int]) -> int:
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for pid in children:
            os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = 0
    while children:
        pid, status = os.waitpid(-1, 0)
        if pid not in children:
            continue
        children.discard(pid)
        if not stopping:  # a worker died on its own: stop the rest and report failure
            code = 1
            stopping = True
            for other in children:
                os.kill(other, signal.SIGTERM)
        elif os.waitstatus_to_exitcode(status) != 0:
            code = 1
    return code


def serve(config: GatewayConfig) -> int:
    """Run the gateway until SIGTERM/SIGINT; returns the exit code."""
    configure_logging()
    if config.keys is None:
        logger.error("no_key_file")
        return 2
    try:
        load_key_file(config.keys)  # fail fast, before any worker starts
        _tls_context(config)
    except (OSError, OHTTPError, ValueError, ssl.SSLError) as exc:
        logger.error("startup_failed", extra={"error": type(exc).__name__, "detail": str(exc)})
        return 1
    if config.workers == 1:
        return _run_worker(config, 0)
    return _run_workers(config)
