"""A real ``redis-server`` for the tests: a free loopback port, a temporary directory, no
persistence; stopped (and restarted on the same port) by PID.

The Debian package ``redis-server`` provides it (``.ci/run`` installs it); without it the
tests that need it are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LOOPBACK, free_port, stop_process

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server)"
)


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` keep the port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self._wait_answering()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def pause(self) -> None:
        """Stop the process answering (SIGSTOP), as a hung or overloaded server would."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def command(self, *words: str) -> bytes:
        """One inline command on a fresh connection; the first line of the reply."""
        with socket.create_connection((LOOPBACK, self.port), timeout=5) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.makefile("rb").readline().rstrip(b"\r\n")

    def _wait_answering(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with contextlib.suppress(OSError):
                if self.command("PING") == b"+PONG":
                    return
            time.sleep(0.02)
        raise TimeoutError("redis-server did not answer")


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A running redis-server until the block ends; skips the test without redis-server."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
