"""A tiny smoke of the load benchmark: real processes, a few requests, every part of the harness.

Benchmarks are not tests: nothing here looks at speed. It checks the harness still runs end to
end and counts what it sends (wrk and nginx parts are skipped when not installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import inmemory, load, loadgen, procs, report
from benchmarks.load import LoadConfig

REPO = Path(__file__).resolve().parent.parent
TINY = {
    "duration": 0.4,
    "rounds": 1,
    "connections": 2,
    "workers": 1,
    "pool_size": 24,
    "scaling_concurrency": (1, 2),
    "scaling_workers": (1,),
    "scaling_duration": 0.3,
    "plots": False,
    "progress": False,
}


def _run(tmp_path: Path, **overrides: Any) -> tuple[dict[str, Any], str]:
    cfg = LoadConfig(**{**TINY, "out_dir": tmp_path, **overrides})
    report_path = load.run_and_report(cfg)
    data = json.loads((report_path.parent / "results.json").read_text())
    return data, report_path.read_text()


def _assert_served(data: dict[str, Any], scenario: str) -> dict[str, Any]:
    row = report.summarize([p for p in data["phases"] if p["scenario"] == scenario])
    assert row["requests"] > 0, scenario
    assert row["failed"] == 0, (scenario, row["statuses"], row["errors"])
    assert row["p"][50.0] > 0
    return row


def test_local_run_with_builtin_generator(tmp_path: Path) -> None:
    data, text = _run(tmp_path, tool="builtin")
    expected = ["backend", "gateway", "relay"] + (["nginx"] if procs.nginx_binary() else [])
    assert [p["scenario"] for p in data["phases"]] == expected
    assert data["inner_checks"] == {name: 200 for name in expected if name != "backend"}
    rows = {name: _assert_served(data, name) for name in expected}
    # Each proxy scenario measured both its proxy and the gateway behind it, from /proc.
    assert set(rows["relay"]["cpu_us_per_request"]) == {"relay", "gateway"}
    assert rows["gateway"]["cpu_us_per_request"]["gateway"] > 0
    # The gateway's own metrics saw only successes (no failure hidden in an outer 200).
    assert set(rows["relay"]["gateway_results"]) == {"ok"}
    assert rows["relay"]["gateway_results"]["ok"] >= rows["relay"]["requests"]
    assert data["peak_rss_kib"]["gateway"] > 0
    assert [(p["workers"], p["connections"]) for p in data["scaling"]] == [(1, 1), (1, 2)]
    assert "Replay check **off**" in text and "## Scaling" in text
    assert "Relay vs nginx" in text or not procs.nginx_binary()
    # The report re-renders from its JSON alone, and lands in a README between its markers.
    results = next(tmp_path.glob("load-*/results.json"))
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Micro\nkept as is\n")
    assert report.main([str(results), "--update-readme", str(readme)]) == 0
    for _ in range(2):  # idempotent: the second update replaces the first
        report.update_readme(readme, (results.parent / "report.md").read_text())
    written = readme.read_text()
    assert written.startswith("# Benchmarks\n\n## Micro\nkept as is\n")
    assert written.count(report.README_BEGIN) == 1 and "| gateway only" in written


async def test_inmemory_times_every_target_and_checks_each_answered_every_request() -> None:
    results = await inmemory.measure(20, 2)  # raises unless each target answered all 40
    assert list(results) == ["relay", "engine", "pfloor"]
    assert all(minimum > 0 for _, minimum in results.values())


@pytest.mark.skipif(loadgen.wrk_binary() is None, reason="wrk is not installed")
def test_wrk_cycles_the_pool(tmp_path: Path) -> None:
    data, _ = _run(
        tmp_path, tool="wrk", duration=1.0, scenarios=("gateway",), scaling_concurrency=()
    )
    row = _assert_served(data, "gateway")
    assert data["config"]["tool"] == "wrk"
    # More requests than the pool holds: wrk_post.lua cycled it without a single failure.
    assert row["requests"] > TINY["pool_size"]


def test_target_mode_drives_an_existing_relay(tmp_path: Path) -> None:
    from ohttp.aio.keyfile import save_key_file
    from ohttp.keys import GatewayKey

    keys = tmp_path / "keys.json"
    save_key_file(keys, [GatewayKey.generate(7)])
    gateway = procs.start_gateway(keys, 1, tmp_path)
    try:
        relay = procs.start_relay(gateway, 1, tmp_path)
        try:
            data, text = _run(
                tmp_path,
                tool="builtin",
                target_relay=relay.url + "/",
                keys=gateway.url + procs.GATEWAY_PATH,
                scaling_concurrency=(2,),
            )
        finally:
            procs.stop(relay)
        # Error answers are counted by status: the gateway refuses this media type (415).
        wrong = loadgen.Pool.write(tmp_path / "wrong", [b"x" * 8], "text/plain")
        spec = loadgen.LoadSpec(gateway.url + procs.GATEWAY_PATH, wrong, 1, 0.2)
        refused = loadgen.run_builtin(spec)
    finally:
        procs.stop(gateway)
    assert set(refused.statuses) == {"415"} and refused.failed == refused.requests > 0
    assert data["inner_checks"] == {"target": 200}
    _assert_served(data, "target")
    assert len(data["scaling"]) == 1 and "target relay" in text


def test_replays_hidden_in_outer_200s_are_counted_as_failures(tmp_path: Path) -> None:
    """With a Date inside, a pool smaller than the run makes the gateway refuse repeats."""
    data, text = _run(
        tmp_path, tool="builtin", scenarios=("gateway",), replay_check=True, pool_size=4,
        connections=1, scaling_concurrency=(),
    )  # fmt: skip
    row = report.summarize(data["phases"])
    assert row["statuses"] == {"200": row["requests"]}  # every outer status was 200 ...
    assert row["gateway_results"]["replay"] > 0  # ... yet the gateway refused the repeats
    assert row["failed"] == row["gateway_results"]["replay"]
    assert "pool was reused" in text


def test_refused_connections_are_counted_not_dropped(tmp_path: Path) -> None:
    pool = loadgen.Pool.write(tmp_path / "pool", [b"x"], "application/octet-stream")
    closed = f"http://{procs.LOOPBACK}:{procs.free_port()}/"
    result = loadgen.run_builtin(loadgen.LoadSpec(closed, pool, 2, 0.2))
    assert result.requests == 0 and result.failed > 0
    assert set(result.errors) == {"ConnectionRefusedError"}


def test_merge_quantiles_of_identical_phases_is_unchanged() -> None:
    samples = [float(v) for v in range(1, 1001)]
    single = loadgen.quantiles_of(samples)
    merged = loadgen.merge_quantiles([(1000, single), (1000, single)])
    for q in (50.0, 90.0, 99.0, 99.9):
        assert loadgen.quantile(merged, q) == loadgen.quantile(single, q)


def test_top_functions_reads_collapsed_stacks() -> None:
    collapsed = (
        "process 1:x;main (a/m.py:1);decrypt (a/x.py:1) 20\n"
        "process 1:x;main (a/m.py:1);decrypt (a/x.py:2) 10\n"
        "main (a/m.py:1);seal (a/x.py:9) 10\n"
    )
    top = load.top_functions(collapsed)
    assert top == [("decrypt (a/x.py)", 0.75, 0.75), ("seal (a/x.py)", 0.25, 0.25)]


def test_command_line_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "load", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--target-relay" in done.stdout


def _bench(module: str, *args: str) -> list[str]:
    """Run ``python -m benchmarks.MODULE ARGS``; its output lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def _failed_column(lines: list[str], names: list[str]) -> dict[str, str]:
    """Target name -> its last column (failed requests) in the rounds table."""
    rows = {line.split()[0]: line.split()[-1] for line in lines[1 : 1 + len(names)]}
    assert list(rows) == names
    return rows


