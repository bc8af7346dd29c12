"""Telling the relay apart: bearer tokens (``--relay-token-file``); mutual TLS is the listener's
(``--client-ca``, ``ohttp.aio.serving.server_tls_context``).

A request without an accepted token gets a plain 401 before its body is read, so nothing is
decrypted for a stranger (RFC 9458 §5.2: before decapsulation, a plain status).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aiohttp import web

__all__ = ["RELAY_TOKENS", "RelayTokens", "load_tokens"]


class RelayTokens:
    """The accepted tokens; :meth:`accepts` compares in constant time (no early exit on the
    first differing byte, nor on the first token that matches)."""

    def __init__(self, tokens: tuple[bytes, ...]) -> None:
        if not tokens:
            raise ValueError("the relay token file holds no token")
        self._tokens = tokens

    def accepts(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        # RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: "Bearer" token.
        presented = token.strip().encode("latin-1", "replace")
        matched = False
        for accepted in self._tokens:
            matched |= hmac.compare_digest(presented, accepted)
        return matched and scheme.lower() == "bearer"


def load_tokens(path: Path) -> RelayTokens:
    """One token per line; blank lines and lines starting with ``#`` are skipped."""
    lines = path.read_text(encoding="ascii").splitlines()
    tokens = tuple(
        line.strip().encode("ascii") for line in lines if line.strip() and not line.startswith("#")
    )
    return RelayTokens(tokens)


RELAY_TOKENS = web.AppKey("ohttp_relay_tokens", RelayTokens)
