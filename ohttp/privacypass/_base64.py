"""Strict base64url (RFC 4648 §5) for Privacy Pass header values and token keys."""

from __future__ import annotations

import base64
import re

__all__ = ["b64url_decode", "b64url_encode"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """base64url WITH padding: what RFC 9577 §2.1 shows and Safari expects."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str, error: Exception) -> bytes:
    """Padded or unpadded base64url, canonical only; raises ``error`` on anything else.

    Rejected: characters outside the URL-safe alphabet, wrong padding, non-zero trailing
    bits (so that one value has exactly one encoding).
    """
    if not _B64URL.fullmatch(text):
        raise error
    body = text.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    if len(body) % 4 == 1 or text not in (body, padded):
        raise error
    data = base64.urlsafe_b64decode(padded)
    if b64url_encode(data) != padded:
        raise error
    return data
