"""The serving shell shared by ``ohttp gateway`` and ``ohttp relay``.

What a process serving untrusted clients needs around an aiohttp application:

- the connection guard of :mod:`ohttp.aio.guard` (connection cap, request-head deadline), and
  :func:`tracked` marking a request as being handled so the head deadline never cuts it off;
- privacy-safe logs (:mod:`ohttp.aio.logs`) and the event loop's exception handler;
- no ``Server`` header (aiohttp's announces its and Python's versions);
- the TLS server context and the uvloop runner; ``workers > 1`` is :mod:`ohttp.aio.supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ohttp.aio.engine import EngineLimits, EngineServer, Lane
from ohttp.aio.engine import Handler as EngineHandler
from ohttp.aio.guard import ConnectionTracker, client_gone
from ohttp.aio.logs import loop_exception_handler

__all__ = [
    "TRACKER",
    "ListenError",
    "Listening",
    "omit_server_header",
    "ports_free",
    "run_worker",
    "server_tls_context",
    "serving",
    "serving_engine",
    "tracked",
    "wait_for_stop",
]

log = logging.getLogger("ohttp.serving")

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
        except ConnectionError as exc:  # the client left: a normal event, logged as one
            return client_gone(request, exc)
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


def server_tls_context(
    cert: str | Path | None, key: str | Path | None, client_ca: str | Path | None = None
) -> ssl.SSLContext | None:
    """The HTTPS context for ``cert`` and ``key`` (PEM), or None to serve plain HTTP; with
    ``client_ca``, a client certificate issued by that CA is required (mutual TLS)."""
    if cert is None or key is None:
        return None
    for path in (cert, key, *(() if client_ca is None else (client_ca,))):
        Path(path).open("rb").close()  # OpenSSL's own error would not say which file is missing
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


_MIN_BACKLOG = 128  # what socket.listen() picks without a number


@dataclass(frozen=True)
class Listening:
    port: int
    metrics_port: int | None


def _runner(app: web.Application, shutdown_timeout: float) -> web.AppRunner:
    # access_log=None: aiohttp's default access log records client addresses and headers.
    return web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )


class ListenError(OSError):
    """A listener could not bind: names the address and the reason (errno name)."""

    def __init__(self, address: tuple[str, int], cause: OSError) -> None:
        self.host, self.port = address
        self.reason = _errno_name(cause)
        super().__init__(cause.errno, f"cannot listen on {self.host}:{self.port}: {self.reason}")


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


@contextlib.contextmanager
def _naming(address: tuple[str, int]) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ListenError(address, exc) from None


def ports_free(addresses: list[tuple[str, int]]) -> bool:
    """Whether each address can be bound by a socket without SO_REUSEPORT; logs
    ``listen_failed`` for the first that cannot.

    ``workers > 1`` share their port through SO_REUSEPORT, which would also let them join a
    listener some other process opened with it, and split its traffic. The supervisor checks
    before forking: a port in use by anyone refuses this plain bind.
    """
    for host, port in addresses:
        if port == 0:
            continue
        try:
            with _naming((host, port)):
                _bind_plain(host, port)
        except ListenError as exc:
            log.error("listen_failed", extra={"host": exc.host, "port": exc.port,
                                              "error": exc.reason})
            return False
    return True


def _bind_plain(host: str, port: int) -> None:
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as sock:
            # as asyncio's own listeners: a port in TIME_WAIT is free, one in use is not
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)


def _backlog(max_connections: int) -> int:
    """A listen queue as long as the connection cap (the kernel caps it at somaxconn).

    asyncio's default of 100 overflowed when 128 or more clients connected at once: the kernel
    dropped the handshakes it could not queue, they were resent after 1 s, then 2 s, and p99
    read 1-2.5 s (issue 18, benchmarks/README.md).
    """
    return max(_MIN_BACKLOG, max_connections)


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    address: tuple[str, int],
    tracker: ConnectionTracker,
    *,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    metrics: tuple[web.Application, tuple[str, int]] | None = None,
    shutdown_timeout: float = 60.0,
) -> AsyncIterator[Listening]:
    """Serve ``app`` behind ``tracker`` (and a metrics app behind the same limits) until the
    block ends.

    Neither listener sends a ``Server`` header. When the block ends, requests in flight get
    ``shutdown_timeout`` seconds to finish before their connections are closed.

    Port 0 picks a free port; the ports bound are yielded.
    """
    asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
    omit_server_header(app)
    runner = _runner(app, shutdown_timeout)
    await runner.setup()
    try:
        assert runner.server is not None
        async with _listening(
            tracker.factory(runner.server), address, (tracker.max_connections,
            tracker.header_timeout), tls=tls, reuse_port=reuse_port, metrics=metrics,
            shutdown_timeout=shutdown_timeout,
        ) as listening:  # fmt: skip
            yield listening
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serving_engine(
    app: web.Application,
    handler: Callable[[web.Application], EngineHandler],
    address: tuple[str, int],
    limits: EngineLimits,
    *,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    metrics: tuple[web.Application, tuple[str, int]] | None = None,
    shutdown_timeout: float = 60.0,
    on_count: Callable[[int], None] = lambda _: None,
    lane: Callable[[web.Application], Lane | None] | None = None,
) -> AsyncIterator[Listening]:
    """As :func:`serving`, with ``handler(app)`` on the serving engine (``ohttp.aio.engine``)
    answering the requests: ``app`` gives the state, the lifecycle (``cleanup_ctx``, started
    before the listener opens) and its routes' behaviour, not its aiohttp request handling.
    ``lane(app)``, if given, is offered each small whole request first.
    """
    asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
    runner = _runner(app, shutdown_timeout)
    await runner.setup()
    engine = EngineServer(handler(app), limits, on_count,
                          lane=None if lane is None else lane(app))
    try:
        async with _listening(
            engine.factory, address, (limits.max_connections, limits.header_timeout), tls=tls,
            reuse_port=reuse_port, metrics=metrics, shutdown_timeout=shutdown_timeout,
        ) as listening:  # fmt: skip
            yield listening
    finally:
        await engine.shutdown(shutdown_timeout)
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _listening(
    factory: Callable[[], asyncio.Protocol],
    address: tuple[str, int],
    cap: tuple[int, float],
    *,
    tls: ssl.SSLContext | None,
    reuse_port: bool,
    metrics: tuple[web.Application, tuple[str, int]] | None,
    shutdown_timeout: float,
) -> AsyncIterator[Listening]:
    """The main listener (``cap``: connection cap and head deadline) and the metrics one."""
    max_connections, header_timeout = cap
    server: asyncio.AbstractServer | None = None
    try:
        with _naming(address):
            server = await asyncio.get_running_loop().create_server(
                factory, address[0], address[1], ssl=tls,
                reuse_port=reuse_port or None, backlog=_backlog(max_connections),
                ssl_handshake_timeout=header_timeout if tls else None,
            )  # fmt: skip
        async with _metrics_listener(metrics, cap, reuse_port, shutdown_timeout) as port:
            yield Listening(server.sockets[0].getsockname()[1], port)
    finally:
        if server is not None:
            server.close()


@contextlib.asynccontextmanager
async def _metrics_listener(
    metrics: tuple[web.Application, tuple[str, int]] | None,
    cap: tuple[int, float],
    reuse_port: bool,
    shutdown_timeout: float,
) -> AsyncIterator[int | None]:
    """The metrics app's listener (its port), with the main listener's connection cap and
    head deadline (issue 13, #10); None without one."""
    if metrics is None:
        yield None
        return
    app, (host, port) = metrics
    omit_server_header(app)
    runner = _runner(app, shutdown_timeout)
    await runner.setup()
    server: asyncio.AbstractServer | None = None
    try:
        guard = ConnectionTracker(*cap)
        assert runner.server is not None
        with _naming((host, port)):
            server = await asyncio.get_running_loop().create_server(
                guard.factory(runner.server), host, port,
                reuse_port=reuse_port or None, backlog=_backlog(guard.max_connections),
            )  # fmt: skip
        yield server.sockets[0].getsockname()[1]
    finally:
        if server is not None:
            server.close()
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
        except ListenError as exc:  # our own address and an errno name: operator data only
            log.error(
                "listen_failed", extra={"host": exc.host, "port": exc.port, "error": exc.reason}
            )
            return 1
        except OSError as exc:  # e.g. a TLS file that is missing: its path is configuration
            log.error(
                "startup_failed",
                extra={"error": _errno_name(exc), "detail": str(exc.filename or "")},
            )
            return 1
    return 0
