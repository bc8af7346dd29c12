"""The compiled twins of deploy/compile.py: ``make test`` runs the suite on them, fresh, and the
same modules as plain Python (the release's wheel) still pass the engine's and relay's tests."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from deploy.compile import HOT_MODULES, PACKAGES, REPO, missing, stale

# The tests of the compiled modules' behaviour: the engine, the relay, the gateway's lane.
PLAIN_SUBSET = ("tests/relay", "tests/test_engine.py", "tests/test_engine_lane.py",
                "tests/gateway/test_lane.py")


def _module_name(source: str) -> str:
    return source.removesuffix(".py").replace("/", ".")


def test_the_suite_runs_on_fresh_compiled_twins() -> None:
    assert missing() + stale() == [], "the compiled twins are missing or stale: run `make compile`"
    for source in HOT_MODULES:
        module = importlib.import_module(_module_name(source))
        assert module.__file__ is not None
        assert module.__file__.endswith(EXTENSION_SUFFIXES[0]), module.__file__


def _plain_tree(tree: Path) -> None:
    for name in (*PACKAGES, "tests", "deploy"):
        shutil.copytree(REPO / name, tree / name,
                        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tree)


def _run(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(tree)  # the copy first, whatever the current directory
    return subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=540, check=False)


@pytest.mark.timeout(600)
def test_the_hot_modules_pass_as_plain_python(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _plain_tree(tree)
    names = [_module_name(source) for source in HOT_MODULES]
    probe = _run(tree, "-c", "import importlib, sys\n"
                 f"for name in {names!r}: print(importlib.import_module(name).__file__)")
    assert probe.returncode == 0, probe.stderr
    files = probe.stdout.split()
    assert files == [str(tree / source) for source in HOT_MODULES]  # the copy's .py, not a twin
    result = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLAIN_SUBSET)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
