"""``ohttp gateway``: run the Oblivious Gateway Resource.

Settings come from flags, then a TOML file (``--config``), then ``OHTTP_GATEWAY_*``
environment variables, then defaults; see docs/gateway.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from gateway.config import ENV_PREFIX, GatewayConfig, load_config
from ohttp.errors import OHTTPError

__all__ = ["add_arguments", "configure", "run"]

_DEFAULTS = GatewayConfig()
_DESCRIPTION = (
    "Serve an Oblivious Gateway Resource (RFC 9458): GET /.well-known/ohttp-gateway returns the "
    "key configurations, POST decapsulates message/ohttp-req and answers message/ohttp-res. "
    f"Every option can also be set in the TOML file or as {ENV_PREFIX}<NAME> "
    f"(e.g. {ENV_PREFIX}MAX_BODY); flags win over the file, the file over the environment."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the gateway options. Defaults are None so unset flags do not hide other sources."""
    add = parser.add_argument
    add("--keys", type=Path, metavar="FILE", help="key file (from `ohttp keygen`); required")
    add("--listen", metavar="HOST:PORT", help=f"address to serve on [{_DEFAULTS.listen}]")
    add(
        "--backend",
        metavar="SPEC",
        help="'processing' (built-in app), 'echo', or an http(s):// origin URL "
        f"[{_DEFAULTS.backend}]",
    )
    add(
        "--allow-target",
        action="append",
        metavar="AUTHORITY",
        help="also serve inner requests to this authority (HOST or HOST:PORT); repeatable. "
        "The backend's own authority is always allowed",
    )
    add("--config", type=Path, metavar="FILE", help="TOML file with these settings")
    add("--workers", type=int, metavar="N", help="processes sharing the port [1]")
    add(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics here (worker i on PORT+i) [off]",
    )
    add("--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain: serve HTTPS")
    add("--tls-key", type=Path, metavar="FILE", help="PEM private key for --tls-cert")
    add(
        "--require-date",
        action="store_const",
        const=True,
        help="refuse inner requests without a Date header (makes replay protection complete)",
    )
    add(
        "--date-window",
        type=float,
        metavar="S",
        help="accept an inner Date this many seconds either side of the clock; public "
        f"[{_DEFAULTS.date_window:g}]",
    )
    add("--max-body", type=int, metavar="BYTES", help=f"largest request [{_DEFAULTS.max_body}]")
    add(
        "--max-chunk",
        type=int,
        metavar="BYTES",
        help=f"largest chunk of a chunked request, at least 16384 [{_DEFAULTS.max_chunk}]",
    )
    add(
        "--max-in-flight",
        type=int,
        metavar="N",
        help=f"concurrent requests per worker before 503 [{_DEFAULTS.max_in_flight}]",
    )
    add(
        "--backend-timeout",
        type=float,
        metavar="S",
        help="seconds before the backend gets an inner 504, and the longest pause allowed "
        f"in a streamed response [{_DEFAULTS.backend_timeout:g}]",
    )
    add(
        "--header-timeout",
        type=float,
        metavar="S",
        help="seconds a connection may take to send a request head (after opening or after "
        f"the previous response); slower ones are closed [{_DEFAULTS.header_timeout:g}]",
    )
    add(
        "--max-connections",
        type=int,
        metavar="N",
        help="open client connections per worker; more are answered 503 and closed "
        f"[{_DEFAULTS.max_connections}]",
    )


def configure(subparsers: Any) -> None:
    """Add the ``gateway`` subcommand to the ``ohttp`` command line."""
    parser = subparsers.add_parser(
        "gateway", help="run an Oblivious Gateway Resource", description=_DESCRIPTION
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    flags = {key: value for key, value in vars(args).items() if key not in {"handler", "config"}}
    if flags.get("allow_target") is not None:
        flags["allow_target"] = tuple(flags["allow_target"])
    return load_config(flags, os.environ, args.config)


def run(args: argparse.Namespace) -> int:
    """Handler of ``ohttp gateway``; returns the exit code."""
    try:
        config = config_from_args(args)
    except (ValueError, OSError, OHTTPError) as exc:  # operator input: the message is safe
        print(f"ohttp gateway: {exc}", file=sys.stderr)
        return 2
    if config.keys is None:
        print("ohttp gateway: --keys FILE is required", file=sys.stderr)
        return 2
    from gateway._serve import serve  # the serving machinery loads only when it runs

    return serve(config)
