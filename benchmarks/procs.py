"""Server processes for the load benchmark: start on free loopback ports, health-check, measure
CPU and peak RSS from /proc, stop by PID.

Also the plain origin echo server (the "backend directly" baseline):
``python -m benchmarks.procs origin --listen 127.0.0.1:PORT``, and the aiohttp floor (a bare
server answering a fixed body without forwarding: the framework's own cost per request):
``python -m benchmarks.procs floor --listen 127.0.0.1:PORT --answer-bytes N --path /P``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GATEWAY_PATH = "/.well-known/ohttp-gateway"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One benchmarked server: its root processes (several for SO_REUSEPORT origins), base URL."""

    name: str
    processes: list[subprocess.Popen[bytes]]
    url: str
    log_path: Path
    metrics_urls: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        """Every live PID of this server: roots and all their descendants (workers)."""
        roots = [p.pid for p in self.processes if p.poll() is None]
        return sorted({*roots, *descendants(roots)})

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_stat(int(entry))
        if stat is not None:
            children.setdefault(int(stat[1]), []).append(int(entry))
    return children


def descendants(roots: list[int]) -> set[int]:
    """All live descendant PIDs of ``roots`` (found by scanning /proc for parent PIDs)."""
    children = _parent_map()
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state, field 3)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds split into user and system (kernel) time."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user - other.user, self.system - other.system)


def cpu_seconds(pids: list[int]) -> CpuTimes:
    """User and system time of each PID plus its reaped children, summed, in seconds."""
    user = system = 0
    for pid in pids:
        stat = _read_stat(pid)
        if stat is not None:
            # proc(5): utime, stime, cutime, cstime are fields 14-17 (indexes 11-14 here).
            utime, stime, cutime, cstime = (int(value) for value in stat[11:15])
            user, system = user + utime + cutime, system + stime + cstime
    return CpuTimes(user / _CLOCK_TICKS, system / _CLOCK_TICKS)


