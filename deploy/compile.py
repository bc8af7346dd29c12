"""``make compile``: the per-request modules of the serving engine and the relay, compiled by
mypyc in place (issue 18: the relay's throughput).

Usage: ``python deploy/compile.py [--clean] [--check]``.

Each module of ``HOT_MODULES`` gets a compiled twin next to its source
(``relay/h1.cpython-311-x86_64-linux-gnu.so``), which Python imports instead of the ``.py``, and
the twins share one library, ``ohttp/_hot__mypyc…so``. The code is the same Python, checked by
``mypy --strict``; mypyc turns its typed calls, attributes and loops into C. The package stays
pure Python: the release (deploy/release.py) builds from ``git archive``, which has no twins, and
any module runs without its twin.

A twin older than a source of ``ohttp/`` or ``relay/`` (or ``pyproject.toml``) is stale, and so
is a twin of a module no longer listed: Python would still import either. The build is all or
nothing; ``--check`` fails on missing or stale twins, tests/test_compiled.py on missing ones,
and every test session (tests/conftest.py) on stale ones. Needs a C compiler and the Python
headers; the build takes about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The request path of the engine and of the relay's lane (benchmarks/inmemory.py times it).
HOT_MODULES = (
    "ohttp/aio/engine/_connection.py",
    "ohttp/aio/engine/_deadline.py",
    "ohttp/aio/engine/_head.py",
    "ohttp/aio/engine/_lane.py",
    "ohttp/aio/engine/_server.py",
    "ohttp/aio/engine/_wire.py",
    "relay/engine.py",
    "relay/exchange.py",
    "relay/forward.py",
    "relay/h1.py",
    "relay/metrics.py",
    "relay/state.py",
    "relay/upstream.py",
)
# The twins' shared library, inside a package: an editable install maps packages only.
GROUP = "ohttp._hot"
PACKAGES = ("ohttp", "relay", "gateway", "issuer")


def twins(root: Path = REPO) -> list[Path]:
    """Every compiled module in the tree's packages (the project has no other extensions)."""
    return sorted({path for package in PACKAGES
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES
                   for path in (root / package).rglob(f"*{suffix}")})


def _twin(root: Path, source: str) -> Path:
    return (root / source).with_suffix(importlib.machinery.EXTENSION_SUFFIXES[0])


def _newest_source(root: Path) -> float:
    # What a build depends on: any module it compiles or may read types from, and the
    # project's mypy settings.
    sources = [root / "pyproject.toml"]
    for package in ("ohttp", "relay"):
        sources += (root / package).rglob("*.py")
    return max(path.stat().st_mtime for path in sources)


def missing(root: Path = REPO) -> list[str]:
    """The listed modules without a compiled twin."""
    return [f"{source}: no compiled twin" for source in HOT_MODULES
            if not _twin(root, source).exists()]


def stale(root: Path = REPO) -> list[str]:
    """What is wrong with the twins there are: older than a source they were built from, or
    left over from a module no longer listed (Python would import either)."""
    newest = _newest_source(root)
    problems = [f"{source}: compiled twin older than a source" for source in HOT_MODULES
                if _twin(root, source).exists() and _twin(root, source).stat().st_mtime < newest]
    expected = {_twin(root, source) for source in HOT_MODULES}
    problems += [f"{path.relative_to(root)}: not a module of HOT_MODULES"
                 for path in twins(root)
                 if path not in expected and not path.name.startswith("_hot__mypyc")]
    return problems


@contextlib.contextmanager
def _in(directory: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


def build(root: Path = REPO) -> None:
    """Compile ``HOT_MODULES`` of the tree at ``root`` in place (mypyc, then the C compiler)."""
    from mypyc.build import mypycify
    from setuptools import setup

    built_from = _newest_source(root)
    with tempfile.TemporaryDirectory(prefix="ohttp-mypyc-") as scratch, _in(root):
        extensions = mypycify(list(HOT_MODULES), group_name=GROUP, target_dir=scratch)
        setup(name="ohttp-hot", ext_modules=extensions,
              script_args=["--quiet", "build_ext", "--inplace", "--build-temp", scratch,
                           "--build-lib", scratch])
    # Dated as the sources they were built from: one edited during the build is newer.
    for source in HOT_MODULES:
        os.utime(_twin(root, source), (built_from, built_from))


def clean(root: Path = REPO) -> None:
    """Remove every twin: the tree runs as plain Python again."""
    for twin in twins(root):
        twin.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled twins")
    parser.add_argument("--check", action="store_true", help="fail unless every twin is fresh")
    args = parser.parse_args()
    if args.clean:
        clean()
        return 0
    problems = missing() + stale()
    if args.check or not problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    clean()
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
