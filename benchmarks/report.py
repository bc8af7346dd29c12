"""Markdown report, JSON file and PNG plots of a load run (from its JSON, so a run can be
re-rendered: ``python -m benchmarks report benchmarks/results/load-.../results.json``)."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.loadgen import merge_quantiles, quantile

# Targets of the gateway, relay issues (issue 3, issue 4), measured on this 2-core machine.
GATEWAY_RPS_TARGET = 14_500
GATEWAY_CPU_US_TARGET = 130
RELAY_CPU_RATIO_MAX = 3.0
RELAY_RPS_RATIO_MIN = 0.75
README_BEGIN = "<!-- load-report:begin -->"
README_END = "<!-- load-report:end -->"
LOAD_README_INTRO = """\
## Load benchmark (end to end)

`python -m benchmarks load` starts, on free 127.0.0.1 ports: a plain aiohttp echo origin (the
"backend directly" baseline), `ohttp gateway --backend echo`, `ohttp relay` in front of it and,
when nginx is installed, nginx `proxy_pass` in front of the same gateway (the relay's
yardstick). It pre-encapsulates a pool of distinct 1 KiB requests in parallel processes (client
crypto is not measured), checks one real exchange per path (inner status 200, since OHTTP errors
after decapsulation travel inside an outer 200), then drives the scenarios in interleaved rounds
with wrk (`benchmarks/wrk_post.lua`, cycling the pool) or, without wrk, a built-in asyncio
generator. It reports requests/s, latency p50/p90/p99/p99.9, every response by status and every
socket error, CPU microseconds per request of each server process (utime + stime of the process
and its workers, from `/proc`), peak RSS (VmHWM), then sweeps concurrency 1..512 with 1 and 2
gateway workers. Results go to `benchmarks/results/load-*/` (gitignored): `report.md`,
`results.json`, and with matplotlib (`pip install -e '.[bench]'`) `latency-cdf.png` and
`scaling.png`.

Reproduce (needs `apt-get install wrk nginx` for the full picture; ~4 minutes):

```
python -m benchmarks load --update-readme            # the run below
python -m benchmarks load --quick                    # a smoke run, not a measurement
python -m benchmarks load --profile-seconds 5        # add a py-spy profile of the gateway
python -m benchmarks load --target-relay https://relay.example/ \\
    --keys https://gateway.example/.well-known/ohttp-gateway --inner-url https://app.example/x
```

Options: `--duration`, `--rounds`, `--connections`, `--workers`, `--body-size`, `--pool-size`,
`--tool auto|wrk|builtin`, `--scenarios`, `--scaling-concurrency 1,8,32`, `--scaling-workers`,
`--replay-check` (inner requests carry a `Date`, so the gateway's window and replay cache run;
the pool must then be larger than the requests sent). The machine is shared and has 2 cores that
the load generator shares with the servers: read the ratios from one run, not absolute numbers
across runs.
"""
TITLES = {
    "backend": "backend directly (plain aiohttp echo origin, no OHTTP)",
    "gateway": "gateway only (echo backend)",
    "relay": "relay + gateway",
    "nginx": "nginx proxy_pass + gateway",
    "target": "target relay",
}


def summarize(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate the phases of one scenario (all rounds) into one row."""
    requests = sum(p["result"]["requests"] for p in phases)
    duration = sum(p["result"]["duration"] for p in phases)
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for p in phases:
        statuses.update(p["result"]["statuses"])
        errors.update(p["result"]["errors"])
        cpu.update(p["cpu_seconds"])
    quantiles = merge_quantiles(
        [
            (p["result"]["requests"], {float(k): v for k, v in p["result"]["quantiles"].items()})
            for p in phases
        ]
    )
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    inner: Counter[str] | None = None
    if all(p.get("gateway_results") is not None for p in phases):
        inner = Counter()
        for p in phases:
            inner.update(p["gateway_results"])
    # Failures the gateway found after decapsulation hide inside outer 200s: count them too.
    inner_failed = sum(n for k, n in (inner or {}).items() if k != "ok")
    loadgen_cpu = sum(p["loadgen_cpu_seconds"] for p in phases)
    return {
        "requests": requests,
        "duration": duration,
        "rps": requests / duration if duration else 0.0,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "failed": requests - ok + sum(errors.values()) + inner_failed,
        "gateway_results": None if inner is None else dict(inner),
        "quantiles": quantiles,
        "p": {q: quantile(quantiles, q) for q in (50.0, 90.0, 99.0, 99.9)},
        "cpu_us_per_request": {
            n: s * 1e6 / requests if requests else math.nan for n, s in cpu.items()
        },
        "loadgen_cpu_us_per_request": loadgen_cpu * 1e6 / requests if requests else math.nan,
        "rounds": len(phases),
    }


