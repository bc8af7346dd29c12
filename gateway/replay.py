"""Date window and replay check (RFC 9458 §6.5, §6.5.1, §6.5.2) on the shared state store.

The gateway accepts an inner ``Date`` within ``window`` seconds either side of its clock. The
window is public, not a secret (RFC 9458 §6.5.1 MUST NOT treat it as secret). Inside the window
it records a hash of each request's key id and HPKE ``enc`` (``enc`` is unique per request; the
pipeline takes it from ``ResponseSealer.enc``) until the request's Date leaves the window, so
a copy of the same encapsulated request is refused. Only requests that carry a Date can be
remembered for a bounded time; requests without one are accepted unless ``require_date`` is
set, and are then not protected against replay.

The records live in an :class:`ohttp.aio.store.Store`: this process's memory with one worker,
the supervisor's store shared by all workers with ``workers > 1``, or Redis shared by every
worker and replica (``state``). A copy sent to another worker or replica is refused as well.
When the store cannot answer, the request is refused with an encapsulated 503
(:class:`StateUnavailable`), never accepted unchecked (docs/state.md).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.errors import DateOutOfWindow, Replay, ReplayCacheFull, StateUnavailable
from ohttp.aio.store import Store, StoreHealth, StoreUnavailable, store_ready
from ohttp.httpdate import parse_http_date

__all__ = ["ReplayGuard", "parse_http_date"]

logger = logging.getLogger("gateway")

# Records outlive the window by this much: replicas' clocks differ by up to about a second
# when synchronised (NTP), and a replica whose clock is behind still accepts the Date.
CLOCK_SLACK = 1.0


class ReplayGuard:
    """Checks an inner Date against the window and refuses copies of a request inside it.

    ``on_unavailable(reason)`` is called on every store failure (the metric).
    """

    def __init__(
        self, window: float, *, require_date: bool, store: Store,
        on_unavailable: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.window = window
        self.require_date = require_date
        self.store = store
        self._on_unavailable = on_unavailable
        self._clock = clock
        self._health = StoreHealth(logger)

    def pending(self, date: bytes | None, key_id: int, enc: bytes) -> Awaitable[None] | None:
        """``check(date, key_id, enc)`` when it has anything to do; None for a request
        without a Date when none is required (nothing to check or remember)."""
        if date is None and not self.require_date:
            return None
        return self.check(date, key_id, enc)

    async def check(self, date: bytes | None, key_id: int, enc: bytes) -> None:
        """Raise DateOutOfWindow, Replay, ReplayCacheFull or StateUnavailable; record the
        request otherwise."""
        if date is None:
            if self.require_date:
                raise DateOutOfWindow()
            return
        sent = parse_http_date(date)  # None for any value that is no representable date
        now = self._clock()
        if sent is None or abs(now - sent) > self.window:
            raise DateOutOfWindow()
        digest = hashlib.sha256(key_id.to_bytes(1, "big") + enc).digest()[:16]
        ttl = sent + self.window - now + CLOCK_SLACK  # until the Date leaves the window
        try:
            added = await self.store.add(b"replay:" + digest, ttl)
        except StoreUnavailable as exc:
            self._failed(exc.reason)
            # A full store refuses rather than evicts: evicting would let replays through.
            raise (ReplayCacheFull() if exc.reason == "full" else StateUnavailable()) from None
        self._health.answered()
        if not added:
            raise Replay()

    async def ready(self) -> bool:
        """Whether the store answers: the gateway's readiness (``/readyz``)."""
        return await store_ready(self.store)

    async def close(self) -> None:
        await self.store.close()

    def _failed(self, reason: str) -> None:
        self._health.failed(reason)
        if self._on_unavailable is not None:
            self._on_unavailable(reason)
