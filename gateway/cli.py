"""``ohttp gateway``: run the Oblivious Gateway Resource.

Settings come from flags, then a TOML file (``--config``), then ``OHTTP_GATEWAY_*``
environment variables, then defaults; see docs/gateway.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.config import ENV_PREFIX, GatewayConfig, load_config
from ohttp.aio.settings import INVALID_SETTINGS_EXIT, SettingsError, add_flag

__all__ = ["add_arguments", "configure", "run"]

_DEFAULTS = GatewayConfig()
_DESCRIPTION = (
    "Serve an Oblivious Gateway Resource (RFC 9458): GET /.well-known/ohttp-gateway returns the "
    "key configurations, POST decapsulates message/ohttp-req and answers message/ohttp-res. "
    f"Every option can also be set in the TOML file or as {ENV_PREFIX}<NAME> "
    f"(e.g. {ENV_PREFIX}MAX_BODY); flags win over the file, the file over the environment."
)

# (option, metavar or None for a switch, help); every option is also a TOML key and an
# OHTTP_GATEWAY_* variable, coerced by the GatewayConfig field type.
_FLAGS: tuple[tuple[str, str | None, str], ...] = (
    ("keys", "FILE", "key file (from `ohttp keygen`); required"),
    ("listen", "HOST:PORT", f"address to serve on [{_DEFAULTS.listen}]"),
    ("backend", "SPEC", "'processing' (built-in app), 'echo', or an http(s):// origin URL "
     f"[{_DEFAULTS.backend}]"),
    ("workers", "N", f"processes sharing the port [{_DEFAULTS.workers}]"),
    ("metrics_listen", "HOST:PORT", "serve Prometheus /metrics here, all workers merged [off]"),
    ("tls_cert", "FILE", "PEM certificate chain: serve HTTPS"),
    ("tls_key", "FILE", "PEM private key for --tls-cert"),
    ("require_date", None,
     "refuse inner requests without a Date header (makes replay protection complete)"),
    ("date_window", "S", "accept an inner Date this many seconds either side of the clock; "
     f"public [{_DEFAULTS.date_window:g}]"),
    ("max_body", "BYTES", "largest request body as received (encapsulated bytes; the inner "
     f"content is smaller by its head and about 60 bytes) [{_DEFAULTS.max_body}]"),
    ("max_chunk", "BYTES",
     f"largest chunk of a chunked request, at least 16384 [{_DEFAULTS.max_chunk}]"),
    ("max_in_flight", "N",
     f"concurrent requests per worker before 503 [{_DEFAULTS.max_in_flight}]"),
    ("backend_timeout", "S", "seconds before the backend gets an inner 504, and the longest "
     f"pause allowed in a streamed response [{_DEFAULTS.backend_timeout:g}]"),
    ("header_timeout", "S", "seconds a connection may take to send a request head (after "
     "opening or after the previous response); slower ones are closed "
     f"[{_DEFAULTS.header_timeout:g}]"),
    ("max_connections", "N", "open client connections per worker; more are answered 503 and "
     f"closed [{_DEFAULTS.max_connections}]"),
    ("shutdown_timeout", "S", "on SIGTERM, seconds requests in flight get to finish before "
     f"their connections are closed [{_DEFAULTS.shutdown_timeout:g}]"),
    ("padding", "none|classes", "pad each response (each chunk of a chunked one) to a size "
     f"class, so the relay cannot tell answers apart by length [{_DEFAULTS.padding}]"),
    ("require_token", "ISSUER_DIRECTORY_URL|FILE", "require a Privacy Pass token (type 2) from "
     "this issuer on every inner request; see docs/privacy-pass.md [off]"),
    ("token_origin", "NAME", "origin info of the token challenge [the backend's authority]"),
    ("token_issuer", "NAME", "issuer name of the token challenge [the directory URL's "
     "authority; required with a FILE]"),
    ("token_spent_ttl", "S", "how long a spent token is remembered; longer than an issuer key "
     f"lives [{_DEFAULTS.token_spent_ttl:g}]"),
    ("state", "URL", "shared state (replay records) on Redis: redis://HOST:PORT/DB, rediss://, "
     "unix://; by default this process's memory, shared by the workers with --workers > 1"),
    ("body_timeout", "S", "seconds the whole request body may take to arrive after its head; "
     f"slower ones get 408 and are closed [{_DEFAULTS.body_timeout:g}]"),
    ("keepalive_timeout", "S", "seconds an idle client connection is kept open between "
     f"requests [{_DEFAULTS.keepalive_timeout:g}]"),
    ("write_timeout", "S", "seconds a client may take no bytes of a response before it is "
     f"abandoned and the connection closed [{_DEFAULTS.write_timeout:g}]"),
    ("max_content_chunks", "N", "content chunks an indeterminate-length inner message may "
     f"have; more is an inner 413 [{_DEFAULTS.max_content_chunks}]"),
    ("key_rotation", "S", "add a new key to the key file every S seconds, 0 = never; see "
     f"docs/operations.md [{_DEFAULTS.key_rotation}]"),
    ("key_rotation_overlap", "S", "with --key-rotation: seconds the replaced key still "
     f"decrypts, at least 60 [{_DEFAULTS.key_rotation_overlap}]"),
    ("relay_token_file", "FILE", "accept only requests with 'Authorization: Bearer T', T a line "
     "of FILE; others get 401 before anything is decrypted [off]"),
    ("client_ca", "FILE", "with --tls-cert: require a client certificate issued by this CA "
     "(PEM), e.g. the relay's --client-cert [off]"),
    ("log_level", "LEVEL", f"debug, info, warning or error [{_DEFAULTS.log_level}]"),
    ("log", "URL|DIR", "key transparency log: refuse to load or reload a key it does not "
     "list (with --log-key)"),
    ("log_key", "VKEY", "the log's verifier key"),
    ("require_release", None,
     "refuse a key whose log statement names another release than this gateway's own"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the gateway options; an absent flag leaves the setting to the file or environment."""
    add_flag(
        parser, "allow_target", "AUTHORITY", "also serve inner requests to this authority "
        "(HOST or HOST:PORT); repeatable. The backend's own authority is always allowed",
        repeatable=True,
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="FILE", help=f"TOML file with these settings [{ENV_PREFIX}CONFIG]"
    )
    for option, metavar, text in _FLAGS:
        add_flag(parser, option, metavar, text)


def configure(subparsers: Any) -> None:
    """Add the ``gateway`` subcommand to the ``ohttp`` command line."""
    parser = subparsers.add_parser(
        "gateway", help="run an Oblivious Gateway Resource", description=_DESCRIPTION
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    return load_config(args, args.config)


def run(args: argparse.Namespace) -> int:
    """Handler of ``ohttp gateway``; returns the exit code."""
    try:
        config = config_from_args(args)
    except SettingsError as exc:  # fixed text naming the option
        print(f"ohttp gateway: {exc}", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    if config.keys is None:
        print("ohttp gateway: --keys FILE is required", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    from gateway._serve import serve  # the serving machinery loads only when it runs

    return serve(config)
