"""Forwarding inner requests over HTTP: to an origin, or (``aiohttp_app``) to a local app.

``HttpOriginBackend`` sends ``Host`` from the origin URL (matching the TLS server name); with
``forward_authority=True`` it sends the inner authority instead (virtual hosting). The
connection always goes to the configured origin, never to the inner authority. Inner request
trailers are not forwarded (aiohttp cannot send them), and no backend returns trailers.
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp
from yarl import URL

from gateway.backends.base import STREAM_CHUNK, StreamedResponse, collect, strip_connection_fields
from gateway.config import parse_origin
from gateway.errors import BackendError, BackendTimeout
from ohttp import bhttp

__all__ = ["DEFAULT_SETTINGS", "HttpForwarder", "HttpOriginBackend", "OriginSettings", "PoolUse"]


@dataclass(frozen=True, slots=True)
class OriginSettings:
    """Timeouts and pool limits of the client that forwards inner requests."""

    connect_timeout: float = 5.0  # connection from the pool or a new one, seconds
    read_timeout: float = 30.0  # between reads from the origin, seconds
    max_connections: int = 100
    keepalive_timeout: float = 15.0
    max_response_bytes: int = 16 * 1024 * 1024  # bhttp.Limits.max_content_bytes default


DEFAULT_SETTINGS = OriginSettings()


def _checked_path(path: bytes) -> str:
    # The path is appended to a fixed base URL: only an origin-form target starting with "/"
    # keeps the inner request from re-pointing the URL ("@evil/" after the host is userinfo).
    # Visible ASCII only, no fragment (RFC 9112 §3.2.1 origin-form).
    if not path.startswith(b"/") or any(b < 0x21 or b > 0x7E or b == 0x23 for b in path):
        raise BackendError("backend cannot serve this request target")
    return path.decode("ascii")


class PoolUse(NamedTuple):
    """A backend connection pool's state: connections handed out, and the most it allows."""

    in_use: int
    limit: int


class HttpForwarder:
    """Sends inner requests over one pooled aiohttp ClientSession to a fixed base URL."""

    def __init__(
        self,
        base_url: str,
        settings: OriginSettings,
        connector_factory: Callable[[], aiohttp.BaseConnector],
    ) -> None:
        self._base = base_url.rstrip("/")
        self._settings = settings
        self._connector_factory = connector_factory
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        settings = self._settings
        self._session = aiohttp.ClientSession(
            connector=self._connector_factory(),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            # Nothing may link requests: no cookies kept between them, no environment proxy.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise BackendError("backend not started")
        return self._session

    def pool_use(self) -> PoolUse:
        if self._session is None:
            return PoolUse(0, self._settings.max_connections)
        connector = self._session.connector
        if connector is None:
            return PoolUse(0, self._settings.max_connections)
        # aiohttp keeps the connections handed out in ``_acquired`` and offers no public
        # count; read at scrape time only, so nothing on the request path pays for it.
        acquired = getattr(connector, "_acquired", ())
        return PoolUse(len(acquired), connector.limit)

    async def handle(self, request: bhttp.Request, host: bytes) -> bhttp.Response:
        streamed = await self.stream(request, host)
        content = await collect(streamed, self._settings.max_response_bytes)
        return bhttp.Response(status=streamed.status, headers=streamed.headers, content=content)

    async def stream(self, request: bhttp.Request, host: bytes) -> StreamedResponse:
        url = URL(self._base + _checked_path(request.path), encoded=True)
        if not request.method.isupper():
            # RFC 9110 §9.1: methods are case-sensitive, and aiohttp upper-cases them; refuse
            # rather than send another method than the client's.
            raise BackendError
        try:
            headers = _client_headers(request.headers, host)
            response = await self.session.request(
                request.method.decode("ascii"),
                url,
                headers=headers,
                data=request.content if request.content else None,
                allow_redirects=False,
            )
        except TimeoutError:
            raise BackendTimeout from None
        except (aiohttp.ClientError, OSError, ValueError, UnicodeError):
            raise BackendError from None
        return StreamedResponse(
            status=response.status,
            headers=strip_connection_fields(response.raw_headers),
            body=_response_chunks(response),
        )


def _client_headers(fields: bhttp.Fields, host: bytes) -> list[tuple[str, str]]:
    # aiohttp writes header lines UTF-8 encoded, so decoding as UTF-8 sends the exact bytes;
    # a value that is not UTF-8 cannot be sent exactly and fails (UnicodeDecodeError).
    sent = strip_connection_fields(fields, also=(b"host", b"content-length"))
    headers = [(name.decode("ascii"), value.decode("utf-8")) for name, value in sent]
    headers.append(("Host", host.decode("ascii")))
    return headers


async def _response_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(STREAM_CHUNK):
            yield chunk
    except TimeoutError:
        raise BackendTimeout from None
    except (aiohttp.ClientError, OSError):
        raise BackendError from None
    finally:
        response.release()


class HttpOriginBackend:
    """Forwards inner requests to one HTTP(S) origin through a pooled client.

    No redirect is followed, nothing is decompressed, no cookie is kept, and
    connection-specific fields are removed both ways (RFC 9110 §7.6.1). The inner path is
    appended to the origin URL's path. ``Host`` is the origin's authority, or the inner
    authority when ``forward_authority`` is set.
    """

    def __init__(
        self,
        origin_url: str,
        settings: OriginSettings = DEFAULT_SETTINGS,
        *,
        ssl: ssl_module.SSLContext | bool = True,
        forward_authority: bool = False,
    ) -> None:
        url = parse_origin(origin_url)
        self.authority: str | None = url.raw_authority
        self._origin_host = url.raw_authority.encode("ascii")
        self._forward_authority = forward_authority
        self._settings = settings

        def connector() -> aiohttp.BaseConnector:
            return aiohttp.TCPConnector(
                limit=settings.max_connections,
                keepalive_timeout=settings.keepalive_timeout,
                ssl=ssl,
            )

        self._forwarder = HttpForwarder(str(url).rstrip("/"), settings, connector)

    @property
    def settings(self) -> OriginSettings:
        return self._settings

    async def start(self) -> None:
        await self._forwarder.start()

    async def close(self) -> None:
        await self._forwarder.close()

    def _host(self, request: bhttp.Request) -> bytes:
        if self._forward_authority and request.authority:
            return request.authority
        return self._origin_host

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        return await self._forwarder.handle(request, self._host(request))

    async def stream(self, request: bhttp.Request) -> StreamedResponse:
        return await self._forwarder.stream(request, self._host(request))

    def pool_use(self) -> PoolUse:
        """Connections of the pool in use now, and its limit (0: unlimited)."""
        return self._forwarder.pool_use()

