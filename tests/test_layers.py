"""The layers of docs/architecture.md, enforced.

- ``ohttp`` (the core: every module outside ``ohttp.aio`` and ``ohttp.cli``) loads only the
  stdlib and cryptographic libraries, and never asyncio, aiohttp, the apps or ``ohttp.aio``;
- ``ohttp.aio`` never imports the apps; only ``ohttp.cli`` does;
- ``gateway`` and ``relay`` never import ``ohttp.cli``;
- encapsulation never imports Binary HTTP.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

LAYER_PACKAGES = ("aio", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Every module of ohttp/ and of its subpackages (tlog, privacypass, ...), except aio and cli.
CORE_MODULES = sorted(
    _module_name(path)
    for path in (REPO / "ohttp").rglob("*.py")
    if path.stem != "__main__"
    and not any(path.is_relative_to(REPO / "ohttp" / part) for part in LAYER_PACKAGES)
)
# Third-party distributions the core may load: cryptography and what it loads, pyhpke.
CORE_ALLOWED = frozenset({"ohttp", "cryptography", "_cffi_backend", "_openssl", "pyhpke", "gmpy2"})
CORE_FORBIDDEN = (
    "asyncio", "aiohttp", "uvloop", "gateway", "relay", "issuer", "ohttp.aio", "ohttp.cli"
)

PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(module: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(json.loads(result.stdout))


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _sources(package: str, *, skip: tuple[str, ...] = ()) -> list[Path]:
    root = REPO / package
    return [
        path
        for path in sorted(root.rglob("*.py"))
        if path.name != "__main__.py"  # `python -m ohttp` is the command line's entry point
        and not any(path.is_relative_to(root / part) for part in skip)
    ]


def test_core_modules_are_every_module_outside_the_layers() -> None:
    assert {"ohttp", "ohttp.bhttp", "ohttp.encapsulation", "ohttp.keys"} <= set(CORE_MODULES)
    assert {"ohttp.tlog", "ohttp.tlog.merkle", "ohttp.tlog.witness"} <= set(CORE_MODULES)
    assert {"ohttp.privacypass", "ohttp.privacypass.blindrsa"} <= set(CORE_MODULES)
    assert not any(name.split(".")[1:2] in (["aio"], ["cli"]) for name in CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_loads_only_stdlib_and_crypto(module: str) -> None:
    loaded = _loaded_by(module) - _loaded_by("sys")  # minus what the interpreter loads itself
    forbidden = sorted(n for n in loaded if any(_is_under(n, f) for f in CORE_FORBIDDEN))
    assert forbidden == [], f"{module} pulls in {forbidden}"
    foreign = sorted(
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in CORE_ALLOWED
    )
    assert foreign == [], f"{module} pulls in non-core packages {foreign}"


@pytest.mark.parametrize(
    "path", _sources("ohttp", skip=LAYER_PACKAGES), ids=lambda p: str(p.relative_to(REPO))
)
def test_core_source_names_no_upper_layer(path: Path) -> None:
    """Also catches imports made lazily inside functions, which the probe above cannot see."""
    upward = sorted(n for n in _imports(path) if any(_is_under(n, f) for f in CORE_FORBIDDEN))
    assert upward == [], f"{path.name} imports {upward}"


@pytest.mark.parametrize("path", _sources("ohttp/aio"), ids=lambda p: str(p.relative_to(REPO)))
def test_aio_layer_does_not_import_the_apps(path: Path) -> None:
    upward = sorted(
        n
        for n in _imports(path)
        if any(_is_under(n, f) for f in ("gateway", "relay", "issuer", "ohttp.cli"))
    )
    assert upward == [], f"{path.name} imports {upward}"


@pytest.mark.parametrize(
    "path",
    [*_sources("gateway"), *_sources("relay"), *_sources("issuer")],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_apps_do_not_import_the_command_line(path: Path) -> None:
    assert not any(_is_under(name, "ohttp.cli") for name in _imports(path))


@pytest.mark.parametrize("path", ["ohttp/encapsulation.py", "ohttp/chunked.py"])
def test_encapsulation_carries_opaque_bytes(path: str) -> None:
    """Encapsulation never imports Binary HTTP: only the gateway and client compose the two."""
    imported = _imports(REPO / path)
    assert not any("bhttp" in name for name in imported)
