"""Relay vs nginx ``proxy_pass``, side by side against the same upstream (a benchmark, not a test).

    python -m benchmarks.relay_bench [--seconds 5] [--rounds 3] [--connections 32] [--body 1024]
                                     [--floor] [--baseline DIR]

Upstream: nginx answering every POST with a fixed ``message/ohttp-res`` body. Proxies: nginx
``proxy_pass`` (1 worker, keep-alive upstream) and ``python -m relay`` (1 worker, uvloop). wrk
sends 1 KiB POSTs; CPU per request is the proxy process's utime+stime delta over the run divided
by the completed requests (also shown split into user and system time). Each round measures every
target once, one after the other (the order reversed every other round), so a change in machine
load hits all of them alike; the ratios are taken per round (each target vs that round's nginx
run) and their median and range printed.
``--floor`` adds a bare aiohttp server that answers without forwarding (the framework's own cost
per request, the floor under any aiohttp relay); ``--baseline DIR`` adds a second relay run from
DIR (a copy of an older ``relay`` package) for before/after comparisons in the same run.
Needs nginx and wrk on PATH; loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import free_port

_TICKS = os.sysconf("SC_CLK_TCK")
_NGINX = """daemon off; worker_processes 1; pid {dir}/nginx-{name}.pid;
error_log {dir}/nginx-{name}.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};
  {upstream}
  server {{ listen 127.0.0.1:{port}; {body} }} }}
"""
_UPSTREAM_BODY = (
    'location / { default_type message/ohttp-res; return 200 "0123456789abcdef0123456789abcdef"; }'
)
_PROXY_BODY = (
    'location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }'
)
_LUA = (
    'wrk.method = "POST"\nwrk.body = string.rep("x", {n})\n'
    'wrk.headers["Content-Type"] = "message/ohttp-req"\n'
)


_FLOOR = """
import asyncio, sys
import uvloop
from aiohttp import web
BODY = b"0123456789abcdef0123456789abcdef"
async def answer(request):
    await request.read()
    return web.Response(body=BODY, content_type="message/ohttp-res")
async def main():
    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    await asyncio.Event().wait()
uvloop.run(main())
"""


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def nginx(workdir: Path, name: str, port: int, upstream: int, body: str) -> subprocess.Popen[bytes]:
    conf = workdir / f"nginx-{name}.conf"
    pool = f"upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}" if upstream else ""
    conf.write_text(_NGINX.format(dir=workdir, name=name, upstream=pool, port=port, body=body))
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)])


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            request = urllib.request.Request(
                url, data=b"x", method="POST", headers={"Content-Type": "message/ohttp-req"}
            )
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


def worker_pid(process: subprocess.Popen[bytes]) -> int:
    """nginx's single worker (the master does no request work); the relay process itself."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return int(children[0]) if children else process.pid


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    pid: int


@dataclass(frozen=True)
class Sample:
    requests_per_s: float
    user_us: float  # per request
    system_us: float  # per request
    non_2xx: int

    @property
    def cpu_us(self) -> float:
        return self.user_us + self.system_us


def measure(target: Target, seconds: int, connections: int, script: Path) -> Sample:
    user0, system0 = cpu_seconds(target.pid)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), target.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    user1, system1 = cpu_seconds(target.pid)
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Sample(
        requests_per_s=requests / seconds,
        user_us=(user1 - user0) / requests * 1e6,
        system_us=(system1 - system0) / requests * 1e6,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def relay_process(port: int, upstream: int, cwd: Path | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "--listen", f"127.0.0.1:{port}",
         "--gateway", f"http://127.0.0.1:{upstream}/.well-known/ohttp-gateway"],
        stderr=subprocess.DEVNULL, cwd=cwd,
    )


def spread(values: list[float], digits: int = 1) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def report(samples: dict[str, list[Sample]]) -> None:
    print(f"{'target':9} {'req/s median (range)':>26} {'CPU us/req median (range)':>28} "
          f"{'user':>6} {'sys':>6}  non-2xx")
    for name, runs in samples.items():
        print(f"{name:9} {spread([r.requests_per_s for r in runs]):>26} "
              f"{spread([r.cpu_us for r in runs]):>28} "
              f"{statistics.median(r.user_us for r in runs):6.1f} "
              f"{statistics.median(r.system_us for r in runs):6.1f}  "
              f"{sum(r.non_2xx for r in runs)}")
    nginx_runs = samples["nginx"]
    for name, runs in samples.items():
        if name == "nginx":
            continue
        cpu = [r.cpu_us / n.cpu_us for r, n in zip(runs, nginx_runs, strict=True)]
        rate = [r.requests_per_s / n.requests_per_s for r, n in zip(runs, nginx_runs, strict=True)]
        print(f"{name}/nginx per round: CPU {spread(cpu, 2)}x  throughput {spread(rate, 2)}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--body", type=int, default=1024)
    parser.add_argument("--floor", action="store_true", help="also measure a bare aiohttp server")
    parser.add_argument("--baseline", type=Path, help="directory holding an older relay package")
    args = parser.parse_args()
    if not shutil.which("nginx") or not shutil.which("wrk"):
        print("needs nginx and wrk")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(_LUA.format(n=args.body))
        up, proxy = free_port(), free_port()
        upstream = nginx(workdir, "upstream", up, 0, _UPSTREAM_BODY)
        processes = [upstream]
        targets: list[tuple[str, int, subprocess.Popen[bytes]]] = [
            ("nginx", proxy, nginx(workdir, "proxy", proxy, up, _PROXY_BODY))]
        port = free_port()
        targets.append(("relay", port, relay_process(port, up, None)))
        if args.baseline:
            port = free_port()
            targets.append(("baseline", port, relay_process(port, up, args.baseline)))
        if args.floor:
            port = free_port()
            floor = subprocess.Popen([sys.executable, "-c", _FLOOR, str(port)])
            targets.append(("floor", port, floor))
        processes += [process for _, _, process in targets]
        samples: dict[str, list[Sample]] = {name: [] for name, _, _ in targets}
        try:
            for _, port, _ in targets:
                wait_up(f"http://127.0.0.1:{port}/")
            running = [Target(name, f"http://127.0.0.1:{port}/",
                              worker_pid(process) if name == "nginx" else process.pid)
                       for name, port, process in targets]
            for round_number in range(args.rounds):
                # Alternate the order so neither target always runs right after the other.
                for target in running if round_number % 2 == 0 else running[::-1]:
                    samples[target.name].append(
                        measure(target, args.seconds, args.connections, script))
        finally:
            for process in processes:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(10)
    report(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