def scenario_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys(p["scenario"] for p in data["phases"]))
    return {n: summarize([p for p in data["phases"] if p["scenario"] == n]) for n in names}


def _ms(us: float) -> str:
    return "n/a" if math.isnan(us) else f"{us / 1000:.2f}"


def _num(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def headlines(data: dict[str, Any], rows: dict[str, dict[str, Any]]) -> list[str]:
    """Same-run ratios first (the honest comparison), then the absolute targets."""
    lines = []
    if "gateway" in rows and "backend" in rows:
        ratio = _ratio(rows["gateway"]["rps"], rows["backend"]["rps"])
        lines.append(
            f"- Gateway throughput is **{ratio:.2f}x** the plain backend's "
            f"({_num(rows['gateway']['rps'])} vs {_num(rows['backend']['rps'])} req/s)."
        )
    if "relay" in rows and "nginx" in rows:
        relay, nginx = rows["relay"], rows["nginx"]
        rps_ratio = _ratio(relay["rps"], nginx["rps"])
        relay_cpu = relay["cpu_us_per_request"].get("relay", math.nan)
        nginx_cpu = nginx["cpu_us_per_request"].get("nginx", math.nan)
        cpu_ratio = _ratio(relay_cpu, nginx_cpu)
        lines.append(
            f"- Relay vs nginx (same gateway behind both): throughput **{rps_ratio:.2f}x** nginx "
            f"(target >= {RELAY_RPS_RATIO_MIN}x: {_verdict(rps_ratio >= RELAY_RPS_RATIO_MIN)}); "
            f"CPU per request **{cpu_ratio:.2f}x** nginx ({_num(relay_cpu, 1)} vs "
            f"{_num(nginx_cpu, 1)} us; target <= {RELAY_CPU_RATIO_MAX}x: "
            f"{_verdict(cpu_ratio <= RELAY_CPU_RATIO_MAX)})."
        )
    cfg = data["config"]
    if "gateway" in rows:
        rps = rows["gateway"]["rps"]
        threads = f" -t{cfg['wrk_threads']}" if cfg["tool"] == "wrk" else ""
        setup = f"--workers {cfg['workers']}, {cfg['tool']}{threads} -c{cfg['connections']}"
        comparable = (cfg["workers"], cfg["tool"], cfg["connections"], cfg["wrk_threads"]) == (
            2, "wrk", 32, 1,
        )  # fmt: skip
        verdict = _verdict(rps >= GATEWAY_RPS_TARGET) if comparable else "not comparable"
        lines.append(
            f"- Gateway ({setup}, echo backend): **{_num(rps)} req/s** (target >= "
            f"{GATEWAY_RPS_TARGET:,} with --workers 2, wrk -t1 -c32: {verdict})."
        )
    one = [p for p in data["scaling"] if p["workers"] == 1 and p["scenario"] == "gateway"]
    if one:
        nearest = min(one, key=lambda p: abs(p["connections"] - 32))
        cpu = summarize([nearest])["cpu_us_per_request"].get("gateway", math.nan)
        lines.append(
            f"- One gateway worker, c={nearest['connections']}: **{_num(cpu, 1)} us CPU "
            f"per request** (target < {GATEWAY_CPU_US_TARGET}: "
            f"{_verdict(cpu < GATEWAY_CPU_US_TARGET)})."
        )
    return lines


def replay_statement(data: dict[str, Any]) -> str:
    cfg = data["config"]
    used = data.get("pool_used", {})
    most = max(used.values(), default=0)
    if not cfg["replay_check"]:
        return (
            f"Replay check **off**: the inner requests carry no `Date`, so the gateway's Date "
            f"window and replay cache do not apply (RFC 9458 §6.5). Pool of "
            f"{cfg['pool_size']:,} distinct encapsulated requests, cycled (at most "
            f"{most:,} sent to one gateway)."
        )
    if most <= cfg["pool_size"]:
        return (
            f"Replay check **on**: every request carries a `Date` and each of the "
            f"{cfg['pool_size']:,} distinct requests reached each gateway at most once."
        )
    return (
        f"Replay check **on but the pool was reused** ({most:,} requests for a pool of "
        f"{cfg['pool_size']:,}): repeats are refused inside an outer 200 (RFC 9458 §6.5), so "
        f"these numbers include replay refusals. Use a larger --pool-size."
    )


def _status_text(row: dict[str, Any]) -> str:
    parts = [f"{k}: {v:,}" for k, v in sorted(row["statuses"].items())]
    parts += [f"{k}: {v:,}" for k, v in sorted(row["errors"].items())]
    text = ", ".join(parts) or "none"
    if row["gateway_results"] is not None:
        inner = ", ".join(f"{k}: {v:,}" for k, v in sorted(row["gateway_results"].items()))
        text += f"; gateway outcomes (its /metrics): {inner or 'none'}"
    return text


def render(data: dict[str, Any]) -> str:
    """The Markdown report of one run."""
    cfg, m = data["config"], data["machine"]
    rows = scenario_rows(data)
    out = [f"# Load benchmark, {data['when']}", ""]
    out += [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"load average after the run {m.get('loadavg', 'unknown')} (shared machine).",
        f"Load generator: **{cfg['tool']}** (wrk: {m['wrk']}; nginx: {m['nginx']}).",
        "",
    ]
    out += ["## Configuration", ""]
    out.append(
        f"- {cfg['rounds']} interleaved round(s) x {cfg['duration']:g} s per scenario, "
        f"{cfg['connections']} connections, {cfg['workers']} worker process(es) per server, "
        f"inner body {cfg['body_size']:,} B to `{cfg['inner_url']}` (pre-encapsulated in "
        f"{data['pool_seconds']:.1f} s, {data['suite']})."
    )
    out.append(f"- {replay_statement(data)}")
    if data["inner_checks"]:
        checks = ", ".join(f"{k}: {v}" for k, v in data["inner_checks"].items())
        out.append(f"- Inner status of one real exchange per path before the load: {checks}.")
    out += [f"- {note}" for note in data["notes"]]
    out += ["", "## Headline (ratios from this run)", "", *headlines(data, rows), ""]
    out += ["## Scenarios", ""]
    out += [
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | failed | server CPU us/req | "
        "peak RSS MiB | loadgen CPU us/req |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    rss = data["peak_rss_kib"]
    for name, row in rows.items():
        cpu = ", ".join(f"{n} {_num(v, 1)}" for n, v in row["cpu_us_per_request"].items())
        mem = ", ".join(f"{n} {rss[n] / 1024:.0f}" for n in row["cpu_us_per_request"] if n in rss)
        p = row["p"]
        out.append(
            f"| {TITLES.get(name, name)} | {_num(row['rps'])} | {_ms(p[50.0])} | {_ms(p[90.0])} | "
            f"{_ms(p[99.0])} | {_ms(p[99.9])} | {row['failed']:,} | {cpu or 'n/a'} | "
            f"{mem or 'n/a'} | {_num(row['loadgen_cpu_us_per_request'], 1)} |"
        )
    out += ["", "Responses by status and socket errors (every request counted):", ""]
    out += [f"- {name}: {_status_text(row)}" for name, row in rows.items()]
    if data["scaling"]:
        out += ["", "## Scaling (gateway only, echo backend)", ""]
        out += [
            "| workers | connections | req/s | p50 ms | p99 ms | p99/p50 | failed "
            "| gateway CPU us/req |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in data["scaling"]:
            row = summarize([phase])
            cpu = row["cpu_us_per_request"].get("gateway", math.nan)
            tail = _ratio(row["p"][99.0], row["p"][50.0])
            out.append(
                f"| {phase['workers']} | {phase['connections']} | {_num(row['rps'])} | "
                f"{_ms(row['p'][50.0])} | {_ms(row['p'][99.0])} | "
                f"{_num(tail, 1)} | {row['failed']:,} | {_num(cpu, 1)} |"
            )
    if data["profile"]:
        out += ["", "## Where the gateway's time goes (py-spy --native over its workers)", ""]
        out += [
            "Share of samples with the frame on top (self) or anywhere in the stack "
            "(inclusive); C frames are the syscalls and libraries under the Python code. "
            "Sampling can over-represent frames sitting in a syscall: the CPU us/req above "
            "(utime + stime from /proc) is the measure; this says where to look.",
            "",
        ]
        out += ["| function | self | inclusive |", "|---|---:|---:|"]
        out += [
            f"| `{f}` | {own * 100:.1f}% | {incl * 100:.1f}% |" for f, own, incl in data["profile"]
        ]
    out += ["", "Reproduce: `python -m benchmarks load` (see benchmarks/README.md for options)."]
    return "\n".join(out) + "\n"


def plot(data: dict[str, Any], out: Path) -> list[Path]:
    """Latency CDF per scenario; throughput and p99 vs concurrency. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    rows = scenario_rows(data)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        points = sorted(row["quantiles"].items())
        ax.plot([v / 1000 for _, v in points], [q / 100 for q, _ in points], label=name)
    ax.set(
        xscale="log",
        xlabel="latency (ms)",
        ylabel="fraction of requests",
        title="Latency CDF per scenario",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    written.append(out / "latency-cdf.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    if data["scaling"]:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        for workers in sorted({p["workers"] for p in data["scaling"]}):
            phases = [p for p in data["scaling"] if p["workers"] == workers]
            conns = [p["connections"] for p in phases]
            rows_w = [summarize([p]) for p in phases]
            left.plot(conns, [r["rps"] for r in rows_w], marker="o", label=f"{workers} worker(s)")
            right.plot(
                conns,
                [r["p"][99.0] / 1000 for r in rows_w],
                marker="o",
                label=f"{workers} worker(s)",
            )
        left.set(xscale="log", xlabel="connections", ylabel="req/s", title="Throughput")
        right.set(
            xscale="log", yscale="log", xlabel="connections", ylabel="p99 (ms)", title="p99 latency"
        )
        for axis in (left, right):
            axis.grid(True, which="both", alpha=0.3)
            axis.legend()
        written.append(out / "scaling.png")
        fig.savefig(written[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return written


def write_all(data: dict[str, Any], out: Path, *, plots: bool = True) -> Path:
    """results.json, report.md (and PNGs) in ``out``; returns the report path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    text = render(data)
    images = plot(data, out) if plots else []
    if images:
        text += "\nPlots: " + ", ".join(f"![{p.stem}]({p.name})" for p in images) + "\n"
    path = out / "report.md"
    path.write_text(text)
    return path


PLOTS_DIR = "plots"  # next to the README, committed (benchmarks/results/ is not)


def update_readme(readme: Path, report_md: str, plots_from: Path | None = None) -> None:
    """Put ``report_md`` between the load-report markers of the README (appended if absent).

    ``plots_from``: the run's directory; its PNGs are copied to ``plots/`` next to the README
    and shown in the report, so the plots of the latest report are committed with it.
    """
    body = report_md.replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
    body = body.replace("# Load benchmark", "### Latest load report", 1)
    body = "\n".join(line for line in body.splitlines() if not line.startswith("Plots: "))
    body += _copied_plots(readme.parent, plots_from)
    block = f"{README_BEGIN}\n{body.strip()}\n{README_END}"
    text = readme.read_text() if readme.exists() else ""
    if README_BEGIN in text and README_END in text:
        head, _, rest = text.partition(README_BEGIN)
        _, _, tail = rest.partition(README_END)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + LOAD_README_INTRO + "\n" + block + "\n"
    readme.write_text(text)


def _copied_plots(directory: Path, plots_from: Path | None) -> str:
    images = sorted(plots_from.glob("*.png")) if plots_from is not None else []
    if not images:
        return ""
    target = directory / PLOTS_DIR
    target.mkdir(exist_ok=True)
    for stale in target.glob("load-*.png"):
        stale.unlink()
    links = []
    for image in images:
        name = f"load-{image.name}"
        shutil.copyfile(image, target / name)
        links.append(f"![{image.stem}]({PLOTS_DIR}/{name})")
    return "\n\n" + "\n\n".join(links) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks report")
    parser.add_argument("results", type=Path, help="results.json of a run")
    parser.add_argument("--update-readme", type=Path, help="write the report into this README")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    path = write_all(data, args.results.parent)
    if args.update_readme:
        update_readme(args.update_readme, path.read_text(), plots_from=path.parent)
    print(path.read_text())
    return 0
