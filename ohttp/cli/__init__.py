"""The ``ohttp`` command: one entry point, one module per group of subcommands.

This package is the only part of ``ohttp`` that imports the apps (``gateway``, ``relay``,
``issuer``).

Each module named in ``_COMMAND_MODULES`` exposes ``configure(subparsers)``, which adds its
subcommands and sets ``handler`` (a callable taking the parsed namespace and returning an exit
code) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

_COMMAND_MODULES = (
    "ohttp.cli.keys",  # keygen, keys show
    "gateway.cli",  # gateway
    "relay.cli",  # relay
    "ohttp.cli.request",  # request
    "ohttp.cli.demo",  # demo
    "issuer.cli",  # issuer
    "ohttp.cli.tokens",  # tokens fetch
    "ohttp.cli.release",  # release measure
    "ohttp.cli.log",  # log init|append|keygen|serve|verify|witness
)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``ohttp`` parser and its subcommands' parsers by name."""
    parser = argparse.ArgumentParser(
        prog="ohttp", description="Oblivious HTTP (RFC 9458): keys, gateway, relay, client."
    )
    parser.add_argument(
        "--version", action="version", version=f"ohttp {importlib.metadata.version('ohttp')}"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).configure(subparsers)
    return parser, subparsers.choices


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ohttp`` command line; returns the process exit code."""
    parser, commands = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's own usage, not the top-level one, names what is wrong
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
