"""A real relay subprocess: slow clients cut off, and logs that never name the client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.support import REPO, free_port

from .conftest import RecordingGateway

CLIENT_ADDRESS = "127.0.0.2"  # distinct from the gateway's 127.0.0.1
SECRET = "qx-log-canary-5d81e2"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # loopback only
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.asynccontextmanager
async def relay_process(args: list[str], log_path: Path,
                        started: list[int] | None = None) -> AsyncIterator[str]:
    """``ohttp relay ARGS`` as a real subprocess until the block ends; yields its base URL.

    Its PID is appended to ``started`` when given."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ohttp", "relay", "--listen", f"127.0.0.1:{port}", *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )
    base = f"http://127.0.0.1:{port}"
    if started is not None:
        started.append(process.pid)
    try:
        for _ in range(300):
            assert process.poll() is None, log_path.read_text()
            if await asyncio.to_thread(_healthy, base + "/healthz"):
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("relay did not come up")
        yield base
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5)
    assert process.returncode == 0, log_path.read_text()  # a clean stop on SIGTERM


async def connect_from_client_address(base: str) -> tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]:
    port = int(base.rsplit(":", 1)[1])
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(CLIENT_ADDRESS, 0))


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while piece := await asyncio.wait_for(reader.read(4096), 10):
        data += piece
    return data


async def test_slowloris_cut_off_while_others_served(gateway: RecordingGateway,
                                                     tmp_path: Path) -> None:
    args = ["--gateway", gateway.url, "--header-timeout", "1.5", "--body-timeout", "1.5"]
    async with relay_process(args, tmp_path / "relay.log") as base:
        slow_head_reader, slow_head = await connect_from_client_address(base)
        slow_body_reader, slow_body = await connect_from_client_address(base)
        slow_body.write(b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
                        b"Content-Length: 100\r\n\r\n")

        async def trickle() -> None:
            head = b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: message/ohttp-req\r\n"
            with contextlib.suppress(ConnectionError):
                for i in range(40):  # bounded: at most 40 bytes, one every 0.2 s
                    slow_head.write(head[i : i + 1] or b"X")
                    slow_body.write(b"\0")
                    await asyncio.sleep(0.2)

        trickler = asyncio.create_task(trickle())
        async with aiohttp.ClientSession() as session, session.post(
            base + "/", data=b"normal", headers={"Content-Type": "message/ohttp-req"}
        ) as response:
            assert (response.status, await response.read()) == (200, b"normal")
        assert not trickler.done()  # the slow clients were still trickling meanwhile
        head_answer = await read_until_closed(slow_head_reader)
        body_answer = await read_until_closed(slow_body_reader)
        trickler.cancel()
        slow_head.close()
        slow_body.close()
    assert head_answer == b""  # closed without a response: no request was ever parsed
    assert body_answer.startswith(b"HTTP/1.1 408")
    assert len(gateway.posts) == 1  # the slow body was never forwarded complete


async def test_logs_never_name_the_client(gateway: RecordingGateway, tmp_path: Path) -> None:
    log_path = tmp_path / "relay.log"
    async with relay_process(["--gateway", gateway.url], log_path) as base:
        exchanges = [
            b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
            b"Connection: close\r\nContent-Length: 3\r\nUser-Agent: "
            + SECRET.encode() + b"\r\n\r\nabc",
            # Malformed: aiohttp's parser fails and logs "Error handling request from <peer>".
            b"POST / HTTP/1.1\r\nHost: r\r\nBad Header\x01" + SECRET.encode() + b": v\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /" + SECRET.encode() + b" HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz" + SECRET.encode() + b"\r\n",
        ]
        answers = []
        for raw in exchanges:
            reader, writer = await connect_from_client_address(base)
            writer.write(raw)  # (no half-close: asyncio would close the connection at once)
            answers.append(await read_until_closed(reader))
            writer.close()
    assert answers[0].startswith(b"HTTP/1.1 200") and answers[0].endswith(b"abc")
    # aiohttp answers parse errors itself with an HTTP/1.0 status line.
    assert [answer.split(b" ", 2)[1] for answer in answers[1:]] == [b"400", b"400", b"404", b"400"]
    log = log_path.read_text(errors="replace")
    assert "relay listening" in log
    assert "request error withheld" in log  # the parse errors were logged, without details
    assert CLIENT_ADDRESS not in log
    assert SECRET not in log
    assert len(gateway.posts) == 1


async def test_workers_share_one_port(gateway: RecordingGateway, tmp_path: Path) -> None:
    log_path = tmp_path / "relay.log"
    args = ["--gateway", gateway.url, "--workers", "2"]
    async with relay_process(args, log_path) as base, aiohttp.ClientSession() as session:
        for _ in range(300):  # bounded wait until the second worker is up too
            if log_path.read_text().count("relay listening") == 2:
                break
            await asyncio.sleep(0.05)
        for i in range(6):  # new connections: the kernel spreads them over the workers
            async with session.post(base + "/", data=b"w%d" % i,
                                    headers={"Content-Type": "message/ohttp-req",
                                             "Connection": "close"}) as response:
                assert (response.status, await response.read()) == (200, b"w%d" % i)
    assert log_path.read_text().count("relay stopped") == 2
    assert len(gateway.posts) == 6


async def test_sighup_does_not_stop_a_one_worker_relay(gateway: RecordingGateway,
                                                       tmp_path: Path) -> None:
    """A process manager's reload (SIGHUP) never kills the relay, with one worker too."""
    pids: list[int] = []
    args = ["--gateway", gateway.url]
    async with relay_process(args, tmp_path / "relay.log", pids) as base, \
            aiohttp.ClientSession() as session:
        os.kill(pids[0], signal.SIGHUP)
        await asyncio.sleep(0.3)  # a default SIGHUP disposition would have ended it by now
        async with session.post(base + "/", data=b"after-hup",
                                headers={"Content-Type": "message/ohttp-req"}) as response:
            assert (response.status, await response.read()) == (200, b"after-hup")
    # relay_process asserts the clean exit 0 on the later SIGTERM
