"""The serving shell shared by ``ohttp gateway`` and ``ohttp relay`` (aiohttp; not sans-IO).

What a process serving untrusted clients needs around an aiohttp application, in one place:

- privacy-safe logs: JSON lines with fixed event names and whitelisted fields, never a
  record's arguments, never a traceback, so never a peer address or request content;
- a connection guard: a cap on open connections (a fixed 503 beyond it) and a deadline for
  each request head, which aiohttp lacks (a client trickling a head would hold a connection
  forever: slowloris);
- no ``Server`` header (aiohttp's announces its and Python's versions);
- the TLS server context, the uvloop runner, and ``workers > 1`` processes forked onto one
  port (SO_REUSEPORT) and supervised by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

__all__ = [
    "ConnectionTracker",
    "JsonLinesFormatter",
    "TRACKER",
    "Listening",
    "configure_logging",
    "omit_server_header",
    "run_worker",
    "run_workers",
    "server_tls_context",
    "serving",
    "tracked",
    "wait_for_stop",
]

log = logging.getLogger("ohttp.serving")

# --------------------------------------------------------------------------- logs

# Extra fields our own records may carry; all are operator data, counts or fixed names.
_LOG_FIELDS = (
    "error", "detail", "advertised", "host", "port", "worker", "workers", "tls", "code",
    "gateways",
)  # fmt: skip
_OWN_LOGGERS = ("gateway", "relay", "ohttp")
# aiohttp logs "Error handling request from <peer>" with a traceback that can quote request
# bytes; such a record keeps only this event and the exception's class name.
REQUEST_ERROR_EVENT = "request error withheld"


def _is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and whitelisted fields.

    Privacy by construction: the event is the record's message template, never formatted
    with its arguments, and exception tracebacks are never written.
    """

    def format(self, record: logging.LogRecord) -> str:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        document: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": template.split("\n", 1)[0][:120],
        }
        if _is_own(record.name):
            for name in _LOG_FIELDS:
                value = record.__dict__.get(name)
                if isinstance(value, str | int | float | bool):
                    document[name] = value
        elif record.name.startswith("aiohttp") and record.exc_info:
            document["event"] = REQUEST_ERROR_EVENT
            document["error"] = type(record.exc_info[1]).__name__
        return json.dumps(document)


def configure_logging() -> None:
    """Send every record to stderr as a JSON line (a process entry point calls this)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _loop_exception_handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # The default handler writes transport and protocol reprs, which can name the peer.
    exc = context.get("exception")
    log.warning("event loop error withheld", extra={"error": type(exc).__name__})


# --------------------------------------------------------------------------- connection guard

_OVER_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


class _GuardedProtocol:
    """Wraps aiohttp's per-connection protocol to add a connection cap and a header deadline.

    The head must be complete within ``header_timeout`` of the connection opening or the
    previous response ending. The deadline is checked lazily: one timer per period that
    re-arms itself while a request is handled or the connection has been idle for less than
    the limit, so a request costs two attribute writes instead of cancelling and scheduling a
    timer.
    """

    def __init__(self, tracker: ConnectionTracker, inner: RequestHandler) -> None:
        self._tracker = tracker
        self.inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()  # protocols are made inside the loop
        self._admitted = False
        self.busy = False  # a request head is complete and its handler runs
        self.idle_since = 0.0  # loop time the connection opened or the last handler ended

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if not self._tracker.admit(self):
            # Over the connection cap: a fixed answer, then close (never reaches aiohttp).
            # A stream server's transport can write; uvloop's is no asyncio.WriteTransport
            # subclass, so an isinstance check would skip the answer there.
            cast(asyncio.WriteTransport, transport).write(_OVER_CAPACITY)
            transport.close()
            return
        self._admitted = True
        self.idle_since = self._loop.time()
        self._timer = self._loop.call_at(
            self.idle_since + self._tracker.header_timeout, self._check
        )
        self.inner.connection_made(transport)

    def request_started(self) -> None:
        self.busy = True

    def request_ended(self) -> None:
        self.busy = False
        self.idle_since = self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        limit = self._tracker.header_timeout
        # While a handler runs its own deadlines apply; look again later.
        due = now + limit if self.busy else self.idle_since + limit
        if due > now:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._timer = None
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._admitted:
            self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._admitted:
            self._tracker.release(self)
            self.inner.connection_lost(exc)


@dataclass
class ConnectionTracker:
    """Counts client connections of one listener and maps aiohttp protocols to their guards.

    ``on_count`` hears the number of open connections whenever it changes (for a gauge).
    A handler marks its request with ``guard_of(request.protocol)`` or is wrapped by
    :func:`tracked`, so the head deadline never cuts off a request being handled.
    """

    max_connections: int
    header_timeout: float
    on_count: Callable[[int], None] = lambda _: None
    _guards: dict[RequestHandler, _GuardedProtocol] = field(default_factory=dict)

    def admit(self, guard: _GuardedProtocol) -> bool:
        if len(self._guards) >= self.max_connections:
            return False
        self._guards[guard.inner] = guard
        self.on_count(len(self._guards))
        return True

    def release(self, guard: _GuardedProtocol) -> None:
        self._guards.pop(guard.inner, None)
        self.on_count(len(self._guards))

    def guard_of(self, protocol: object) -> _GuardedProtocol | None:
        return self._guards.get(protocol) if isinstance(protocol, RequestHandler) else None

    def factory(self, server: Server) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            return _GuardedProtocol(self, server())  # type: ignore[return-value]

        return make


TRACKER = web.AppKey("ohttp_connection_tracker", ConnectionTracker)


def tracked(handler: Handler) -> Handler:
    """``handler`` marking its request as being handled for the app's ``TRACKER``, if any.

    A route wrapper rather than a middleware: aiohttp rebuilds the middleware chain with
    ``functools.partial`` and ``update_wrapper`` on every request, a measured 30 µs here.
    """

    async def marked(request: web.Request) -> web.StreamResponse:
        tracker = request.app.get(TRACKER)
        guard = None if tracker is None else tracker.guard_of(request.protocol)
        if guard is None:  # not served by `serving` (e.g. mounted elsewhere): no head deadline
            return await handler(request)
        guard.request_started()
        try:
            return await handler(request)
        finally:
            guard.request_ended()

    return marked


# --------------------------------------------------------------------------- listeners


async def _strip_server_header(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall("Server", None)


def omit_server_header(app: web.Application) -> None:
    """Send no ``Server`` header: aiohttp's names its own and Python's versions."""
    if _strip_server_header not in app.on_response_prepare:
        app.on_response_prepare.append(_strip_server_header)


def server_tls_context(cert: str | Path | None, key: str | Path | None) -> ssl.SSLContext | None:
    """The HTTPS context for ``cert`` and ``key`` (PEM), or None to serve plain HTTP."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class Listening:
    port: int
    metrics_port: int | None


