"""End-to-end load benchmark on loopback (or against a deployment with ``--target-relay``).

One interleaved run over the scenarios (backend directly; gateway only; relay + gateway; nginx
``proxy_pass`` + gateway when nginx is installed), then a scaling sweep (concurrency x gateway
workers). Requests are pre-encapsulated in parallel processes: client crypto is not measured.
Server CPU per request comes from /proc (utime + stime of each process and its workers).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

from benchmarks import loadgen, procs, report
from benchmarks.loadgen import LoadResult, LoadSpec, Pool

RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
OHTTP_REQUEST_TYPE = "message/ohttp-req"
ECHO_INNER_URL = "https://echo.internal/echo"
SCENARIOS = ("backend", "gateway", "relay", "nginx")
SMALL_POOL = 500


@dataclass(frozen=True)
class LoadConfig:
    """Everything one run depends on; written into its report."""

    duration: float = 8.0
    rounds: int = 3
    connections: int = 32
    workers: int = 2
    body_size: int = 1024
    pool_size: int = 10_000
    tool: str = "auto"  # auto | wrk | builtin
    wrk_threads: int = 1
    wrk_status_detail: bool = False
    scenarios: tuple[str, ...] = SCENARIOS
    scaling_concurrency: tuple[int, ...] = (1, 8, 32, 128, 512)
    scaling_workers: tuple[int, ...] = (1, 2)
    scaling_duration: float = 4.0
    replay_check: bool = False
    inner_url: str = ECHO_INNER_URL
    target_relay: str | None = None
    keys: str | None = None
    profile_seconds: float = 0.0
    out_dir: Path = RESULTS_DIR
    plots: bool = True
    progress: bool = True

    def resolved_tool(self) -> str:
        if self.tool == "auto":
            return "wrk" if loadgen.wrk_binary() else "builtin"
        return self.tool


# --- request pools ---


def _encapsulate_chunk(args: tuple[bytes, str, int, int, bool]) -> list[bytes]:
    """Worker process: ``count`` distinct encapsulated requests (fresh HPKE context each)."""
    from ohttp import bhttp
    from ohttp.encapsulation import encapsulate_request
    from ohttp.keys import KeyConfig

    config_bytes, inner_url, body_size, count, with_date = args
    config = KeyConfig.decode(config_bytes)
    scheme, _, rest = inner_url.partition("://")
    authority, _, path = rest.partition("/")
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/octet-stream")]
    if with_date:
        # RFC 9458 §6.5.1: with a Date the gateway checks the window and its replay cache.
        headers.append((b"date", formatdate(time.time(), usegmt=True).encode()))
    out = []
    for _ in range(count):
        inner = bhttp.Request(
            method=b"POST",
            scheme=scheme.encode(),
            authority=authority.encode(),
            path=b"/" + path.encode(),
            headers=tuple(headers),
            content=os.urandom(body_size),
        )
        out.append(encapsulate_request(config, bhttp.encode_request(inner))[0])
    return out


def suite_name(config_bytes: bytes) -> str:
    """KEM / KDF / AEAD the pool uses (the config's first suite, as encapsulate_request does)."""
    from ohttp.keys import KeyConfig

    config = KeyConfig.decode(config_bytes)
    suite = config.suites[0]
    return f"{config.kem.name} / {suite.kdf.name} / {suite.aead.name}"


def build_ohttp_pool(config_bytes: bytes, cfg: LoadConfig, directory: Path) -> tuple[Pool, float]:
    """Encapsulate ``pool_size`` distinct requests in parallel; returns the pool and seconds."""
    started = time.monotonic()
    processes = max(1, os.cpu_count() or 1)
    chunks = [cfg.pool_size // (processes * 4)] * (processes * 4)
    chunks[0] += cfg.pool_size - sum(chunks)
    tasks = [(config_bytes, cfg.inner_url, cfg.body_size, n, cfg.replay_check) for n in chunks if n]
    if cfg.pool_size <= SMALL_POOL:  # starting processes would cost more than the work
        chunks_out = [_encapsulate_chunk(task) for task in tasks]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as workers:
            chunks_out = workers.map(_encapsulate_chunk, tasks)
    bodies = [body for chunk in chunks_out for body in chunk]
    pool = Pool.write(directory / "ohttp-pool", bodies, OHTTP_REQUEST_TYPE)
    return pool, time.monotonic() - started


def build_plain_pool(cfg: LoadConfig, directory: Path) -> Pool:
    bodies = [os.urandom(cfg.body_size) for _ in range(256)]
    return Pool.write(directory / "plain-pool", bodies, "application/octet-stream")


def load_key_config(source: str) -> bytes:
    """The first key config (encoded) from an ohttp-keys URL, an ohttp-keys file or a key file."""
    from ohttp.aio.keyfile import load_key_file
    from ohttp.keys import decode_key_configs

    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:
            return decode_key_configs(response.read())[0].encode()
    with contextlib.suppress(Exception):
        return decode_key_configs(Path(source).read_bytes())[0].encode()
    return load_key_file(source).current()[0].config.encode()


def check_inner_status(url: str, config_bytes: bytes, inner_url: str) -> int:
    """One real exchange through ``url``: the inner status, which must be 200.

    Outer 200 alone proves nothing: RFC 9458 §5.2 errors after decapsulation travel inside it.
    """
    from ohttp import bhttp
    from ohttp.encapsulation import encapsulate_request
    from ohttp.keys import KeyConfig

    scheme, _, rest = inner_url.partition("://")
    authority, _, path = rest.partition("/")
    inner = bhttp.Request(
        b"POST", scheme.encode(), authority.encode(), b"/" + path.encode(), content=b"check"
    )
    body, opener = encapsulate_request(KeyConfig.decode(config_bytes), bhttp.encode_request(inner))
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": OHTTP_REQUEST_TYPE}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status = bhttp.decode_response(opener.open(response.read())).status
    if status != 200:
        raise RuntimeError(f"inner status {status} through {url}: check --inner-url and --keys")
    return status


# --- measuring one phase ---


@dataclass
class Phase:
    scenario: str
    round: int
    connections: int
    workers: int
    result: LoadResult
    cpu_seconds: dict[str, float]
    loadgen_cpu_seconds: float
    pool_start: int
    gateway_results: dict[str, int] | None = None  # from its /metrics; None if not visible


@dataclass
class Cursor:
    """How far a gateway process has consumed the pool (to know whether requests repeated)."""

    pool_size: int
    used: int = 0

    def advance(self, result: LoadResult, connections: int) -> int:
        start = self.used
        self.used += result.requests + connections  # plus requests cut off in flight
        return start


def _loadgen_cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure(
    scenario: str,
    url: str,
    pool: Pool,
    servers: dict[str, procs.Server],
    cfg: LoadConfig,
    *,
    round_index: int,
    connections: int,
    workers: int,
    start: int,
    duration: float,
) -> Phase:
    """Run one load phase and the CPU each server spent in it."""
    gateway = servers.get("gateway")
    results_before = procs.gateway_results(gateway) if gateway else None
    pids = {name: server.pids() for name, server in servers.items()}
    before = {name: procs.cpu_seconds(p).total for name, p in pids.items()}
    loadgen_before = _loadgen_cpu()
    spec = LoadSpec(
        url,
        pool,
        connections,
        duration,
        start,
        threads=cfg.wrk_threads,
        status_detail=cfg.wrk_status_detail,
    )
    result = loadgen.run_load(spec, cfg.resolved_tool())
    loadgen_cpu = _loadgen_cpu() - loadgen_before
    cpu = {name: procs.cpu_seconds(p).total - before[name] for name, p in pids.items()}
    phase = Phase(scenario, round_index, connections, workers, result, cpu, loadgen_cpu, start)
    results_after = procs.gateway_results(gateway) if gateway else None
    if results_before is not None and results_after is not None:
        phase.gateway_results = {
            k: n - results_before.get(k, 0)
            for k, n in results_after.items()
            if n - results_before.get(k, 0)
        }
    return phase


# --- progress ---


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    """rich, else tqdm, else plain lines on stderr; yields ``advance(label)``."""
    if enabled:
        with contextlib.suppress(ImportError):
            from rich.progress import Progress

            with Progress(transient=False) as bar:
                task = bar.add_task("load", total=total)
                yield lambda label: bar.update(task, advance=1, description=label)
                return
        with contextlib.suppress(ImportError):
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            with tqdm(total=total) as tbar:

                def advance(label: str) -> None:
                    tbar.set_description(label)
                    tbar.update(1)

                yield advance
                return
    done = [0]

    def plain(label: str) -> None:
        done[0] += 1
        print(f"[{done[0]}/{total}] {label}", file=sys.stderr, flush=True)

    yield plain


# --- the run ---


@dataclass
class Run:
    cfg: LoadConfig
    phases: list[Phase] = field(default_factory=list)
    scaling: list[Phase] = field(default_factory=list)
    peak_rss_kib: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    inner_checks: dict[str, int] = field(default_factory=dict)
    pool_seconds: float = 0.0
    suite: str = ""
    pool_reuse: dict[str, int] = field(default_factory=dict)
    profile: list[tuple[str, float, float]] = field(default_factory=list)


def _scenario_urls(servers: dict[str, procs.Server]) -> dict[str, str]:
    urls = {}
    if "backend" in servers:
        urls["backend"] = servers["backend"].url + "/echo"
    if "gateway" in servers:
        urls["gateway"] = servers["gateway"].url + procs.GATEWAY_PATH
    for name in ("relay", "nginx"):
        if name in servers:
            urls[name] = servers[name].url + "/"
    return urls


def _measured(scenario: str, servers: dict[str, procs.Server]) -> dict[str, procs.Server]:
    names = {
        "backend": ["backend"],
        "gateway": ["gateway"],
        "relay": ["relay", "gateway"],
        "nginx": ["nginx", "gateway"],
        "target": [],
    }[scenario]
    return {name: servers[name] for name in names if name in servers}


def start_servers(cfg: LoadConfig, keys: Path, workdir: Path, run: Run) -> dict[str, procs.Server]:
    """Start what the scenarios need, stopping what started if a later one fails."""
    servers: dict[str, procs.Server] = {}
    try:
        if "backend" in cfg.scenarios:
            servers["backend"] = procs.start_origin(cfg.workers, workdir)
        if {"gateway", "relay", "nginx"} & set(cfg.scenarios):
            servers["gateway"] = procs.start_gateway(keys, cfg.workers, workdir)
        if "relay" in cfg.scenarios:
            servers["relay"] = procs.start_relay(servers["gateway"], cfg.workers, workdir)
        if "nginx" in cfg.scenarios:
            nginx = procs.start_nginx(servers["gateway"], cfg.workers, workdir)
            if nginx is None:
                run.notes.append("nginx is not installed: the nginx scenario was skipped.")
            else:
                servers["nginx"] = nginx
    except BaseException:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: dict[str, procs.Server]) -> None:
    for server in reversed(list(servers.values())):
        procs.stop(server)


def run_local(cfg: LoadConfig, workdir: Path) -> Run:
    """The loopback run: start everything, interleave the scenarios, sweep scaling, stop."""
    from ohttp.aio.keyfile import save_key_file
    from ohttp.keys import GatewayKey

    run = Run(cfg)
    run.notes.append(f"Load average before the run: {_loadavg()}.")
    keys = workdir / "keys.json"
    key = GatewayKey.generate(1)
    save_key_file(keys, [key])
    config_bytes = key.config.encode()
    pool, run.pool_seconds = build_ohttp_pool(config_bytes, cfg, workdir)
    run.suite = suite_name(config_bytes)
    plain = build_plain_pool(cfg, workdir)
    servers = start_servers(cfg, keys, workdir, run)
    try:
        urls = _scenario_urls(servers)
        for name in ("gateway", "relay", "nginx"):
            if name in urls:
                run.inner_checks[name] = check_inner_status(urls[name], config_bytes, cfg.inner_url)
        scenarios = [s for s in cfg.scenarios if s in urls]
        total = len(scenarios) * cfg.rounds + _scaling_phase_count(cfg)
        cursor = Cursor(cfg.pool_size)
        with progress_bar(total, cfg.progress) as advance:
            for round_index in range(cfg.rounds):
                # Rotate the order each round so drift (thermal, neighbours) hits all alike.
                shift = round_index % len(scenarios)
                for scenario in scenarios[shift:] + scenarios[:shift]:
                    is_plain = scenario == "backend"
                    phase = measure(
                        scenario,
                        urls[scenario],
                        plain if is_plain else pool,
                        _measured(scenario, servers),
                        cfg,
                        round_index=round_index,
                        connections=cfg.connections,
                        workers=cfg.workers,
                        start=0 if is_plain else cursor.used,
                        duration=cfg.duration,
                    )
                    if not is_plain:
                        cursor.advance(phase.result, cfg.connections)
                    run.phases.append(phase)
                    advance(f"{scenario} round {round_index + 1}: {phase.result.rps:,.0f} req/s")
            run.pool_reuse["gateway"] = cursor.used
            if cfg.profile_seconds > 0 and "gateway" in servers:
                run.profile = profile_gateway(
                    servers["gateway"], urls["gateway"], pool, cfg, workdir
                )
            run_scaling(cfg, keys, workdir, servers, pool, run, advance)
        run.peak_rss_kib = {name: procs.peak_rss_kib(s.pids()) for name, s in servers.items()}
    finally:
        stop_all(servers)
    return run


def _scaling_phase_count(cfg: LoadConfig) -> int:
    return len(cfg.scaling_concurrency) * len(cfg.scaling_workers)


def run_scaling(
    cfg: LoadConfig,
    keys: Path,
    workdir: Path,
    servers: dict[str, procs.Server],
    pool: Pool,
    run: Run,
    advance: Any,
) -> None:
    """Gateway-only requests/s and p99 for each (workers, concurrency).

    A fresh gateway per worker count, except that the scenarios' gateway serves its own count.
    """
    for workers in cfg.scaling_workers:
        reuse = workers == cfg.workers and "gateway" in servers
        gateway = (
            servers["gateway"]
            if reuse
            else procs.start_gateway(keys, workers, workdir, name=f"gateway-w{workers}")
        )
        try:
            # The scenarios' gateway has already seen part of the pool: carry on from there.
            cursor = Cursor(cfg.pool_size, run.pool_reuse.get(gateway.name, 0))
            url = gateway.url + procs.GATEWAY_PATH
            for connections in cfg.scaling_concurrency:
                phase = measure(
                    "gateway",
                    url,
                    pool,
                    {"gateway": gateway},
                    cfg,
                    round_index=0,
                    connections=connections,
                    workers=workers,
                    start=cursor.used,
                    duration=cfg.scaling_duration,
                )
                cursor.advance(phase.result, connections)
                run.scaling.append(phase)
                advance(f"scaling w={workers} c={connections}: {phase.result.rps:,.0f} req/s")
            run.pool_reuse[gateway.name] = cursor.used
        finally:
            if not reuse:
                procs.stop(gateway)


def run_target(cfg: LoadConfig, workdir: Path) -> Run:
    """Target mode: the same load against an existing relay (nothing is started)."""
    assert cfg.target_relay is not None and cfg.keys is not None
    run = Run(cfg)
    run.notes.append(f"Load average before the run: {_loadavg()}.")
    config_bytes = load_key_config(cfg.keys)
    pool, run.pool_seconds = build_ohttp_pool(config_bytes, cfg, workdir)
    run.suite = suite_name(config_bytes)
    run.inner_checks["target"] = check_inner_status(cfg.target_relay, config_bytes, cfg.inner_url)
    total = cfg.rounds + len(cfg.scaling_concurrency)
    cursor = Cursor(cfg.pool_size)
    with progress_bar(total, cfg.progress) as advance:
        for round_index in range(cfg.rounds):
            phase = measure(
                "target",
                cfg.target_relay,
                pool,
                {},
                cfg,
                round_index=round_index,
                connections=cfg.connections,
                workers=0,
                start=cursor.used,
                duration=cfg.duration,
            )
            cursor.advance(phase.result, cfg.connections)
            run.phases.append(phase)
            advance(f"target round {round_index + 1}: {phase.result.rps:,.0f} req/s")
        for connections in cfg.scaling_concurrency:
            phase = measure(
                "target",
                cfg.target_relay,
                pool,
                {},
                cfg,
                round_index=0,
                connections=connections,
                workers=0,
                start=cursor.used,
                duration=cfg.scaling_duration,
            )
            cursor.advance(phase.result, connections)
            run.scaling.append(phase)
            advance(f"target c={connections}: {phase.result.rps:,.0f} req/s")
    run.pool_reuse["target"] = cursor.used
    run.notes.append("Target mode: server CPU and RSS are not visible from here.")
    return run


# --- profile ---


def profile_gateway(
    gateway: procs.Server, url: str, pool: Pool, cfg: LoadConfig, workdir: Path
) -> list[tuple[str, float, float]]:
    """py-spy (when installed) over the gateway's workers under load: top frames by self time."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return []
    out = workdir / "gateway.pyspy.txt"
    root = gateway.processes[0].pid
    argv = [
        str(py_spy),
        "record",
        "--format",
        "raw",
        "-o",
        str(out),
        "--subprocesses",
        "-d",
        str(max(1, round(cfg.profile_seconds))),
        "-p",
        str(root),
        # Native frames: without them py-spy's non-blocking Python-only samples put a large,
        # misleading share on whatever Python frame sits above a C call.
        "--native",
    ]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    spec = LoadSpec(url, pool, cfg.connections, cfg.profile_seconds, threads=cfg.wrk_threads)
    loadgen.run_load(spec, cfg.resolved_tool())
    _, stderr = recorder.communicate(timeout=cfg.profile_seconds + 60)
    if recorder.returncode != 0 or not out.exists():
        print(f"py-spy failed: {stderr.decode(errors='replace')[-300:]}", file=sys.stderr)
        return []
    return top_functions(out.read_text(), limit=20)


def _function(frame: str) -> str:
    """``name (path/file.py:LINE)`` -> ``name (file.py)``: all lines of a function together."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


def top_functions(collapsed: str, limit: int = 15) -> list[tuple[str, float, float]]:
    """(function, self share, inclusive share) from py-spy's collapsed stacks, by self time."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames or not count.isdigit():
            continue
        functions = [_function(f) for f in frames]
        total += int(count)
        self_samples[functions[-1]] += int(count)
        for function in set(functions):
            inclusive[function] += int(count)
    total = total or 1
    return [(f, n / total, inclusive[f] / total) for f, n in self_samples.most_common(limit)]


# --- summary ---


def _loadavg() -> str:
    """1, 5 and 15 minute load averages: the machine is shared, say how busy it was."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": _loadavg(),
        "wrk": loadgen.wrk_binary() or "not installed",
        "nginx": procs.nginx_binary() or "not installed",
    }


