"""Privacy Pass tokens for the client: issuance over HTTP, a wallet file, and a token source.

- :func:`fetch_directory` and :func:`issue_tokens`: the RFC 9578 §4 directory and the §5/§6
  issuance round trips, authenticated to the issuer (a joint attester and issuer) with
  ``Authorization: Bearer <credential>``;
- :class:`Wallet`: unspent tokens for one challenge, optionally in a file (mode 0600);
- :class:`TokenSource`: what ``Client(..., tokens=...)`` spends, one token per request,
  refilled in the background in batches before it runs dry, and able to answer a 401
  ``PrivateToken`` challenge.

Tokens are fetched in batches ahead of use so that issuance and spending are not correlated in
time; see docs/privacy-pass.md for the unlinkability argument and its limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
from yarl import URL

from ohttp.aio._errors import ClientError, read_body
from ohttp.errors import OHTTPError
from ohttp.privacypass import (
    TOKEN_TYPE_BLIND_RSA,
    BlindRSAPublicKey,
    PrivateTokenChallenge,
    Token,
    TokenChallenge,
    begin_issuance,
    decode_token_key,
    finalize,
    parse_www_authenticate,
)
from ohttp.privacypass._base64 import b64url_decode, b64url_encode

__all__ = [
    "DIRECTORY_PATH",
    "IssuerDirectory",
    "TokenFetchError",
    "TokenSource",
    "Wallet",
    "WalletError",
    "directory_url",
    "fetch_directory",
    "gateway_challenge",
    "issue_tokens",
    "issuer_name",
    "parse_directory",
]

DIRECTORY_PATH: Final = "/.well-known/private-token-issuer-directory"  # RFC 9578 §4
_REQUEST_TYPE: Final = "application/private-token-request"
_RESPONSE_TYPE: Final = "application/private-token-response"
_MAX_DIRECTORY_BYTES: Final = 64 * 1024
_MAX_CONCURRENT: Final = 8  # issuance requests in flight during one batch


class TokenFetchError(ClientError):
    """No token could be obtained from the issuer (unreachable, refused, over quota)."""

    default_message = "no token could be obtained from the issuer"


class WalletError(ClientError):
    """The wallet file cannot be read or does not hold tokens in the expected form."""

    default_message = "the wallet file is not usable"


def directory_url(issuer: str) -> str:
    """The directory URL of an issuer given by its origin (or already by that URL)."""
    url = URL(issuer)
    if not url.is_absolute() or url.scheme not in ("http", "https"):
        raise ValueError("the issuer must be an absolute http or https URL")
    if url.path in ("", "/"):
        return str(url.with_path(DIRECTORY_PATH))
    return str(url)


def issuer_name(directory: str) -> bytes:
    """The TokenChallenge ``issuer_name``: the issuer's authority (RFC 9577 §2.1 names it by
    its server name; the port is kept so that issuers on one host stay distinct)."""
    return URL(directory).raw_authority.encode("ascii")


def gateway_challenge(issuer: bytes, origin: str) -> TokenChallenge:
    """The challenge a gateway requires: this issuer, an empty redemption context (so tokens
    can be fetched ahead of time, RFC 9577 §2.1.1) and the gateway's name as origin info."""
    return TokenChallenge(TOKEN_TYPE_BLIND_RSA, issuer, b"", origin.encode("ascii"))


@dataclass(frozen=True)
class IssuerDirectory:
    """An issuer directory (RFC 9578 §4): where to send requests, and the type 2 keys."""

    request_url: str
    keys: tuple[BlindRSAPublicKey, ...]  # in the directory's order; the first is current


