"""Async Oblivious HTTP client (RFC 9458 §6.1) on aiohttp.

The only ``ohttp`` module that imports aiohttp; the sans-IO core does not depend on it.

    async with Client("https://relay.example/") as client:
        response = await client.request("POST", "https://processing.internal/v1/summarize",
                                        json={"messages": [...]})
        print(response.status, response.json())

        async with client.stream("POST", "https://processing.internal/v1/summarize/stream",
                                 json={...}) as response:          # status and headers first
            async for chunk in response:                           # then the body, as it arrives
                print(chunk)

``stream`` speaks chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08): each part of the response
is decrypted as it arrives, and a stream that ends before its final chunk raises
``StreamTruncated`` instead of looking complete.

Every request gets a fresh HPKE context; the outer request carries only ``Content-Type``
(RFC 9458 §5, §6.1). Retries are limited to the two the RFC allows (§6.5): once after the
gateway rejects the key configuration (fresh keys), once after an encapsulated ``#date``
problem (fresh context, Date corrected by the server's offset, which is used for nothing else).

``request`` and ``stream`` share one flow (``Client._send``), parameterised by the framing:
``ohttp.aio._exchange`` (the round trip, one-shot or chunked), ``_keyfetch`` (key sources and
their cache), ``_responses`` (what is handed out), ``_errors`` (the errors, and the one boundary
where aiohttp's become them).
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
from yarl import URL

from ohttp import bhttp
from ohttp.aio._errors import (
    ClientError,
    InvalidInnerResponse,
    KeyFetchError,
    KeyRejected,
    RelayRejected,
    RelayTimeout,
    RelayUnreachable,
    RelayUntrusted,
    ResponseDecryptionError,
    StreamTruncated,
)
from ohttp.aio._exchange import Chunked, Exchange, Framing, OneShot, Relay
from ohttp.aio._keyfetch import KeySource, UsableKey, key_mirror_url
from ohttp.aio._responses import InnerResponse, ResponseStream
from ohttp.aio.tlog import (
    KeyNotLogged,
    KeyWindowError,
    LogContentError,
    LogError,
    LogInconsistent,
    LogSignatureError,
    LogUnavailable,
    ReleaseNotPinned,
    WitnessQuorumError,
)
from ohttp.aio.tlog_policy import KeyLogCheck, LogPolicy
from ohttp.aio.wallet import TokenSource
from ohttp.keys import KeyConfig
from ohttp.privacypass import Token, authorization

__all__ = [
    "Client",
    "ClientError",
    "Exchange",
    "InnerResponse",
    "InvalidInnerResponse",
    "KeyFetchError",
    "KeyNotLogged",
    "KeyRejected",
    "KeyWindowError",
    "LogContentError",
    "LogError",
    "LogInconsistent",
    "LogSignatureError",
    "LogUnavailable",
    "RelayRejected",
    "RelayTimeout",
    "RelayUnreachable",
    "RelayUntrusted",
    "ReleaseNotPinned",
    "ResponseDecryptionError",
    "ResponseStream",
    "StreamTruncated",
    "WitnessQuorumError",
    "build_inner_request",
    "key_mirror_url",
]

_R = TypeVar("_R")

# Fields the inner message must not carry from the caller: Date is ours (§6.5.1), framing is
# Binary HTTP's, and the authority comes from the URL only (no Host/:authority disagreement).
_CALLER_FIELDS_REPLACED: Final = frozenset({"date", "content-length", "host"})
_DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024


def build_inner_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    content: bytes = b"",
) -> bhttp.Request:
    """The Binary HTTP request for ``method url`` (without Date; the client adds it per attempt)."""
    target = URL(url)
    if not target.is_absolute() or target.scheme not in ("http", "https") or not target.raw_host:
        raise ValueError("the target must be an absolute http or https URL")
    if target.raw_user is not None or target.raw_password is not None:
        raise ValueError("the target URL must not contain user information")
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    try:
        fields = tuple(
            # RFC 9110 §5.5: a field value is octets; text is sent as UTF-8, as curl sends it.
            (name.strip().lower().encode("ascii"), value.strip().encode("utf-8"))
            for name, value in pairs
            if name.strip().lower() not in _CALLER_FIELDS_REPLACED
        )
        method_bytes = method.upper().encode("ascii")
    except UnicodeEncodeError:
        # Fixed message: the codec's own names the offending character.
        raise ValueError("methods and field names must be ASCII") from None
    request = bhttp.Request(
        method=method_bytes,
        scheme=target.scheme.encode("ascii"),
        authority=target.raw_authority.encode("ascii"),
        path=(target.raw_path_qs or "/").encode("ascii"),
        headers=fields,
        content=content,
    )
    bhttp.encode_request(request)  # ValueError (fixed message) now, before any network I/O
    return request


def http_date(timestamp: float) -> str:
    """An RFC 9110 §5.6.7 IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(timestamp, usegmt=True)


