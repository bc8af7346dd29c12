"""The public key document (RFC 9540 §5), the same bytes for every client."""

from __future__ import annotations

import time

from ohttp.keys import KEYS_MEDIA_TYPE as OHTTP_KEYS
from ohttp.keys import KeyRing

__all__ = ["KeyDocument"]


class KeyDocument:
    """A key ring and its public ``application/ohttp-keys`` document.

    The document is recomputed at most once per second, and only from the key schedule, so
    every client gets the same bytes (checklist K1).
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._second = -1
        self._headers: dict[str, str] = {}
        self._body = b""

    def current(self) -> tuple[bytes, dict[str, str]]:
        now = int(time.time())
        if now != self._second:
            self._body = self.ring.encode_public(now)
            # RFC 9540 §5 / checklist K4: cacheable, never no-store or private.
            max_age = min(max(0, self.ring.max_age(now)), self._lifetime(now))
            self._headers = {"Content-Type": OHTTP_KEYS, "Cache-Control": f"max-age={max_age}"}
            self._second = now
        return self._body, self._headers

    def _lifetime(self, now: int) -> int:
        """Seconds the listed keys all still decrypt: the document's max-age never outlives
        them (a cache would hand out a key the gateway refuses, RFC 9458 §5.3's 422)."""
        ends = [key.not_after for key in self.ring.current(now) if key.not_after is not None]
        return max(0, min(ends) - now) if ends else 1 << 31

    def expires_in(self, now: float) -> float | None:
        """Seconds until the last listed key stops decrypting (None: no key expires)."""
        ends = [key.not_after for key in self.ring.current(now)]
        if not ends or None in ends:
            return None
        return max(0.0, max(e for e in ends if e is not None) - now)