def _runner(app: web.Application) -> web.AppRunner:
    # access_log=None: aiohttp's default access log records client addresses and headers.
    return web.AppRunner(app, access_log=None, handle_signals=False)


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    address: tuple[str, int],
    tracker: ConnectionTracker,
    *,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    metrics: tuple[web.Application, tuple[str, int]] | None = None,
) -> AsyncIterator[Listening]:
    """Serve ``app`` behind ``tracker`` (and a metrics app, unguarded) until the block ends.

    Port 0 picks a free port; the ports bound are yielded.
    """
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler)
    runner = _runner(app)
    await runner.setup()
    metrics_runner: web.AppRunner | None = None
    server: asyncio.AbstractServer | None = None
    try:
        assert runner.server is not None
        server = await loop.create_server(
            tracker.factory(runner.server), address[0], address[1], ssl=tls,
            reuse_port=reuse_port or None,
            ssl_handshake_timeout=tracker.header_timeout if tls else None,
        )  # fmt: skip
        metrics_port = None
        if metrics is not None:
            metrics_runner = _runner(metrics[0])
            await metrics_runner.setup()
            host, port = metrics[1]
            await web.TCPSite(metrics_runner, host, port, reuse_port=reuse_port or None).start()
            metrics_port = metrics_runner.addresses[0][1]
        yield Listening(server.sockets[0].getsockname()[1], metrics_port)
    finally:
        if server is not None:
            server.close()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


async def wait_for_stop() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


# --------------------------------------------------------------------------- processes


def run_worker(main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run one worker's coroutine on uvloop; the exit code (1 if it could not listen)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # the event loop is chosen here, when serving starts, never on import

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(main())
        except OSError as exc:  # e.g. the port is taken: operator data only
            log.error("listen_failed", extra={"error": type(exc).__name__})
            return 1
    return 0


def run_workers(count: int, worker: Callable[[int], int], *, forward_sighup: bool) -> int:
    """Run ``worker(index)`` in this process, or in ``count`` forked children; the exit code.

    Children are supervised by PID: SIGTERM/SIGINT stop them all, SIGHUP is passed on (when
    ``forward_sighup``; else ignored), and one ending on its own stops the rest (exit 1).
    """
    if count == 1:
        return worker(0)
    children: set[int] = set()
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # child: serve, then leave without running the parent's cleanup
            code = 1
            try:
                code = worker(index)
            finally:
                os._exit(code)
        children.add(pid)
    log.info("workers_started", extra={"workers": count})
    return _supervise(children, forward_sighup)


def _supervise(children: set[int], forward_sighup: bool) -> int:
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for pid in children:
            os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    signal.signal(signal.SIGHUP, forward if forward_sighup else signal.SIG_IGN)
    code = 0
    while children:
        pid, status = os.waitpid(-1, 0)
        if pid not in children:
            continue
        children.discard(pid)
        if not stopping:  # a worker ended on its own: stop the rest and report failure
            code = 1
            stopping = True
            for other in children:
                os.kill(other, signal.SIGTERM)
        elif os.waitstatus_to_exitcode(status) != 0:
            code = 1
    return code