def phase_dict(phase: Phase) -> dict[str, Any]:
    data = asdict(phase)
    data["result"]["quantiles"] = {str(k): v for k, v in phase.result.quantiles.items()}
    return data


def to_json(run: Run) -> dict[str, Any]:
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(run.cfg).items()}
    cfg["tool"] = run.cfg.resolved_tool()
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": cfg,
        "pool_seconds": run.pool_seconds,
        "suite": run.suite,
        "pool_used": run.pool_reuse,
        "inner_checks": run.inner_checks,
        "notes": run.notes,
        "phases": [phase_dict(p) for p in run.phases],
        "scaling": [phase_dict(p) for p in run.scaling],
        "peak_rss_kib": run.peak_rss_kib,
        "profile": run.profile,
    }


def run_and_report(cfg: LoadConfig) -> Path:
    """Run the benchmark; write results.json, report.md and plots; return the report path."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = cfg.out_dir / f"load-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ohttp-bench-") as tmp:
        workdir = Path(tmp)
        run = run_target(cfg, workdir) if cfg.target_relay else run_local(cfg, workdir)
    data = to_json(run)
    return report.write_all(data, out, plots=cfg.plots)


# --- command line ---


def _int_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__)
    d = LoadConfig()
    add = parser.add_argument
    add("--duration", type=float, default=d.duration, help="seconds per scenario per round")
    add("--rounds", type=int, default=d.rounds, help="interleaved rounds over the scenarios")
    add("--connections", type=int, default=d.connections, help="concurrent connections")
    add("--workers", type=int, default=d.workers, help="worker processes per server")
    add("--body-size", type=int, default=d.body_size, help="inner request body bytes")
    add("--pool-size", type=int, default=d.pool_size, help="distinct encapsulated requests")
    add("--tool", choices=("auto", "wrk", "builtin"), default=d.tool)
    add("--wrk-threads", type=int, default=d.wrk_threads)
    add(
        "--wrk-status-detail",
        action="store_true",
        help="wrk counts every status exactly (a Lua callback per response; costs wrk CPU)",
    )
    add("--scenarios", default=",".join(d.scenarios), help="subset of " + ",".join(SCENARIOS))
    add("--scaling-concurrency", type=_int_tuple, default=d.scaling_concurrency)
    add("--scaling-workers", type=_int_tuple, default=d.scaling_workers)
    add("--scaling-duration", type=float, default=d.scaling_duration)
    add(
        "--replay-check",
        action="store_true",
        help="inner requests carry a Date, so the gateway's window and replay cache run",
    )
    add("--inner-url", default=d.inner_url, help="target URL inside the encapsulated requests")
    add("--target-relay", help="drive this relay URL instead of starting processes")
    add("--keys", help="key source for --target-relay: ohttp-keys URL, ohttp-keys file or key file")
    add("--profile-seconds", type=float, default=0.0, help="py-spy the gateway for N s (0: off)")
    add("--out-dir", type=Path, default=d.out_dir)
    add("--update-readme", action="store_true", help="put the report in benchmarks/README.md")
    add("--no-plots", action="store_true")
    add("--no-progress", action="store_true")
    add("--quick", action="store_true", help="short durations (a smoke run, not a measurement)")
    return parser


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if bool(args.target_relay) != bool(args.keys):
        raise SystemExit("--target-relay and --keys go together")
    # Every option but these few is named as the LoadConfig field it sets.
    same_name = {f.name for f in fields(LoadConfig)} - {"scenarios", "plots", "progress"}
    cfg = LoadConfig(
        **{name: value for name, value in vars(args).items() if name in same_name},
        scenarios=scenarios,
        plots=not args.no_plots,
        progress=not args.no_progress,
    )
    if args.quick:
        cfg = replace(
            cfg,
            duration=1.0,
            rounds=1,
            scaling_duration=1.0,
            pool_size=2000,
            scaling_concurrency=(1, 32),
            scaling_workers=(1,),
        )
    if cfg.tool == "wrk" and loadgen.wrk_binary() is None:
        raise SystemExit("--tool wrk: wrk is not installed")
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    path = run_and_report(cfg)
    if args.update_readme:
        report.update_readme(README, path.read_text(), plots_from=path.parent)
    print(path.read_text())
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
