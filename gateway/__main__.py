"""``python -m gateway``: the same as ``ohttp gateway``."""

import argparse
import sys

from gateway.cli import _DESCRIPTION, add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=_DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args())


sys.exit(main())
