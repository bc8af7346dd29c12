"""The key transparency benchmark runs and prints its four cases (a smoke test, not timing)."""

from __future__ import annotations

import pytest

from benchmarks import tlog_bench


def test_tlog_bench_prints_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    tlog_bench.main(["--rounds", "1", "--sizes", "2"])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split("|")[2].strip() for row in rows] == [
        "no log, cold",
        "log, cold",
        "no log, cached",
        "log, cached",
    ]
