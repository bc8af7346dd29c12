"""Strict text helpers shared by the note, checkpoint and key statement parsers."""

from __future__ import annotations

import base64
import binascii
import re

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes | None:
    """Standard padded base64 (RFC 4648 §4) in its one canonical spelling, else ``None``."""
    if _BASE64.fullmatch(text) is None:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    # Non-zero padding bits decode too; only the canonical encoding round-trips.
    return data if b64encode(data) == text else None


def is_decimal(text: str) -> bool:
    """ASCII digits with no leading zero (``0`` itself allowed)."""
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0"))