@pytest.mark.skipif(
    loadgen.wrk_binary() is None or procs.nginx_binary() is None, reason="needs wrk and nginx"
)
def test_relay_bench_runs_every_target() -> None:
    lines = _bench("relay_bench", "--seconds", "1", "--rounds", "1", "--floor", "--proxy-floor",
                   "--rate-limit")
    limited = ["limited"] + (["limited-redis"] if shutil.which("redis-server") else [])
    names = ["nginx", "relay", "floor", "pfloor", *limited]
    assert _failed_column(lines, names) == dict.fromkeys(names, "0")  # every one forwarded
    ratios = lines[1 + len(names):]  # after the header and one row per target
    assert [line.split(" per round")[0] for line in ratios] == [
        *(f"{name}/nginx" for name in names[1:]), *(f"{name}/relay" for name in limited)
    ]
    assert all("throughput" in line for line in ratios)


@pytest.mark.skipif(loadgen.wrk_binary() is None, reason="wrk is not installed")
def test_gateway_bench_runs_every_target(tmp_path: Path) -> None:
    args = ["--seconds", "1", "--rounds", "1", "--pool", "300", "--inproc"]
    lines = _bench("gateway_bench", *args, "--workdir", str(tmp_path))
    names = ["floor", "gateway", "inproc"]
    assert _failed_column(lines, names) == dict.fromkeys(names, "0")
    assert lines[3].split()[1] == "-"  # the in-process pipeline has no req/s
    assert [line.split(" per round")[0] for line in lines[4:]] == ["gateway/floor", "inproc/floor"]


