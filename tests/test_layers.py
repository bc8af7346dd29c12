"""The sans-IO core imports only the stdlib, cryptography and pyhpke (docs/architecture.md)."""

from __future__ import annotations

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
    if module == "ohttp.chunked" and not (REPO / "ohttp" / "chunked.py").exists():
        pytest.skip("chunked OHTTP not built yet")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(json.loads(result.stdout))
    leaked = sorted(name for name in loaded if name.split(".")[0] in FORBIDDEN or name in FORBIDDEN)
    assert leaked == [], f"{module} pulls in {leaked}"


def test_encapsulation_does_not_import_bhttp() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "ohttp.encapsulation"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert "ohttp.bhttp" not in json.loads(result.stdout)
