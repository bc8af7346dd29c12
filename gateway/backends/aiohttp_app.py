"""An aiohttp ``Application`` as the backend, served in-process over a private unix socket."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile

import aiohttp
from aiohttp import web

from gateway.backends.base import StreamedResponse
from gateway.backends.origin import DEFAULT_SETTINGS, HttpForwarder, OriginSettings
from gateway.errors import BackendError
from ohttp import bhttp
from ohttp.aio.guard import fixed_error_pages

__all__ = ["AiohttpAppBackend"]


class _FixedEventFilter(logging.Filter):
    """Reduces a record to a fixed event and the error type: the messages and tracebacks of
    an in-process app's failures can carry request content."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        record.msg, record.args = "backend_app_error", ()
        record.error = type(error).__name__ if error is not None else None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_app_server_log = logging.getLogger("gateway.backend_app")
_app_server_log.addFilter(_FixedEventFilter())


class AiohttpAppBackend:
    """Serves an aiohttp ``Application`` in-process over a private unix socket.

    ``start()`` runs the app on a socket in a fresh 0700 temporary directory (only this user
    can connect; no TCP port another local user could reach around the gateway's policy) and
    opens a pooled client to it. The app sees ``Host`` = the inner authority; its
    ``request.scheme`` is ``http`` and ``request.remote`` is empty. No access log is written;
    the app server's error log carries a fixed event and the error type only.
    ``authority``, if given, is the one inner requests name to reach the app.
    """

    def __init__(
        self,
        app: web.Application,
        settings: OriginSettings = DEFAULT_SETTINGS,
        *,
        authority: str | None = None,
    ) -> None:
        self.authority = authority
        self._app = app
        self._settings = settings
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._directory: str | None = None
        self._forwarder: HttpForwarder | None = None

    async def start(self) -> None:
        if self._runner is not None:
            return
        directory = tempfile.mkdtemp(prefix="ohttp-app-")
        socket_path = os.path.join(directory, "app.sock")
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, logger=_app_server_log
        )
        await runner.setup()
        assert runner.server is not None  # set by setup()
        # Not web.UnixSite: aiohttp's own pages for a request that fails to parse quote its
        # bytes, and would reach the client encapsulated (issue 13, finding 8).
        self._listener = await asyncio.get_running_loop().create_unix_server(
            fixed_error_pages(runner.server), socket_path
        )
        self._runner, self._directory = runner, directory
        settings = self._settings

        def connector() -> aiohttp.BaseConnector:
            return aiohttp.UnixConnector(
                socket_path,
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_timeout,
            )

        # The URL host only names the pool; Host is set from the inner authority.
        self._forwarder = HttpForwarder("http://app.internal", settings, connector)
        await self._forwarder.start()

    async def close(self) -> None:
        forwarder, self._forwarder = self._forwarder, None
        runner, self._runner = self._runner, None
        directory, self._directory = self._directory, None
        if forwarder is not None:
            await forwarder.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if runner is not None:
            await runner.cleanup()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def _started(self) -> HttpForwarder:
        if self._forwarder is None:
            raise BackendError("backend not started")
        return self._forwarder

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        return await self._started().handle(request, request.authority or b"app.internal")

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        return await self._started().stream(request, request.authority or b"app.internal")

