"""benchmarks/store_bench.py runs and reports every store side by side (numbers not checked)."""

from __future__ import annotations

import pytest

from benchmarks import store_bench
from tests.redis_support import REDIS_SERVER


def test_store_bench_reports_each_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert store_bench.main(["--calls", "40", "--concurrency", "4", "--rounds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    stores = ["memory", "shared"] + (["redis", "redis, no pipeline"] if REDIS_SERVER else [])
    for store in stores:
        for measurement in ("sequential", "concurrent", "replay check"):
            assert any(row.startswith(f"| {store} | {measurement} |") for row in rows), store
