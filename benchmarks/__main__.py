"""``python -m benchmarks [micro|load|relay|gateway|streaming|report|padding] [options]``.

No subcommand (``make bench``): the micro benchmark (core hot path), the end-to-end load
benchmark (options given here go to it), the relay-vs-nginx proxy benchmark against a static
upstream when nginx and wrk are installed, and the streaming benchmark. ``gateway`` (the
gateway against the bare aiohttp floor) and ``padding`` (the size classes' bandwidth and CPU
on the demo's traffic) run only when named.
Each part also runs alone (``python -m benchmarks load --help``).
Parts written in other modules are found at run time and skipped with a note if absent.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import sys
from collections.abc import Callable

PARTS = {
    "micro": "benchmarks.micro",
    "load": "benchmarks.load",
    "relay": "benchmarks.relay_bench",
    "gateway": "benchmarks.gateway_bench",
    "streaming": "benchmarks.streaming",
    "report": "benchmarks.report",
    "padding": "benchmarks.padding_bench",
}


def _entry(part: str) -> Callable[..., int] | None:
    try:
        module = importlib.import_module(PARTS[part])
    except ModuleNotFoundError as exc:
        if exc.name != PARTS[part]:
            raise
        return None
    entry: Callable[..., int] | None = getattr(module, "main", None)
    return entry


def run_part(part: str, argv: list[str]) -> int:
    entry = _entry(part)
    if entry is None:
        print(f"benchmarks: {part} ({PARTS[part]}) is not available; skipped", file=sys.stderr)
        return 0
    if inspect.signature(entry).parameters:
        return int(entry(argv) or 0)
    # A main() that parses sys.argv itself.
    saved = sys.argv
    sys.argv = [f"python -m {PARTS[part]}", *argv]
    try:
        return int(entry() or 0)
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] in PARTS:
        return run_part(args[0], args[1:])
    status = run_part("micro", [])
    status = run_part("load", args) or status
    if shutil.which("nginx") and shutil.which("wrk"):
        status = run_part("relay", []) or status
    else:
        print("benchmarks: relay vs nginx needs nginx and wrk; skipped", file=sys.stderr)
    return run_part("streaming", []) or status


if __name__ == "__main__":
    sys.exit(main())