def peak_rss_kib(pids: list[int]) -> int:
    """Sum over PIDs of VmHWM (peak resident set size) from /proc/PID/status, in KiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def wait_healthy(url: str, server: Server, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 200; fail early if a process of the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in server.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {process.returncode}:\n{server.log_tail()}"
                )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{server.name} not healthy after {timeout} s:\n{server.log_tail()}")


def _spawn(argv: list[str], log_path: Path, cwd: Path = REPO) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


def start_python(name: str, args: list[str], port: int, workdir: Path, cwd: Path = REPO) -> Server:
    """Run ``python -m ARGS`` from ``cwd`` until GET /healthz on ``port`` answers 200.

    ``cwd`` decides which copy of a package runs (an older one for before/after comparisons).
    """
    log_path = workdir / f"{name}.log"
    process = _spawn([sys.executable, "-m", *args], log_path, cwd)
    server = Server(name, [process], f"http://{LOOPBACK}:{port}", log_path)
    _start_or_stop(server, f"{server.url}/healthz")
    return server


def start_gateway(
    keys: Path,
    workers: int,
    workdir: Path,
    name: str = "gateway",
    *,
    cwd: Path = REPO,
    metrics: bool = True,
    backend: str = "echo",
) -> Server:
    """``python -m gateway --backend BACKEND`` (the same as ``ohttp gateway``), by default with
    its metrics listener (worker i on PORT+i). The package entry point keeps the benchmark
    independent of the other CLI groups.
    """
    port = free_port()
    args = ["gateway", "--keys", str(keys), "--listen", f"{LOOPBACK}:{port}"]
    args += ["--backend", backend, "--workers", str(workers)]
    first_metrics = free_ports(workers) if metrics else 0
    if metrics:
        args += ["--metrics-listen", f"{LOOPBACK}:{first_metrics}"]
    server = start_python(name, args, port, workdir, cwd)
    if metrics:
        server.metrics_urls = [
            f"http://{LOOPBACK}:{first_metrics + i}/metrics" for i in range(workers)
        ]
    return server


def free_ports(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1 at the time of the call."""
    for _ in range(attempts):
        first = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for offset in range(count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((LOOPBACK, first + offset))
            except OSError:
                continue
            return first
    raise RuntimeError("no run of free consecutive ports")


_RESULT_LINE = re.compile(r'^ohttp_gateway_requests_total\{result="([a-z_]+)"\} ([0-9.e+]+)$')


def gateway_results(server: Server) -> dict[str, int] | None:
    """The gateway's POST outcomes so far, summed over workers (None if not scrapeable).

    Errors found after decapsulation travel inside an outer 200 (RFC 9458 §5.2), so only the
    gateway itself can say how many requests really succeeded.
    """
    if not server.metrics_urls:
        return None
    totals: dict[str, int] = {}
    for url in server.metrics_urls:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            match = _RESULT_LINE.match(line)
            if match:
                totals[match[1]] = totals.get(match[1], 0) + int(float(match[2]))
    return totals


def start_relay(
    gateway: Server, workers: int, workdir: Path, name: str = "relay", *, cwd: Path = REPO,
    extra: tuple[str, ...] = (),
) -> Server:
    """``python -m relay`` forwarding to ``gateway``'s gateway path (``extra``: more flags)."""
    port = free_port()
    args = ["relay", "--listen", f"{LOOPBACK}:{port}", "--gateway", gateway.url + GATEWAY_PATH]
    args += ["--workers", str(workers), *extra]
    return start_python(name, args, port, workdir, cwd)


def start_floor(workdir: Path, answer_bytes: int, path: str) -> Server:
    """The aiohttp floor (one process): POST ``path`` reads the body, answers ``answer_bytes``."""
    port = free_port()
    args = ["benchmarks.procs", "floor", "--listen", f"{LOOPBACK}:{port}"]
    args += ["--answer-bytes", str(answer_bytes), "--path", path]
    return start_python("floor", args, port, workdir)


def start_proxy_floor(upstream: Server, workdir: Path) -> Server:
    """``benchmarks.proxy_floor`` (one process) forwarding to ``upstream``'s gateway path."""
    port = free_port()
    args = ["benchmarks.proxy_floor", "--listen", f"{LOOPBACK}:{port}"]
    args += ["--upstream", upstream.url + GATEWAY_PATH]
    return start_python("pfloor", args, port, workdir)


def start_stub(workdir: Path, keys: Path, answer_bytes: int, path: str, *, name: str = "stub",
               shell: bool = False, engine: bool = False, work: bool = False,
               timed: bool = False, processes: int = 1) -> Server:
    """The stub gateway (``benchmarks.stub``): the floor plus decapsulation and sealing with
    ``keys`` (the issue 18 reference: what any aiohttp gateway with this crypto must at least
    spend); ``shell``: served through the project's serving shell; ``engine``: on the serving
    engine (``work``: with the gateway's request work); ``timed``: with ``GET /crypto-cpu``;
    ``processes``: that many sharing the port (SO_REUSEPORT), as ``--workers`` does."""
    port = free_port()
    args = ["benchmarks.stub", "--listen", f"{LOOPBACK}:{port}", "--keys", str(keys)]
    args += ["--answer-bytes", str(answer_bytes), "--path", path]
    args += ["--shell"] * shell + ["--engine"] * engine + ["--work"] * work
    args += ["--timed"] * timed
    if processes == 1:
        return start_python(name, args, port, workdir)
    if shell or engine:  # those serve without SO_REUSEPORT: a second process could not bind
        raise ValueError("several stub processes need the plain aiohttp stub")
    log_path = workdir / f"{name}.log"
    spawned = [_spawn([sys.executable, "-m", *args], log_path) for _ in range(processes)]
    server = Server(name, spawned, f"http://{LOOPBACK}:{port}", log_path)
    _start_or_stop(server, f"{server.url}/healthz")
    return server


def start_origin(workers: int, workdir: Path) -> Server:
    """The plain aiohttp echo origin: ``workers`` processes sharing one port (SO_REUSEPORT)."""
    port = free_port()
    log_path = workdir / "origin.log"
    argv = [sys.executable, "-m", "benchmarks.procs", "origin", "--listen", f"{LOOPBACK}:{port}"]
    processes = [_spawn(argv, log_path) for _ in range(workers)]
    server = Server("backend", processes, f"http://{LOOPBACK}:{port}", log_path)
    _start_or_stop(server, f"{server.url}/healthz")
    return server


NGINX_CONF = """\
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    {upstream}
    server {{
        listen {listen} reuseport;
        location = /healthz {{ return 200 "ok"; }}
        {location}
    }}
}}
"""
_PROXY_UPSTREAM = "upstream gateway {{ server {address}; keepalive 256; }}"
_PROXY_LOCATION = """location = / {{
            proxy_pass http://gateway{path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering on;
            client_max_body_size 1m;
        }}"""
_STATIC_LOCATION = 'location / {{ default_type message/ohttp-res; return 200 "{answer}"; }}'


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A redis-server on a free loopback port, without persistence, for the block: its URL;
    None when redis-server is not installed. Stopped by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly",
             "no", "--dir", directory], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for_port(port)
            yield f"redis://{LOOPBACK}:{port}/0"
        finally:
            process.terminate()
            process.wait()


