"""The key transparency log, mirrored by the relay like the keys (docs/transparency.md).

With ``--log-mirror URL``, ``GET /log/checkpoint`` and ``GET /log/tile/...`` serve the log at
URL through the relay, so the log host sees the relay's address, never a client's. Everyone
gets the same bytes: the checkpoint and partial tiles are fetched at most once per
``_SHORT_TTL`` seconds for all clients, full tiles (immutable, c2sp.org/tlog-tiles) once. The
relay checks nothing of the content (clients verify the log themselves); it only limits sizes
and serves canonical tile paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
from aiohttp import web

from ohttp.tlog import Tile, TransparencyError, parse_tile_path
from relay.errors import NotFound, UpstreamError

__all__ = ["LOG_MIRROR", "LogMirror", "log_mirror_context"]

_SHORT_TTL: Final = 10.0
_MAX_BYTES: Final = 256 * (2 + 0xFFFF)  # a full entry bundle of the largest entries
_MAX_FILES: Final = 4096  # files kept; beyond, fetched each time
_IMMUTABLE: Final = "public, max-age=31536000, immutable"


class LogMirror:
    """Fetches log files from ``url`` and caches them for every client alike."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, tuple[bytes, float]] = {}  # path -> (body, expires)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # No cookie jar, no client headers: nothing links the relay's fetches to a client.
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str) -> tuple[bytes, str, str]:
        """(body, content type, Cache-Control) of a log file; NotFound or UpstreamError."""
        full = path != "checkpoint" and not _tile(path).partial
        kind = "text/plain; charset=utf-8" if path == "checkpoint" else "application/octet-stream"
        async with self._lock:  # one fetch at a time: the same answer for concurrent clients
            now = time.monotonic()
            body, expires = self._cache.get(path, (b"", 0.0))
            if expires <= now:
                body = await self._fetch(path)
                expires = float("inf") if full else time.monotonic() + _SHORT_TTL
                self._store(path, body, expires)
        if full:
            return body, kind, _IMMUTABLE
        return body, kind, f"public, max-age={max(0, int(expires - time.monotonic()))}"

    def _store(self, path: str, body: bytes, expires: float) -> None:
        if len(self._cache) >= _MAX_FILES:
            now = time.monotonic()
            self._cache = {p: entry for p, entry in self._cache.items() if entry[1] > now}
        if len(self._cache) < _MAX_FILES:
            self._cache[path] = (body, expires)

    async def _fetch(self, path: str) -> bytes:
        assert self._session is not None
        try:
            async with self._session.get(
                f"{self._url}/{path}", allow_redirects=False, timeout=self._timeout,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            ) as response:  # fmt: skip
                if response.status == 404:
                    raise NotFound("log file not found")
                if response.status != 200:
                    raise UpstreamError("log fetch failed")
                body = await _read_at_most(response.content, _MAX_BYTES + 1)
        except (aiohttp.ClientError, OSError, TimeoutError):
            raise UpstreamError("log fetch failed") from None
        if len(body) > _MAX_BYTES:
            raise UpstreamError("log file too large")
        return body


async def _read_at_most(content: aiohttp.StreamReader, size: int) -> bytes:
    # read(n) returns only what has arrived: a partial tile would be cached as immutable.
    try:
        return await content.readexactly(size)
    except asyncio.IncompleteReadError as short:  # the usual case: the body ended first
        return short.partial


def _tile(path: str) -> Tile:
    try:
        return parse_tile_path(path)  # canonical paths only: nothing else is ever fetched
    except TransparencyError:
        raise NotFound("not a tile path") from None


LOG_MIRROR = web.AppKey("ohttp_relay_log_mirror", LogMirror)


async def log_mirror_context(app: web.Application) -> AsyncIterator[None]:
    """The mirror's HTTP session lives as long as the app."""
    mirror = app[LOG_MIRROR]
    await mirror.start()
    try:
        yield
    finally:
        await mirror.close()
