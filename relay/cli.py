"""``ohttp relay``: run the Oblivious Relay Resource."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from typing import Any

from ohttp.aio.settings import INVALID_SETTINGS_EXIT, SettingsError, add_flag
from relay.config import RelayConfig, load_config

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
    ("shutdown_timeout", "SECONDS", "on SIGTERM, seconds forwards in flight get to finish "
     "(default 25)"),
    ("state", "URL", "shared state (rate-limit counters) on Redis: redis://HOST:PORT/DB, "
     "rediss://, unix://; by default this process's memory, shared by the workers with "
     "--workers > 1"),
    ("write_timeout", "SECONDS", "a client taking no bytes of a response for this long is "
     "abandoned: connection closed, gateway connection released (default 30)"),
    ("log_level", "LEVEL", "debug, info, warning or error (default info)"),
    ("log_mirror", "URL", "serve this key transparency log at /log/checkpoint and /log/tile/... "
     "so clients read it without revealing their address (default: off)"),
)


def configure(subparsers: Any) -> None:
    """Add the ``relay`` subcommand to the ``ohttp`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "relay", help="run an Oblivious Relay Resource",
        description="Forward message/ohttp-req to a fixed gateway, passing on nothing that "
        "identifies the client. Precedence: flags > OHTTP_RELAY_* environment > --config TOML "
        "> defaults.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_from_args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the relay options; an absent flag leaves the setting to the file or environment."""
    add_flag(
        parser, "gateway", "[NAME=]URL", "gateway URL (POST target, e.g. "
        "https://gw.example/.well-known/ohttp-gateway), served at POST /; NAME=URL serves it at "
        "POST /NAME; repeatable", repeatable=True,
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file with the same options [OHTTP_RELAY_CONFIG]"
    )
    for option, metavar, text in _FLAG_HELP:
        add_flag(parser, option, metavar, text)


def config_from_args(args: argparse.Namespace) -> RelayConfig:
    return load_config(args, args.config)


def run_from_args(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except SettingsError as exc:  # fixed text naming the option, never a value
        print(f"ohttp relay: {exc}", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    return run(config)


def run(config: RelayConfig) -> int:
    """Serve until SIGTERM/SIGINT; with workers > 1, one process per worker on one port."""
    from ohttp.aio.logs import configure_logging
    from ohttp.aio.serving import ports_free
    from ohttp.aio.supervisor import run_workers  # loads only when it runs

    configure_logging(config.log_level)
    if config.workers > 1 and not ports_free(_addresses(config)):
        return 1
    # Without Redis, the workers share the supervisor's store (ohttp.aio.store._shared).
    shared = 1_000_000 if config.state is None and config.rate_limit else None
    return run_workers(config.workers, partial(_worker, config), forward_sighup=True,
                       shared_store=shared, metrics=config.metrics_port is not None)


def _addresses(config: RelayConfig) -> list[tuple[str, int]]:
    addresses = [(config.listen_host, config.listen_port)]
    if config.metrics_host is not None and config.metrics_port is not None:
        addresses.append((config.metrics_host, config.metrics_port))
    return addresses


def _worker(config: RelayConfig, index: int) -> int:
    from ohttp.aio.serving import run_worker

    return run_worker(partial(_serve_until_signal, config, config.workers > 1))


async def _serve_until_signal(config: RelayConfig, reuse_port: bool) -> None:
    from ohttp.aio.serving import wait_for_stop
    from relay.app import create_app
    from relay.serve import refresh_on_sighup, serve  # aiohttp loads only when the relay runs

    app = create_app(config)
    aggregate = config.metrics_port is not None
    async with serve(config, app=app, reuse_port=reuse_port, aggregate=aggregate) as listening:
        log.info("relay listening", extra={"host": config.listen_host, "port": listening.port,
                                          "gateways": len(config.gateways)})
        if listening.metrics_port is not None:
            log.info("metrics listening", extra={"host": config.metrics_host,
                                                 "port": listening.metrics_port})
        with refresh_on_sighup(app):
            await wait_for_stop()
    log.info("relay stopped")
