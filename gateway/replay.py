"""Date window and replay cache (RFC 9458 §6.5, §6.5.1, §6.5.2).

The gateway accepts an inner ``Date`` within ``window`` seconds either side of its clock. The
window is public, not a secret (RFC 9458 §6.5.1 MUST NOT treat it as secret). Inside the window
it remembers a hash of each request's HPKE ``enc`` (unique per request; the pipeline takes
it from ``ResponseSealer.enc``) until the request's Date
leaves the window, so a copy of the same encapsulated request is refused. Only requests that
carry a Date can be remembered for a bounded time; requests without one are accepted unless
``require_date`` is set, and are then not protected against replay.

The cache lives in one process: with several workers, a copy sent to another worker is not
seen. Operators who need strict replay protection run one worker or make backends idempotent.
"""

from __future__ import annotations

import hashlib
import heapq
import time

from gateway.errors import DateOutOfWindow, Replay, ReplayCacheFull
from ohttp.httpdate import parse_http_date

__all__ = ["ReplayGuard", "parse_http_date"]


class ReplayGuard:
    """Checks an inner Date against the window and refuses copies of a request inside it."""

    def __init__(self, window: float, *, require_date: bool, max_entries: int) -> None:
        self.window = window
        self.require_date = require_date
        self.max_entries = max_entries
        self._seen: dict[bytes, float] = {}  # digest of enc -> time after which it may go
        self._expiries: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, date: bytes | None, enc: bytes, now: float | None = None) -> None:
        """Raise DateOutOfWindow, Replay or ReplayCacheFull; remember the request otherwise."""
        if date is None:
            if self.require_date:
                raise DateOutOfWindow()
            return
        sent = parse_http_date(date)  # None for any value that is no representable date
        now = time.time() if now is None else now
        if sent is None or abs(now - sent) > self.window:
            raise DateOutOfWindow()
        self._remember(hashlib.sha256(enc).digest()[:16], sent + self.window, now)

    def _remember(self, digest: bytes, expiry: float, now: float) -> None:
        self._evict_expired(now)
        if digest in self._seen:
            raise Replay()
        if len(self._seen) >= self.max_entries:
            # Refusing keeps replay protection whole under a flood; evicting would let
            # replays of the evicted requests through.
            raise ReplayCacheFull()
        self._seen[digest] = expiry
        heapq.heappush(self._expiries, (expiry, digest))

    def _evict_expired(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] < now:
            _, digest = heapq.heappop(expiries)
            del self._seen[digest]
