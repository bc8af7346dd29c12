"""The gateway's key configurations, fetched by the relay and served identically to all."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

from ohttp.errors import PROBLEM_OHTTP_KEY, KeyConfigError
from ohttp.keys import KEYS_MEDIA_TYPE, decode_key_configs
from relay.config import RelayConfig
from relay.errors import KeysTimeout, KeysUnavailable, UpstreamError, UpstreamTimeout
from relay.events import upstream_reason
from relay.upstream import UpstreamPool

KEYS_PATH = "ohttp-keys"
MAX_KEYS_BYTES = 64 * 1024
_ACCEPT_KEYS = b"accept: application/ohttp-keys\r\n"
# A forced refresh (key problem, reload) at most this often: a client cannot make the relay
# hammer the gateway by sending requests under an unknown key id.
FORCED_REFRESH_INTERVAL = 5.0
_PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("relay")
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
        self._forced = float("-inf")
        self._accept = _ACCEPT_KEYS
        if config.gateway_token:  # the same credential as on POST (docs/operations.md)
            self._accept += f"authorization: Bearer {config.gateway_token}\r\n".encode("latin-1")

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
        ttl = await self._fetch_logged()
        return 5.0 if ttl is None else max(1.0, ttl * 0.8)

    async def _fetch_logged(self) -> float | None:
        async with self._lock:
            try:
                return await self._fetch()
            except UpstreamError as exc:
                log.warning("keys_fetch_failed", extra={"error": upstream_reason(exc)})
                return None

    async def probe(self) -> bool:
        """Readiness: fetch the keys now; whether the gateway served a valid key list."""
        async with self._lock:
            try:
                await self._fetch()
            except UpstreamError:
                return False
        return True

    async def refresh_soon(self) -> None:
        """Refetch now, unless a forced refresh ran in the last ``FORCED_REFRESH_INTERVAL``
        seconds; then wait only for that one to finish. For a reload and a key problem."""
        now = time.monotonic()
        if now - self._forced >= FORCED_REFRESH_INTERVAL:
            self._forced = now
            if await self._fetch_logged() is not None:
                log.info("keys_refreshed")
            return
        async with self._lock:  # a refresh in progress: its keys are the ones to serve
            pass

    async def after_answer(self, status: int, content_type: str, body: bytes) -> None:
        """Refresh before passing on the gateway's ``#ohttp-key`` problem (RFC 9458 §5.3),
        so the client's retry with fresh keys finds them here."""
        if status == 422 and _is_key_problem(content_type, body):
            await self.refresh_soon()

    async def refresh_forever(self) -> None:
        """Keep the keys fresh ahead of their expiry, until cancelled."""
        while True:
            await asyncio.sleep(await self.refresh())

    async def _fetch(self) -> float:
        response = await self._pool.request("GET", self._accept, b"", chunked=False)
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


def _is_key_problem(content_type: str, body: bytes) -> bool:
    if content_type.split(";", 1)[0].strip().lower() != _PROBLEM_JSON:
        return False
    try:
        problem = json.loads(body)
    except ValueError:
        return False
    return isinstance(problem, dict) and problem.get("type") == PROBLEM_OHTTP_KEY
