"""``ohttp relay``: run the Oblivious Relay Resource."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from relay.config import ConfigError, RelayConfig, load_config

log = logging.getLogger("relay")

_FLAG_HELP: tuple[tuple[str, str, str], ...] = (
    # (option, metavar, help); every option is also a TOML key and an OHTTP_RELAY_* variable.
    ("listen", "HOST:PORT", "address to serve clients on (default 127.0.0.1:8081)"),
    ("metrics_listen", "HOST:PORT", "separate listener for Prometheus /metrics (default: off)"),
    ("workers", "N", "number of worker processes sharing the port via SO_REUSEPORT (default 1)"),
    ("tls_cert", "FILE", "serve HTTPS with this certificate chain (PEM); needs --tls-key"),
    ("tls_key", "FILE", "private key for --tls-cert (PEM)"),
    ("upstream_ca_file", "FILE", "CA bundle to verify https:// gateways (default: system CAs)"),
    ("gateway_token", "TOKEN", "send 'Authorization: Bearer TOKEN' to the gateway so it can "
     "tell this relay apart (prefer the TOML file or OHTTP_RELAY_GATEWAY_TOKEN: flags are "
     "visible in the process list)"),
    ("client_cert", "FILE", "TLS client certificate (PEM) presented to https:// gateways"),
    ("client_key", "FILE", "private key for --client-cert (PEM)"),
    ("max_body_bytes", "N", "largest request body accepted; larger is 413 (default 16 MiB)"),
    ("header_timeout", "SECONDS", "a request head must arrive within this time (default 10)"),
    ("body_timeout", "SECONDS", "a request body must arrive within this time (default 30)"),
    ("connect_timeout", "SECONDS", "gateway connect deadline; exceeded is 504 (default 5)"),
    ("upstream_timeout", "SECONDS", "gateway response head and read-gap deadline; exceeded is "
     "504 (default 30)"),
    ("max_connections", "N", "concurrent client connections; more are answered 503 (default 1024)"),
    ("max_in_flight", "N", "concurrent forwards; more are answered 503 (default 256)"),
    ("rate_limit", "N", "requests per client address per window, 0 = off (default 0)"),
    ("rate_limit_window", "SECONDS", "rate limit window (default 60)"),
    ("key_cache_default_ttl", "SECONDS", "key mirror lifetime when the gateway sends no "
     "max-age (default 300)"),
    ("key_cache_min_ttl", "SECONDS", "lower bound on the key mirror lifetime (default 60)"),
    ("key_cache_max_ttl", "SECONDS", "upper bound on the key mirror lifetime (default 86400)"),
    ("upstream_pool_size", "N", "idle keep-alive connections kept per gateway (default 64)"),
    ("upstream_idle_timeout", "SECONDS", "idle gateway connections are dropped after this "
     "(default 15)"),
)


def configure(subparsers: Any) -> None:
    """Add the ``relay`` subcommand to the ``ohttp`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "relay", help="run an Oblivious Relay Resource",
        description="Forward message/ohttp-req to a fixed gateway, passing on nothing that "
        "identifies the client. Precedence: flags > --config TOML > OHTTP_RELAY_* environment "
        "> defaults.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_from_args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway", action="append", metavar="[NAME=]URL", default=None,
        help="gateway URL (POST target, e.g. https://gw.example/.well-known/ohttp-gateway), "
        "served at POST /; NAME=URL serves it at POST /NAME; repeatable",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with the same options")
    for option, metavar, text in _FLAG_HELP:
        parser.add_argument("--" + option.replace("_", "-"), dest=option, metavar=metavar,
                            default=None, help=text)


def config_from_args(args: argparse.Namespace) -> RelayConfig:
    flags: dict[str, Any] = {name: getattr(args, name) for name, _, _ in _FLAG_HELP}
    flags["gateway"] = args.gateway
    return load_config(flags, args.config)


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"ohttp relay: {exc}", file=sys.stderr)
        return 2
    return run(config)


def run(config: RelayConfig) -> int:
    """Serve until SIGTERM/SIGINT; with workers > 1, one process per worker on one port."""
    if config.workers == 1:
        return run_worker(config, reuse_port=False)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker_entry, args=(config,)) for _ in range(config.workers)]
    for worker in workers:
        worker.start()

    def forward(signum: int, _: object) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM to that worker's own PID

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    # A worker ended by the SIGTERM forwarded above stopped normally.
    clean = (0, -signal.SIGTERM)
    return 0 if all(worker.exitcode in clean for worker in workers) else 1


def _worker_entry(config: RelayConfig) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run_worker(config, reuse_port=True))


def _loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.run

    def run_uvloop(main: Coroutine[Any, Any, int]) -> int:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)

    return run_uvloop


def run_worker(config: RelayConfig, *, reuse_port: bool) -> int:
    try:
        return _loop_runner()(_serve_until_signal(config, reuse_port))
    except OSError as exc:
        log.error("cannot listen: %s", exc.strerror or type(exc).__name__)
        return 1


async def _serve_until_signal(config: RelayConfig, reuse_port: bool) -> int:
    from relay.app import serve  # aiohttp is imported only when the relay runs

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(config, reuse_port=reuse_port) as listening:
        log.info("relay listening on %s:%d for %d gateway(s)", config.listen_host,
                 listening.port, len(config.gateways))
        if listening.metrics_port is not None:
            log.info("metrics on %s:%d", config.metrics_host, listening.metrics_port)
        await stop.wait()
    log.info("relay stopped")
    return 0
