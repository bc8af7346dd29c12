"""The sans-IO core imports only the stdlib, cryptography and pyhpke (docs/architecture.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.support import REPO

CORE_MODULES = [
    "ohttp",
    "ohttp.errors",
    "ohttp.varint",
    "ohttp.bhttp",
    "ohttp.keys",
    "ohttp.encapsulation",
    "ohttp.chunked",
]
FORBIDDEN = (
    "aiohttp",
    "asyncio",
    "uvloop",
    "prometheus_client",
    "gateway",
    "relay",
    "ohttp.client",
)

PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_io(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(json.loads(result.stdout))
    leaked = sorted(name for name in loaded if name.split(".")[0] in FORBIDDEN or name in FORBIDDEN)
    assert leaked == [], f"{module} pulls in {leaked}"


@pytest.mark.parametrize("path", ["ohttp/encapsulation.py", "ohttp/chunked.py"])
def test_encapsulation_carries_opaque_bytes(path: str) -> None:
    """Encapsulation never imports Binary HTTP: only the gateway and client compose the two."""
    tree = ast.parse((REPO / path).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name and "bhttp" in name for name in imported)
    assert not any(
        isinstance(node, ast.ImportFrom) and any(a.name == "bhttp" for a in node.names)
        for node in ast.walk(tree)
    )