class Client:
    """Sends HTTP requests through an Oblivious Relay Resource (RFC 9458).

    Key configurations come from exactly one source: the relay's key mirror (default), a
    ``keys_url``, a ``keys_file`` (a gateway key file or raw ``application/ohttp-keys``), or a
    ``key_config``. ``clock`` returns the current Unix time; tests inject a skewed one.
    ``padding`` is ``"classes"`` (pad each inner request to a size class, ``ohttp.padding``)
    or ``"none"``.
    ``tokens`` (a :class:`~ohttp.aio.wallet.TokenSource`) puts one Privacy Pass token in each
    inner request, and answers a 401 ``PrivateToken`` challenge with a fresh one, once.
    ``prefer_pq``: among the offered configurations, a post-quantum KEM (X-Wing, ML-KEM
    hybrids) is used when there is one; ``False`` prefers a classical one.
    ``ssl_context`` is used by the session the client makes (e.g. one trusting a private CA,
    as ``ohttp request --cacert`` does); a ``session`` passed in brings its own.

    With ``log`` (a key transparency log's URL or directory) and ``log_key`` (its verifier
    key), every key configuration is checked against the log before anything is encrypted to
    it (``ohttp.aio.tlog_policy``): cosigned by ``min_witnesses`` of ``witness_keys`` (default:
    all), inside its window, of a pinned release if ``releases`` are given, and consistent with
    the last checkpoint kept in ``log_state``. A failure raises a :class:`LogError` subclass.
    """

    def __init__(
        self,
        relay_url: str,
        *,
        keys_url: str | None = None,
        keys_file: str | Path | None = None,
        key_config: KeyConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] = time.time,
        observer: Callable[[Exchange], None] | None = None,
        padding: str = "classes",
        tokens: TokenSource | None = None,
        prefer_pq: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        log: str | Path | None = None,
        log_key: str | None = None,
        witness_keys: Iterable[str] = (),
        min_witnesses: int | None = None,
        releases: Iterable[str] = (),
        log_state: str | Path | None = None,
    ) -> None:
        if sum(source is not None for source in (keys_url, keys_file, key_config)) > 1:
            raise ValueError("give at most one of keys_url, keys_file and key_config")
        if not URL(relay_url).is_absolute():
            raise ValueError("the relay URL must be absolute")
        relay_url = _without_trailing_slash(relay_url)
        self._session = session
        self._owns_session = session is None
        self._tokens = tokens
        self._ssl = ssl_context  # for the session this client makes (e.g. a private CA)
        self._clock = clock
        whole = aiohttp.ClientTimeout(total=timeout)
        self._keys = KeySource(
            relay_url,
            keys_url=keys_url,
            keys_file=keys_file,
            key_config=key_config,
            http=self._http,
            timeout=whole,
            prefer_pq=prefer_pq,
        )
        self._relay = Relay(relay_url, self._http, observer, padding)
        self._one_shot = OneShot(whole, max_response_bytes)
        # A stream's timeout bounds each wait for data, not the whole stream.
        each_wait = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._chunked = Chunked(each_wait, max_response_bytes)
        self._log: KeyLogCheck | None = None
        if log is not None or log_key is not None:
            if log is None or log_key is None:
                raise ValueError("give log and log_key together")
            policy = LogPolicy(
                str(log), log_key, tuple(witness_keys), min_witnesses, tuple(releases),
                None if log_state is None else Path(log_state),
            )  # fmt: skip
            self._log = KeyLogCheck(policy, self._http, whole, clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client created it, and stop token refills."""
        if self._tokens is not None:
            await self._tokens.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def key_config(self) -> KeyConfig:
        """The key configuration the next request will use (fetched if the cache is stale)."""
        return (await self._keys.usable()).config

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | None = None,
        json: Any = None,
    ) -> InnerResponse:
        """Send ``method url`` through the relay and return the decrypted response."""
        message = _inner_message(method, url, headers, content, json)
        return await self._send(message, self._one_shot)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | None = None,
        json: Any = None,
    ) -> AsyncIterator[ResponseStream]:
        """Send ``method url`` as a chunked OHTTP request; the response as it arrives.

        ``async with client.stream(...) as response``: ``response.status`` and
        ``response.headers`` are there at once, ``async for chunk in response`` gives the
        content as each chunk is decrypted, and raises ``StreamTruncated`` if the stream
        ends before its final chunk. The retries of :meth:`request` happen before anything
        is handed out. ``timeout`` bounds each wait for data, not the whole stream.
        """
        message = _inner_message(method, url, headers, content, json)
        response = await self._send(message, self._chunked)
        try:
            yield response
        finally:
            response.close()

    async def _send(self, message: bhttp.Request, framing: Framing[_R]) -> _R:
        """With tokens: one in the request, and one retry on a 401 challenge (RFC 9577 §2)."""
        if self._tokens is None:
            return await self._exchange(message, framing)
        result = await self._exchange(_authorized(message, await self._tokens.token()), framing)
        challenge = _token_challenge(result)
        if challenge is None:
            return result
        token = await self._tokens.answer(challenge)
        if token is None:
            return result
        framing.close(result)
        return await self._exchange(_authorized(message, token), framing)

    async def _exchange(self, message: bhttp.Request, framing: Framing[_R]) -> _R:
        """The one request flow, and the only retries RFC 9458 §6.5 allows."""
        key = await self._logged(await self._keys.usable())
        try:
            result = await self._attempt(framing, key, message, self._clock())
        except KeyRejected as rejected:
            # RFC 9458 §5.3/§6.4: the gateway no longer accepts this key; refetch, retry once.
            key = await self._logged(await self._keys.refreshed(key, rejected))
            result = await self._attempt(framing, key, message, self._clock())
        try:
            offset = await framing.date_offset(result, self._clock())
        except BaseException:
            framing.close(result)
            raise
        if offset is None:
            return result
        # RFC 9458 §6.5.2: one retry, fresh context, Date corrected by the server's offset;
        # the offset is not kept for anything else.
        framing.close(result)
        return await self._attempt(framing, key, message, self._clock() + offset)

    async def _logged(self, key: UsableKey) -> UsableKey:
        # Issue "Verifiable keys": nothing is encrypted to a key the log does not vouch for.
        if self._log is not None:
            await self._log.check(key.config)
        return key

    async def _attempt(
        self, framing: Framing[_R], key: UsableKey, message: bhttp.Request, date: float
    ) -> _R:
        # RFC 9458 §6.5.1: include Date so the gateway can bound its replay window.
        dated = replace(message, headers=(*message.headers, (b"date", http_date(date).encode())))
        return await self._relay.attempt(framing, key, dated)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar: cookies would link requests at the relay.
            connector = None if self._ssl is None else aiohttp.TCPConnector(ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, connector=connector
            )
        return self._session


def _without_trailing_slash(relay_url: str) -> str:
    # "https://relay/echo/" names the relay resource "/echo": the relay routes no "/echo/".
    url = URL(relay_url)
    if len(url.path) > 1 and url.path.endswith("/"):
        return str(url.with_path(url.path.rstrip("/") or "/"))
    return relay_url


def _inner_message(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    content: bytes | None,
    json: Any,
) -> bhttp.Request:
    if content is not None and json is not None:
        raise TypeError("give content or json, not both")
    body = content or b""
    fields = list(headers.items() if isinstance(headers, Mapping) else (headers or ()))
    if json is not None:
        body = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in fields):
            fields.append(("content-type", "application/json"))
    return build_inner_request(method, url, fields, body)


def _authorized(message: bhttp.Request, token: Token | None) -> bhttp.Request:
    """``message`` carrying ``token`` in ``Authorization: PrivateToken`` (RFC 9577 §2.2)."""
    if token is None:
        return message
    fields = tuple(field for field in message.headers if field[0] != b"authorization")
    value = authorization(token).encode("ascii")
    return replace(message, headers=(*fields, (b"authorization", value)))


def _token_challenge(result: object) -> str | None:
    """The WWW-Authenticate of an inner 401, or None."""
    if not isinstance(result, InnerResponse | ResponseStream) or result.status != 401:
        return None
    return ", ".join(result.headers.getall("WWW-Authenticate", [])) or None
