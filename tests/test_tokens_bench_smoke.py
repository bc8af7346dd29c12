"""The token benchmark runs and prints its six lines (a smoke test, not a timing test)."""

from __future__ import annotations

import pytest

from benchmarks import tokens_bench


def test_tokens_bench_prints_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    tokens_bench.main(["--seconds", "0.05"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "issuer issue()",
        "floor cryptography sign",
        "origin verify_token()",
        "client begin+finalize",
        "ohttp issuer over HTTP",
        "gateway per request",
    ]
