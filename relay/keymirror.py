"""The gateway's key configurations, fetched by the relay and served identically to all."""

from __future__ import annotations

import asyncio
import re
import time

from ohttp.errors import KeyConfigError
from ohttp.keys import KEYS_MEDIA_TYPE, decode_key_configs
from relay.config import RelayConfig
from relay.errors import KeysTimeout, KeysUnavailable, UpstreamError, UpstreamTimeout
from relay.upstream import UpstreamPool

KEYS_PATH = "ohttp-keys"
MAX_KEYS_BYTES = 64 * 1024
_ACCEPT_KEYS = b"accept: application/ohttp-keys\r\n"
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class KeyMirror:
    """The gateway's application/ohttp-keys, fetched by the relay and served identically to all.

    Clients get keys without revealing themselves to the gateway, and every client in a cache
    window sees the same bytes (key consistency, RFC 9458 §7, RFC 9540 §7).
    """

    def __init__(self, pool: UpstreamPool, config: RelayConfig) -> None:
        self._pool = pool
        self._config = config
        self._lock = asyncio.Lock()
        self._body: bytes | None = None
        self._expires = 0.0

    def cached(self, now: float) -> tuple[bytes, int] | None:
        """The keys and their remaining whole seconds, if still fresh at ``now``."""
        if self._body is None or now >= self._expires:
            return None
        return self._body, int(self._expires - now)

    async def get(self) -> tuple[bytes, int]:
        """The cached keys and their remaining lifetime; refetches (once, shared) when stale.

        Raises KeysTimeout or KeysUnavailable when there are none to serve.
        """
        found = self.cached(time.monotonic())
        if found is not None:
            return found
        async with self._lock:
            found = self.cached(time.monotonic())
            if found is not None:
                return found
            try:
                await self._fetch()
            except UpstreamTimeout:
                raise KeysTimeout("keys fetch timed out") from None
            except UpstreamError:
                raise KeysUnavailable("keys fetch failed") from None
        found = self.cached(time.monotonic())
        if found is None:
            raise KeysUnavailable("keys unavailable")
        return found

    async def refresh(self) -> float:
        """Fetch now; returns the seconds until the next scheduled refresh."""
        async with self._lock:
            try:
                ttl = await self._fetch()
            except UpstreamError:
                return 5.0
        return max(1.0, ttl * 0.8)

    async def refresh_forever(self) -> None:
        """Keep the keys fresh ahead of their expiry, until cancelled."""
        while True:
            await asyncio.sleep(await self.refresh())

    async def _fetch(self) -> float:
        response = await self._pool.request("GET", _ACCEPT_KEYS, b"", chunked=False)
        try:
            if response.status != 200 or response.head.media_type != KEYS_MEDIA_TYPE:
                raise UpstreamError("gateway did not serve keys")
            body = await response.read(MAX_KEYS_BYTES)
        finally:
            response.abort()
        _validate_keys(body)
        ttl = self._ttl(response.head.get("cache-control"))
        self._body, self._expires = body, time.monotonic() + ttl
        return ttl

    def _ttl(self, cache_control: str | None) -> float:
        match = _MAX_AGE.search(cache_control or "")
        ttl = float(match.group(1)) if match else self._config.key_cache_default_ttl
        return min(max(ttl, self._config.key_cache_min_ttl), self._config.key_cache_max_ttl)


def _validate_keys(body: bytes) -> None:
    """Reject a key list that does not decode (RFC 9458 §3.2): it would be rejected whole."""
    try:
        configs = decode_key_configs(body)
    except KeyConfigError:
        raise UpstreamError("gateway served an invalid key list") from None
    if not configs:
        raise UpstreamError("gateway served an empty key list")