def parse_directory(body: bytes, base_url: str) -> IssuerDirectory:
    """Parse a directory; ``issuer-request-uri`` may be relative to ``base_url``.

    Raises ValueError (fixed messages) or a key's ``KeyFormatError``.
    """
    try:
        document = json.loads(body)
        uri = document["issuer-request-uri"]
        entries = document["token-keys"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("malformed issuer directory") from None
    if not isinstance(uri, str) or not isinstance(entries, list):
        raise ValueError("malformed issuer directory")
    keys = tuple(
        decode_token_key(entry["token-key"])
        for entry in entries
        if isinstance(entry, dict)
        and entry.get("token-type") == TOKEN_TYPE_BLIND_RSA
        and isinstance(entry.get("token-key"), str)
    )  # other token types are not ours to use (RFC 9578 §4: clients ignore them)
    if not keys:
        raise ValueError("the issuer directory lists no type 2 token key")
    return IssuerDirectory(str(URL(base_url).join(URL(uri))), keys)


async def fetch_directory(
    session: aiohttp.ClientSession, url: str, timeout: float = 10.0
) -> IssuerDirectory:
    """GET and parse an issuer directory; :class:`TokenFetchError` on any failure."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise TokenFetchError()
            body = await read_body(response, _MAX_DIRECTORY_BYTES, TokenFetchError)
        return parse_directory(body, url)
    except (aiohttp.ClientError, TimeoutError, ValueError, OHTTPError, TokenFetchError):
        raise TokenFetchError("the issuer directory could not be fetched") from None


async def issue_tokens(
    session: aiohttp.ClientSession,
    directory: IssuerDirectory,
    challenge: TokenChallenge,
    credential: str | None,
    count: int,
    *,
    key: BlindRSAPublicKey | None = None,
    timeout: float = 10.0,
) -> list[Token]:
    """``count`` tokens for ``challenge`` under ``key`` (default: the current one), each
    unblinded and verified. Stops at the first refusal; :class:`TokenFetchError` if none."""
    key = key or directory.keys[0]
    limit = asyncio.Semaphore(_MAX_CONCURRENT)

    async def one() -> Token | None:
        async with limit:
            return await _issue_one(
                session, directory.request_url, challenge, key, credential=credential,
                timeout=timeout,
            )  # fmt: skip

    tokens = [t for t in await asyncio.gather(*(one() for _ in range(count))) if t is not None]
    if not tokens:
        raise TokenFetchError()
    return tokens


async def _issue_one(
    session: aiohttp.ClientSession,
    url: str,
    challenge: TokenChallenge,
    key: BlindRSAPublicKey,
    *,
    credential: str | None,
    timeout: float,
) -> Token | None:
    request, state = begin_issuance(challenge, key)
    headers = {"Content-Type": _REQUEST_TYPE, "Accept": _RESPONSE_TYPE}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    try:
        async with session.post(
            url, data=request, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200 or response.content_type != _RESPONSE_TYPE:
                return None  # refused (401 account, 429 quota, 422 key): fewer tokens
            body = await read_body(response, 1024, TokenFetchError)
        return finalize(state, body)  # RFC 9578 §6.3: verified before it is kept
    except (aiohttp.ClientError, TimeoutError, OHTTPError, TokenFetchError):
        return None


@dataclass
class Wallet:
    """Unspent tokens for one challenge; saved to ``path`` (mode 0600) on every change.

    File: JSON with ``issuer`` (directory URL), ``origin``, ``challenge`` and ``tokens``
    (padded base64url). A token is removed from the file before it is spent, so it is never
    offered twice even if the process dies.
    """

    issuer: str
    origin: str
    tokens: list[Token] = field(default_factory=list)
    path: Path | None = None

    @property
    def challenge(self) -> TokenChallenge:
        return gateway_challenge(issuer_name(self.issuer), self.origin)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def load(cls, path: Path) -> Wallet:
        """Read a wallet file; :class:`WalletError` if it is not one."""
        try:
            document = json.loads(path.read_bytes())
            wallet = cls(document["issuer"], document["origin"], path=path)
            error = WalletError()
            wallet.tokens = [Token.decode(b64url_decode(t, error)) for t in document["tokens"]]
        except (OSError, ValueError, KeyError, TypeError, OHTTPError):
            raise WalletError() from None
        return wallet

    def take(self) -> Token | None:
        """Remove and return one token (saved first), or None if the wallet is empty."""
        if not self.tokens:
            return None
        token = self.tokens.pop(0)
        self.save()
        return token

    def add(self, tokens: list[Token]) -> None:
        self.tokens.extend(tokens)
        self.save()

    def save(self) -> None:
        """Write the file atomically, never readable by others (tokens are bearer values)."""
        if self.path is None:
            return
        document = {
            "issuer": self.issuer,
            "origin": self.origin,
            "challenge": b64url_encode(self.challenge.encode()),
            "tokens": [b64url_encode(token.encode()) for token in self.tokens],
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump(document, stream)
        temporary.replace(self.path)


class TokenSource:
    """Tokens for ``Client(..., tokens=...)``: one per request, refilled ahead of time.

    With a ``credential`` the source fetches ``batch`` tokens whenever fewer than
    ``refill_below`` remain (in the background, so a request never waits for issuance unless
    the wallet is empty) and answers a gateway's 401 challenge by fetching a token for it.
    Without one it only spends what the wallet holds (``ohttp request --wallet``).
    """

    def __init__(
        self,
        wallet: Wallet,
        *,
        credential: str | None = None,
        batch: int = 16,
        refill_below: int = 4,
        timeout: float = 10.0,
    ) -> None:
        if batch < 1 or refill_below < 0:
            raise ValueError("batch must be positive and refill_below not negative")
        self.wallet = wallet
        self._credential = credential
        self._batch, self._refill_below, self._timeout = batch, refill_below, timeout
        self._session: aiohttp.ClientSession | None = None
        self._directory: IssuerDirectory | None = None
        self._refill: asyncio.Task[None] | None = None

    async def token(self) -> Token | None:
        """A token to spend on the next request; None if the wallet is empty and there is no
        credential to fetch more. :class:`TokenFetchError` if the issuer gives none."""
        if not self.wallet and self._credential is not None:
            await self._fill()  # empty: this request has to wait for issuance
        token = self.wallet.take()
        if len(self.wallet) < self._refill_below and self._credential is not None:
            self._start_refill()
        return token

    async def answer(self, www_authenticate: str) -> Token | None:
        """A fresh token for a gateway's ``PrivateToken`` challenge, or None.

        Only a challenge naming our issuer is answered (another issuer would need another
        account), with the key the gateway offers if the issuer lists it.
        """
        if self._credential is None:
            return None
        try:
            offers = parse_www_authenticate(www_authenticate)
        except OHTTPError:
            return None
        ours = issuer_name(self.wallet.issuer)
        for offer in offers:
            if offer.challenge.issuer_name == ours:
                return await self._answer_offer(offer)
        return None

    async def _answer_offer(self, offer: PrivateTokenChallenge) -> Token | None:
        directory = await self._fetch_directory(fresh=True)
        key = next((k for k in directory.keys if k == offer.token_key), None)
        if key is None:
            return None
        with contextlib.suppress(TokenFetchError):
            return (await self._issue(offer.challenge, key, 1))[0]
        return None

    async def refill(self) -> int:
        """Fetch one batch now (ahead of use); the number of tokens added."""
        before = len(self.wallet)
        await self._fill()
        return len(self.wallet) - before

    async def aclose(self) -> None:
        """Stop a refill in progress and close the issuer session."""
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _start_refill(self) -> None:
        if self._refill is None or self._refill.done():
            self._refill = asyncio.get_running_loop().create_task(self._fill_quietly())

    async def _fill_quietly(self) -> None:
        with contextlib.suppress(TokenFetchError):  # the next request tries again
            await self._fill()

    async def _fill(self) -> None:
        await self._fetch_directory(fresh=True)  # once a batch: follows the issuer's rotation
        self.wallet.add(await self._issue(self.wallet.challenge, None, self._batch))

    async def _issue(
        self, challenge: TokenChallenge, key: BlindRSAPublicKey | None, count: int
    ) -> list[Token]:
        directory = await self._fetch_directory(fresh=False)
        return await issue_tokens(
            self._http(), directory, challenge, self._credential, count, key=key,
            timeout=self._timeout,
        )  # fmt: skip

    async def _fetch_directory(self, *, fresh: bool) -> IssuerDirectory:
        if self._directory is None or fresh:
            self._directory = await fetch_directory(
                self._http(), self.wallet.issuer, self._timeout
            )
        return self._directory

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session
