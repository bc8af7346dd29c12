"""``ohttp release measure``: print the measurement of the installed release (or of a wheel).

Exit codes: 0 success (the measurement on stdout); 1 it cannot be measured (one line on stderr,
no traceback); 2 usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ohttp.aio.release import ReleaseError, measure, measure_wheel


def _measure(args: argparse.Namespace) -> int:
    try:
        value = measure_wheel(args.wheel) if args.wheel is not None else measure()
    except ReleaseError as exc:
        print(f"ohttp release measure: {exc}", file=sys.stderr)
        return 1
    print(value)
    return 0


def configure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``release measure``."""
    release = subparsers.add_parser("release", help="the release measurement")
    commands = release.add_subparsers(dest="release_command", required=True, metavar="COMMAND")
    measure_parser = commands.add_parser(
        "measure",
        help="print sha256:<hex> of the installed release (docs/transparency.md)",
        description="Print the measurement of the installed release, or of --wheel FILE.",
    )
    measure_parser.add_argument(
        "--wheel", type=Path, metavar="FILE", help="measure this wheel instead of the install"
    )
    measure_parser.set_defaults(handler=_measure)
