"""``ohttp issuer``: run the Privacy Pass issuer (joint attester and issuer, RFC 9576 §4.3).

Settings come from flags, then ``OHTTP_ISSUER_*`` environment variables, then a TOML file
(``--config``), then defaults; see docs/privacy-pass.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from issuer.config import ENV_PREFIX, IssuerConfig, load_config
from ohttp.aio.settings import INVALID_SETTINGS_EXIT, SettingsError, add_flag

__all__ = ["configure", "run"]

_DEFAULTS = IssuerConfig()
_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("key", "FILE", "issuer key file (from `ohttp keygen --issuer`; several PEM keys for "
     "rotation, the first is current); required"),
    ("listen", "HOST:PORT", f"address to serve on [{_DEFAULTS.listen}]"),
    ("accounts", "FILE", "bearer credentials, one per line ('#' comments); without it anyone "
     "gets tokens"),
    ("tokens_per_window", "N", f"tokens per account per window [{_DEFAULTS.tokens_per_window}]"),
    ("window", "S", f"quota window in seconds [{_DEFAULTS.window:g}]"),
    ("tls_cert", "FILE", "PEM certificate chain: serve HTTPS"),
    ("tls_key", "FILE", "PEM private key for --tls-cert"),
    ("header_timeout", "S", f"seconds to send a request head [{_DEFAULTS.header_timeout:g}]"),
    ("max_connections", "N", f"open client connections [{_DEFAULTS.max_connections}]"),
    ("shutdown_timeout", "S", "on SIGTERM, seconds requests in flight get to finish "
     f"[{_DEFAULTS.shutdown_timeout:g}]"),
    ("directory_max_age", "S", "Cache-Control max-age of the issuer directory "
     f"[{_DEFAULTS.directory_max_age}]"),
    ("state", "URL", "where the quota counters live: redis://HOST:PORT/DB or rediss://..., "
     "shared by replicas (docs/state.md) [this process's memory]"),
)


def configure(subparsers: Any) -> None:
    """Add the ``issuer`` subcommand to the ``ohttp`` command line."""
    parser = subparsers.add_parser(
        "issuer",
        help="run a Privacy Pass token issuer",
        description="Serve a Privacy Pass issuer (RFC 9578, token type 2, Blind RSA): the "
        "directory at /.well-known/private-token-issuer-directory and token requests at "
        "POST /token-request, for accounts authenticated with 'Authorization: Bearer'. "
        f"Every option can also be set in the TOML file or as {ENV_PREFIX}<NAME>.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help=f"TOML file with these settings [{ENV_PREFIX}CONFIG]"
    )
    for option, metavar, text in _FLAGS:
        add_flag(parser, option, metavar, text)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``ohttp issuer``; returns the exit code."""
    try:
        config = load_config(args, args.config)
    except SettingsError as exc:  # fixed text naming the option
        print(f"ohttp issuer: {exc}", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    if config.key is None:
        print("ohttp issuer: --key FILE is required", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    from issuer.serve import serve  # the serving machinery loads only when it runs

    return serve(config)