def _wait_for_port(port: int) -> None:
    for _ in range(500):
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing listens on port {port}")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def start_nginx(
    gateway: Server, workers: int, workdir: Path, name: str = "nginx"
) -> Server | None:
    """nginx ``proxy_pass`` of POST / to the gateway path of ``gateway`` (the relay's
    yardstick); None when nginx is not installed."""
    upstream = _PROXY_UPSTREAM.format(address=gateway.url.removeprefix("http://"))
    return _start_nginx(name, workers, workdir, upstream, _PROXY_LOCATION.format(path=GATEWAY_PATH))


def start_static_nginx(workdir: Path, answer: str, name: str = "upstream") -> Server | None:
    """nginx (1 worker) answering every request but /healthz with a fixed 200
    ``message/ohttp-res`` body ``answer``; None when nginx is not installed."""
    return _start_nginx(name, 1, workdir, "", _STATIC_LOCATION.format(answer=answer))


def _start_nginx(
    name: str, workers: int, workdir: Path, upstream: str, location: str
) -> Server | None:
    binary = nginx_binary()
    if binary is None:
        return None
    nginx_dir = workdir / name
    nginx_dir.mkdir(exist_ok=True)
    port = free_port()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers,
            dir=nginx_dir,
            upstream=upstream,
            listen=f"{LOOPBACK}:{port}",
            location=location,
        )
    )
    argv = [binary, "-p", str(nginx_dir), "-c", str(conf), "-e", str(nginx_dir / "nginx-error.log")]
    log_path = workdir / f"{name}.log"
    process = _spawn([*argv, "-g", "daemon off;"], log_path)
    server = Server(name, [process], f"http://{LOOPBACK}:{port}", log_path)
    _start_or_stop(server, f"{server.url}/healthz")
    return server


def _start_or_stop(server: Server, health_url: str) -> None:
    try:
        wait_healthy(health_url, server)
    except BaseException:
        stop(server)
        raise


def stop(server: Server, timeout: float = 10.0) -> None:
    """Stop by PID: SIGTERM to each root process, SIGKILL if it does not exit in time."""
    for process in server.processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
    for process in server.processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)


# --- the origin echo server and the aiohttp floor ---


if TYPE_CHECKING:
    from aiohttp import web


def serve_app(app: web.Application, listen: str) -> None:
    """Serve ``app`` on uvloop (when installed), no access log, until SIGTERM/SIGINT."""
    import asyncio

    from aiohttp import web

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    host, _, port = listen.rpartition(":")
    web.run_app(app, host=host, port=int(port), reuse_port=True, access_log=None, print=None)


def _run_origin(listen: str) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    serve_app(app, listen)


def _run_floor(listen: str, answer_bytes: int, path: str) -> None:
    from aiohttp import web

    answer = bytes(answer_bytes)

    async def floor(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="message/ohttp-res")

    app = web.Application()
    app.router.add_post(path, floor)
    serve_app(app, listen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.procs")
    sub = parser.add_subparsers(dest="command", required=True)
    origin = sub.add_parser("origin", help="plain aiohttp echo origin (benchmark baseline)")
    origin.add_argument("--listen", required=True, help="HOST:PORT")
    floor = sub.add_parser("floor", help="bare aiohttp server answering a fixed body")
    floor.add_argument("--listen", required=True, help="HOST:PORT")
    floor.add_argument("--answer-bytes", type=int, required=True)
    floor.add_argument("--path", required=True, help="the POST route")
    args = parser.parse_args(argv)
    if args.command == "floor":
        _run_floor(args.listen, args.answer_bytes, args.path)
    else:
        _run_origin(args.listen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
