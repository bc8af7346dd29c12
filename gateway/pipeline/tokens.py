"""The gateway's Privacy Pass check (RFC 9577 §2, RFC 9578 §6.4), after decapsulation.

Every inner request must carry ``Authorization: PrivateToken token=...`` for the gateway's own
challenge: this issuer, an empty redemption context (clients fetch tokens ahead of time) and
the gateway's name as origin info. The token must name a key of the issuer's directory, verify
under it, and not have been spent before (a record of its nonce in the shared store, with an
expiry). The header is removed before the backend sees the request, so the relay never sees a
token (it is encapsulated) and the backend never sees one either.

Every refusal is an encapsulated 401 carrying a fresh ``WWW-Authenticate: PrivateToken``
challenge; each reason is its own metric result (``gateway.errors``), never with an identity.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from gateway.config import GatewayConfig
from gateway.errors import (
    StateUnavailable,
    TokenChallengeMismatch,
    TokenForged,
    TokenKeysUnavailable,
    TokenMalformed,
    TokenMissing,
    TokenSpent,
    TokenUnknownKey,
)
from ohttp import bhttp
from ohttp.aio.store import Store, StoreUnavailable
from ohttp.aio.wallet import (
    IssuerDirectory,
    TokenFetchError,
    fetch_directory,
    gateway_challenge,
    issuer_name,
    parse_directory,
)
from ohttp.errors import OHTTPError
from ohttp.privacypass import (
    BlindRSAPublicKey,
    ChallengeMismatchError,
    InvalidTokenSignatureError,
    TokenFormatError,
    UnknownTokenKeyError,
    WrongTokenTypeError,
    parse_authorization,
    token_key_id,
    verify_token,
    www_authenticate,
)

__all__ = ["TokenGate", "check_token_source", "is_directory_url"]

logger = logging.getLogger("gateway")

_REFRESH_SECONDS = 300.0  # the issuer directory is fetched again this often (key rotation)
_RETRY_SECONDS = 5.0  # after a failed fetch, the earliest next attempt
_SPENT_PREFIX = b"token-spent:"


def is_directory_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class _Keys:
    """What one directory gives the check: keys by id, the challenge and its header value."""

    by_id: dict[bytes, BlindRSAPublicKey]
    digest: bytes
    www_authenticate: str


class TokenGate:
    """The token check of one gateway worker.

    ``source``: the issuer directory's URL (fetched when first needed, then every five
    minutes, keeping the last good one) or a file holding the directory JSON (``issuer``
    then names the issuer). ``store`` holds the spent-token records for ``spent_ttl`` seconds:
    longer than any key stays in the directory, since a token is valid as long as its key.
    """

    def __init__(
        self, source: str, origin: str, store: Store, *, issuer: str | None, spent_ttl: float
    ) -> None:
        self._source, self._origin, self._store, self._spent_ttl = source, origin, store, spent_ttl
        self._issuer = (issuer or issuer_name(source).decode("ascii")).encode("ascii")
        self._keys: _Keys | None = None
        self._loaded_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        if not is_directory_url(source):
            self._keys = self._from_directory(parse_directory(Path(source).read_bytes(), ""))

    async def check(self, request: bhttp.Request) -> bhttp.Request:
        """``request`` without its token if the token is good; a ``TokenRejected`` otherwise."""
        keys = await self._current()
        token = _token_bytes(request, keys.www_authenticate)
        try:
            verified = verify_token(token, keys.by_id, keys.digest)
        except (TokenFormatError, WrongTokenTypeError):
            raise TokenMalformed(keys.www_authenticate) from None
        except UnknownTokenKeyError:
            raise TokenUnknownKey(keys.www_authenticate) from None
        except ChallengeMismatchError:
            raise TokenChallengeMismatch(keys.www_authenticate) from None
        except InvalidTokenSignatureError:
            raise TokenForged(keys.www_authenticate) from None
        # RFC 9577 §2.2: a token is spent once; recorded only after it verified, so forged
        # tokens cannot fill the store. The key is a digest: no token bytes are stored.
        record = hashlib.sha256(verified.token_key_id + verified.nonce).digest()
        try:
            fresh = await self._store.add(_SPENT_PREFIX + record, self._spent_ttl)
        except StoreUnavailable:
            raise StateUnavailable() from None
        if not fresh:
            raise TokenSpent(keys.www_authenticate)
        headers = tuple(f for f in request.headers if not _is_private_token(f))
        return replace(request, headers=headers)

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()

    async def _current(self) -> _Keys:
        if not is_directory_url(self._source):
            assert self._keys is not None
            return self._keys
        now = time.monotonic()
        if self._keys is None:
            async with self._lock:  # one fetch for all the requests waiting on it
                if self._keys is None and now - self._attempted_at >= _RETRY_SECONDS:
                    await self._fetch()
            if self._keys is None:
                raise TokenKeysUnavailable()
        elif now - self._loaded_at >= _REFRESH_SECONDS and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.get_running_loop().create_task(self._fetch())
        return self._keys

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
                directory = await fetch_directory(session, self._source)
            keys = self._from_directory(directory)
        except (TokenFetchError, OHTTPError) as exc:
            logger.warning("token_keys_fetch_failed", extra={"error": type(exc).__name__})
            return
        if self._keys is None or keys.by_id != self._keys.by_id:
            logger.info("token_keys_loaded", extra={"advertised": len(keys.by_id)})
        self._keys, self._loaded_at = keys, time.monotonic()

    def _from_directory(self, directory: IssuerDirectory) -> _Keys:
        challenge = gateway_challenge(self._issuer, self._origin)
        return _Keys(
            by_id={token_key_id(key): key for key in directory.keys},
            digest=challenge.digest(),
            # The current key (listed first) is the one a client should fetch tokens under.
            www_authenticate=www_authenticate(challenge, directory.keys[0]),
        )


def _is_private_token(field: tuple[bytes, bytes]) -> bool:
    return field[0] == b"authorization" and field[1].lstrip()[:13].lower() == b"privatetoken "


def _token_bytes(request: bhttp.Request, challenge: str) -> bytes:
    """The one PrivateToken credential's bytes (RFC 9577 §2.2; RFC 9110 §11.6.2)."""
    values = [value for name, value in request.headers if name == b"authorization"]
    tokens: list[bytes] = []
    for value in values:
        try:
            found = parse_authorization(value.decode("ascii"))
        except (UnicodeDecodeError, TokenFormatError):
            raise TokenMalformed(challenge) from None
        if found is not None:
            tokens.append(found)
    if not tokens:
        raise TokenMissing(challenge)
    if len(tokens) > 1:
        raise TokenMalformed(challenge)
    return tokens[0]


def check_token_source(config: GatewayConfig) -> None:
    """Fail fast on a directory file that cannot be read or parsed (a URL is fetched later)."""
    source = config.require_token
    if source is not None and not is_directory_url(source):
        parse_directory(Path(source).read_bytes(), "")
