"""``python -m relay``: the same as ``ohttp relay``."""

from __future__ import annotations

import argparse
import sys

from relay.cli import add_arguments, run_from_args


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m relay", description="Oblivious HTTP relay")
    add_arguments(parser)
    return run_from_args(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
