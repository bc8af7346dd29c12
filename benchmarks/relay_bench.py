"""Relay vs nginx ``proxy_pass``, side by side against the same upstream (a benchmark, not a test).

    python -m benchmarks.relay_bench [--seconds 5] [--connections 32] [--body 1024]

Upstream: nginx answering every POST with a fixed ``message/ohttp-res`` body. Proxies: nginx
``proxy_pass`` (1 worker, keep-alive upstream) and ``python -m relay`` (1 worker, uvloop). wrk
sends 1 KiB POSTs; CPU per request is the proxy process's utime+stime delta over the run divided
by the completed requests. Needs nginx and wrk on PATH; loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


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


def measure(url: str, pid: int, seconds: int, connections: int, script: Path) -> dict[str, float]:
    before = cpu_seconds(pid)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - before
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": requests / seconds,
        "cpu_us_per_request": cpu / requests * 1e6,
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--body", type=int, default=1024)
    args = parser.parse_args()
    if not shutil.which("nginx") or not shutil.which("wrk"):
        print("needs nginx and wrk")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(_LUA.format(n=args.body))
        up, proxy, relay_port = free_port(), free_port(), free_port()
        processes = [nginx(workdir, "upstream", up, 0, _UPSTREAM_BODY)]
        processes.append(nginx(workdir, "proxy", proxy, up, _PROXY_BODY))
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "relay",
                    "--listen",
                    f"127.0.0.1:{relay_port}",
                    "--gateway",
                    f"http://127.0.0.1:{up}/.well-known/ohttp-gateway",
                ],
                stderr=subprocess.DEVNULL,
            )
        )
        try:
            wait_up(f"http://127.0.0.1:{proxy}/")
            wait_up(f"http://127.0.0.1:{relay_port}/")
            results = {
                "nginx": measure(
                    f"http://127.0.0.1:{proxy}/",
                    worker_pid(processes[1]),
                    args.seconds,
                    args.connections,
                    script,
                ),
                "relay": measure(
                    f"http://127.0.0.1:{relay_port}/",
                    processes[2].pid,
                    args.seconds,
                    args.connections,
                    script,
                ),
            }
        finally:
            for process in processes:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(10)
    for name, result in results.items():
        print(
            f"{name:6} {result['requests_per_s']:9.0f} req/s  "
            f"{result['cpu_us_per_request']:6.1f} us CPU/req  non-2xx {result['non_2xx']:.0f}"
        )
    nginx_r, relay_r = results["nginx"], results["relay"]
    print(
        f"relay/nginx: CPU {relay_r['cpu_us_per_request'] / nginx_r['cpu_us_per_request']:.2f}x"
        f"  throughput {relay_r['requests_per_s'] / nginx_r['requests_per_s']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