@pytest.mark.skipif(loadgen.wrk_binary() is None, reason="wrk is not installed")
def test_gateway_bench_stub_decapsulates_every_request(tmp_path: Path) -> None:
    args = ["--seconds", "1", "--rounds", "1", "--pool", "300", "--stub", "--shell"]
    lines = _bench("gateway_bench", *args, "--workdir", str(tmp_path))
    names = ["floor", "gateway", "stub", "shell"]
    assert _failed_column(lines, names) == dict.fromkeys(names, "0")  # a 2xx for every request
    ratios = [line.split(" per round")[0] for line in lines[5:]]
    assert ratios == ["gateway/floor", "stub/floor", "shell/floor", "gateway/stub",
                      "shell/stub", "gateway/shell"]


def test_rounds_report_ratios_per_round() -> None:
    from benchmarks.rounds import Sample, interleave, ratio, spread

    runs = iter([Sample(100.0, 8.0, 2.0, 0), Sample(50.0, 25.0, 5.0, 0)] * 2)
    samples = interleave({"ref": lambda: next(runs), "other": lambda: next(runs)}, 2)
    # Round 2 runs in reverse order: "other" first.
    assert [s.cpu_us for s in samples["ref"]] == [10.0, 30.0]
    assert spread([1.0, 3.0, 2.0]) == "2.0 (1.0-3.0)"
    assert ratio(samples, "other", "ref") == (
        "other/ref per round: CPU 1.67 (0.33-3.00)x, 0.0 (-20.0-20.0) us/req above ref, "
        "throughput 1.25 (0.50-2.00)x"
    )


@pytest.mark.skipif(loadgen.wrk_binary() is None, reason="wrk is not installed")
def test_crypto_in_server_reports_every_measurement(tmp_path: Path) -> None:
    args = ["--seconds", "1", "--rounds", "1", "--requests", "40", "--pool", "300",
            "--workdir", str(tmp_path)]
    lines = _bench("crypto_in_server", *args)
    rows = {line[:44].strip(): line[44:].split() for line in lines[1:]}
    assert list(rows) == ["warm loop", "loop, 1024 KiB evicted", "loop, 4096 KiB evicted",
                          "in server (crypto only)", "in server (whole stub process)"]
    assert all(float(median) > 0 for median, _ in rows.values())
