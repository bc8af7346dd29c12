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
"""

from __future__ import annotations

import contextlib
import http
import json as jsonlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Self, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ohttp import bhttp
from ohttp.aio.keyfile import load_key_file
from ohttp.chunked import (
    CHUNKED_REQUEST_MEDIA_TYPE,
    CHUNKED_RESPONSE_MEDIA_TYPE,
    ChunkedRequestEncoder,
    ChunkedResponseDecoder,
)
from ohttp.encapsulation import (
    REQUEST_MEDIA_TYPE,
    RESPONSE_MEDIA_TYPE,
    ClientResponseOpener,
    encapsulate_request,
)
from ohttp.errors import (
    PROBLEM_DATE,
    PROBLEM_JSON,
    PROBLEM_OHTTP_KEY,
    ChunkedError,
    EncapsulationError,
    OHTTPError,
)
from ohttp.keys import (
    AEAD,
    KDF,
    KEM,
    KEYS_MEDIA_TYPE,
    KeyConfig,
    SymmetricSuite,
    decode_key_configs,
)

__all__ = [
    "Client",
    "ClientError",
    "Exchange",
    "InnerResponse",
    "InvalidInnerResponse",
    "KeyFetchError",
    "KeyRejected",
    "RelayRejected",
    "RelayUnreachable",
    "ResponseDecryptionError",
    "ResponseStream",
    "StreamTruncated",
    "build_inner_request",
    "key_mirror_url",
]

_R = TypeVar("_R")

# RFC 9458 §5.3 and §6.5.2 problem types.

# aiohttp adds these unless told not to; each one is a fingerprint the relay does not need
# (RFC 9458 §5: the outer request carries only what the encapsulated request does not).
_SKIP_AUTO_HEADERS: Final = ("User-Agent", "Accept", "Accept-Encoding")
# Fields the inner message must not carry from the caller: Date is ours (§6.5.1), framing is
# Binary HTTP's, and the authority comes from the URL only (no Host/:authority disagreement).
_CALLER_FIELDS_REPLACED: Final = frozenset({"date", "content-length", "host"})
_MAX_KEYS_BYTES: Final = 64 * 1024
_MAX_ERROR_BYTES: Final = 64 * 1024
_DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024


class ClientError(Exception):
    """Base class of every error the client raises; messages are fixed strings."""

    default_message: ClassVar[str] = "the oblivious request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class RelayUnreachable(ClientError):
    """The relay could not be reached, or the connection failed or timed out."""

    default_message = "the relay could not be reached"


class RelayRejected(ClientError):
    """The relay (or the gateway behind it) answered the outer request with an error status."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        super().__init__(message or f"the relay rejected the request with status {status}")


class KeyRejected(RelayRejected):
    """The gateway does not accept the key configuration, even after a refresh (RFC 9458 §5.3)."""

    def __init__(self, status: int) -> None:
        super().__init__(status, f"the gateway rejected the key configuration (status {status})")


class KeyFetchError(ClientError):
    """No usable key configuration could be obtained."""

    default_message = "no usable key configuration could be obtained"


class ResponseDecryptionError(ClientError):
    """The relay's answer is not an encapsulated response this request can open."""

    default_message = "the encapsulated response could not be decrypted"


class StreamTruncated(ResponseDecryptionError):
    """A chunked response ended before its final chunk: what arrived is not the whole body
    (draft-ietf-ohai-chunked-ohttp-08 §7.1)."""

    default_message = "the response stream ended before its final chunk"


class InvalidInnerResponse(ClientError):
    """The decrypted response is not a valid Binary HTTP response."""

    default_message = "the decrypted response is not a valid Binary HTTP response"


@dataclass(frozen=True, slots=True)
class InnerResponse:
    """The gateway's answer, decrypted: the target's status, header fields and content."""

    status: int
    headers: CIMultiDictProxy[str]
    content: bytes

    @property
    def reason(self) -> str:
        return _reason(self.status)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8") -> str:
        return self.content.decode(encoding, errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One outer round trip through the relay, as the relay and the gateway saw it.

    Given to the ``observer`` callback of :class:`Client` (``ohttp request -v``, ``ohttp demo``).
    """

    relay_url: str
    method: str
    request_headers: tuple[tuple[str, str], ...]  # the outer request, as sent to the relay
    request_bytes: int  # ciphertext the relay carried
    local_address: str | None  # the client address the relay saw
    key_id: int
    kem: KEM
    suite: SymmetricSuite
    inner_request: bhttp.Request  # what only the gateway can read
    inner_request_bytes: int
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_bytes: int


@dataclass(frozen=True, slots=True)
class _UsableKey:
    config: KeyConfig
    suite: SymmetricSuite
    expires: float | None  # time.monotonic() deadline; None: never (file or fixed config)


@dataclass(frozen=True, slots=True)
class _OuterResponse:
    status: int
    content_type: str
    headers: tuple[tuple[str, str], ...]
    sent_headers: tuple[tuple[str, str], ...]
    local_address: str | None
    body: bytes


def key_mirror_url(relay_url: str) -> str:
    """The relay's key mirror: ``<relay>/ohttp-keys``, or ``<relay>/<NAME>/ohttp-keys``."""
    url = URL(relay_url)
    return str(url.with_path(url.path.rstrip("/") + "/ohttp-keys"))


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
            (name.strip().lower().encode("ascii"), value.strip().encode("latin-1"))
            for name, value in pairs
            if name.strip().lower() not in _CALLER_FIELDS_REPLACED
        )
        method_bytes = method.upper().encode("ascii")
    except UnicodeEncodeError:
        # Fixed message: the codec's own names the offending character.
        raise ValueError("methods and field names must be ASCII, values Latin-1") from None
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


def supported_suite(config: KeyConfig) -> SymmetricSuite | None:
    """The first (KDF, AEAD) pair of ``config`` this client implements, if any.

    ``decode_key_configs`` already drops configurations with unknown algorithms; this is the
    client's own check, so a ``KeyConfig`` built by other means is held to the same rule.
    """
    if config.kem not in set(KEM):
        return None
    for suite in config.suites:
        if suite.kdf in set(KDF) and suite.aead in set(AEAD):
            return suite
    return None


class Client:
    """Sends HTTP requests through an Oblivious Relay Resource (RFC 9458).

    Key configurations come from exactly one source: the relay's key mirror (default), a
    ``keys_url``, a ``keys_file`` (a gateway key file or raw ``application/ohttp-keys``), or a
    ``key_config``. ``clock`` returns the current Unix time; tests inject a skewed one.
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
    ) -> None:
        if sum(source is not None for source in (keys_url, keys_file, key_config)) > 1:
            raise ValueError("give at most one of keys_url, keys_file and key_config")
        if not URL(relay_url).is_absolute():
            raise ValueError("the relay URL must be absolute")
        self._relay_url = relay_url
        # By default the keys come from the relay itself (its key mirror).
        self._keys_from_relay = keys_url is None and keys_file is None and key_config is None
        self._keys_url = key_mirror_url(relay_url) if self._keys_from_relay else keys_url
        self._keys_file = Path(keys_file) if keys_file is not None else None
        self._fixed_key = key_config
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=timeout
        )
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._observer = observer
        self._key: _UsableKey | None = None

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
        """Close the HTTP session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def key_config(self) -> KeyConfig:
        """The key configuration the next request will use (fetched if the cache is stale)."""
        return (await self._usable_key()).config

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
        response, key = await self._with_key_retry(self._attempt, message)
        offset = _server_time_offset(response, self._clock())
        if offset is not None:
            # RFC 9458 §6.5.2: one retry, fresh context, Date corrected by the server's
            # offset; the offset is not kept for anything else.
            response = await self._attempt(message, key, self._clock() + offset)
        return response

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
        response, key = await self._with_key_retry(self._stream_attempt, message)
        try:
            offset = await _stream_date_offset(response, self._clock())
            if offset is not None:  # RFC 9458 §6.5.2, as in request()
                response.close()
                response = await self._stream_attempt(message, key, self._clock() + offset)
            yield response
        finally:
            response.close()

    async def _with_key_retry(
        self,
        attempt: Callable[[bhttp.Request, _UsableKey, float], Awaitable[_R]],
        message: bhttp.Request,
    ) -> tuple[_R, _UsableKey]:
        key = await self._usable_key()
        try:
            return await attempt(message, key, self._clock()), key
        except KeyRejected as rejected:
            # RFC 9458 §5.3/§6.4: the gateway no longer accepts this key; refetch, retry once.
            key = await self._refreshed_key(key, rejected)
            return await attempt(message, key, self._clock()), key

    # Keys -------------------------------------------------------------------------------

    async def _usable_key(self) -> _UsableKey:
        key = self._key
        if key is not None and (key.expires is None or time.monotonic() < key.expires):
            return key
        return await self._load_key()

    async def _refreshed_key(self, stale: _UsableKey, rejected: KeyRejected) -> _UsableKey:
        fresh = await self._load_key()
        if fresh.config == stale.config:
            # Same configuration again (fixed config, or a mirror still serving it): a retry
            # would certainly fail the same way.
            raise rejected
        return fresh

    async def _load_key(self) -> _UsableKey:
        lifetime: float | None = None
        if self._fixed_key is not None:
            configs = [self._fixed_key]
        elif self._keys_file is not None:
            configs = _read_key_file(self._keys_file)
        else:
            assert self._keys_url is not None
            configs, lifetime = await self._fetch_keys(self._keys_url)
        key = _choose_key(configs, None if lifetime is None else time.monotonic() + lifetime)
        self._key = key
        return key

    async def _fetch_keys(self, url: str) -> tuple[list[KeyConfig], float]:
        unreachable = (
            RelayUnreachable()
            if self._keys_from_relay
            else KeyFetchError("the key configuration could not be fetched")
        )
        with _translate_network_errors(unreachable):
            async with self._http().get(
                url,
                headers={"Accept": KEYS_MEDIA_TYPE},
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                if response.status != 200 or response.content_type != KEYS_MEDIA_TYPE:
                    raise KeyFetchError("the key configuration endpoint did not return keys")
                body = await _read_body(response, _MAX_KEYS_BYTES, KeyFetchError)
                lifetime = _freshness_lifetime(response.headers)
        try:
            # RFC 9458 §3.2: an encoding error discards the whole collection.
            return decode_key_configs(body), lifetime
        except OHTTPError as exc:
            raise KeyFetchError("the key configuration list is malformed") from exc

    # One round trip ---------------------------------------------------------------------

    async def _attempt(self, message: bhttp.Request, key: _UsableKey, date: float) -> InnerResponse:
        # RFC 9458 §6.5.1: include Date so the gateway can bound its replay window.
        dated = replace(message, headers=(*message.headers, (b"date", http_date(date).encode())))
        inner = bhttp.encode_request(dated)
        # A fresh HPKE context per attempt (RFC 9458 §6.1, §6.5.2).
        encapsulated, opener = encapsulate_request(key.config, inner, suite=key.suite)
        outer = await self._post(encapsulated)
        self._observe(outer, key, dated, len(inner), len(encapsulated))
        if outer.status != 200:
            raise _rejection(outer)
        if outer.content_type != RESPONSE_MEDIA_TYPE:
            raise ResponseDecryptionError("the relay's answer is not an encapsulated response")
        return _open_response(opener, outer.body)

    async def _stream_attempt(
        self, message: bhttp.Request, key: _UsableKey, date: float
    ) -> ResponseStream:
        dated = replace(message, headers=(*message.headers, (b"date", http_date(date).encode())))
        inner = bhttp.encode_request(dated)
        # A fresh HPKE context per attempt; the request is sent whole (the gateway answers only
        # once its final chunk verified), the response is read chunk by chunk.
        encoder = ChunkedRequestEncoder(key.config, suite=key.suite)
        encapsulated = encoder.header() + encoder.final(inner)
        with _translate_network_errors(RelayUnreachable()):
            response = await self._http().post(
                self._relay_url,
                data=encapsulated,
                # chunked-08 §3: the chunked media type, marked Incremental; nothing else.
                headers={"Content-Type": CHUNKED_REQUEST_MEDIA_TYPE, "Incremental": "?1"},
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                allow_redirects=False,
                timeout=self._stream_timeout,
            )
        try:
            outer = _OuterResponse(
                status=response.status,
                content_type=response.content_type,
                headers=tuple(response.headers.items()),
                sent_headers=tuple(response.request_info.headers.items()),
                local_address=_local_address(response),
                body=b"",
            )
            if outer.status != 200 or outer.content_type != CHUNKED_RESPONSE_MEDIA_TYPE:
                with _translate_network_errors(RelayUnreachable()):
                    body = await _read_body(response, _MAX_ERROR_BYTES, ResponseDecryptionError)
                outer = replace(outer, body=body)
                self._observe(outer, key, dated, len(inner), len(encapsulated))
                if outer.status != 200:
                    raise _rejection(outer)
                raise ResponseDecryptionError("the relay's answer is not a chunked response")
            body_reader = _ChunkedBody(
                response, encoder.response_decoder(), self._max_response_bytes
            )
            head, pending = await body_reader.head()
            self._observe(
                outer,
                key,
                dated,
                len(inner),
                len(encapsulated),
                response_bytes=body_reader.received,
            )
            return ResponseStream(head, body_reader, pending)
        except BaseException:
            response.close()
            raise

    async def _post(self, encapsulated: bytes) -> _OuterResponse:
        with _translate_network_errors(RelayUnreachable()):
            async with self._http().post(
                self._relay_url,
                data=encapsulated,
                headers={"Content-Type": REQUEST_MEDIA_TYPE},
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                local_address = _local_address(response)
                limit = self._max_response_bytes if response.status == 200 else _MAX_ERROR_BYTES
                body = await _read_body(response, limit, ResponseDecryptionError)
                return _OuterResponse(
                    status=response.status,
                    content_type=response.content_type,
                    headers=tuple(response.headers.items()),
                    sent_headers=tuple(response.request_info.headers.items()),
                    local_address=local_address,
                    body=body,
                )

    def _observe(
        self,
        outer: _OuterResponse,
        key: _UsableKey,
        inner: bhttp.Request,
        inner_bytes: int,
        encapsulated_bytes: int,
        *,
        response_bytes: int | None = None,
    ) -> None:
        if self._observer is None:
            return
        self._observer(
            Exchange(
                relay_url=self._relay_url,
                method="POST",
                request_headers=outer.sent_headers,
                request_bytes=encapsulated_bytes,
                local_address=outer.local_address,
                key_id=key.config.key_id,
                kem=key.config.kem,
                suite=key.suite,
                inner_request=inner,
                inner_request_bytes=inner_bytes,
                status=outer.status,
                response_headers=outer.headers,
                response_bytes=len(outer.body) if response_bytes is None else response_bytes,
            )
        )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar: cookies would link requests at the relay.
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )
        return self._session


# Streaming ------------------------------------------------------------------------------


class _ChunkedBody:
    """A chunked response as it arrives: decrypted chunk by chunk (chunked-08 §5, §6.2), then
    decoded as Binary HTTP events (RFC 9292, either framing)."""

    def __init__(
        self, response: aiohttp.ClientResponse, decoder: ChunkedResponseDecoder, limit: int
    ) -> None:
        self._response = response
        self._decoder = decoder
        self._framing = bhttp.StreamingResponseDecoder(bhttp.Limits(max_content_bytes=limit))
        self.received = 0
        self.finished = False  # the final chunk verified and the message decoded

    async def head(self) -> tuple[bhttp.Response, list[bhttp.StreamEvent]]:
        """The response head, and the events that arrived with it."""
        events: list[bhttp.StreamEvent] = []
        while not self.finished:
            events += await self.events()
            for index, event in enumerate(events):
                if isinstance(event, bhttp.ResponseHead):
                    return event.response, events[index + 1 :]
        raise InvalidInnerResponse()

    async def events(self) -> list[bhttp.StreamEvent]:
        """The events the next bytes complete; at the end of the stream, the last ones."""
        while True:
            try:
                data = await self._response.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise StreamTruncated() from exc  # the connection ended inside the message
            if data:
                self.received += len(data)
                plaintexts = _decrypted(self._decoder.feed, data)
            else:
                plaintexts = _decrypted(self._decoder.close)  # raises without a final chunk
            events = [event for part in plaintexts for event in _decoded(self._framing.feed, part)]
            if not data:
                events += _decoded(self._framing.close)
                self.finished = True
            if events or self.finished:
                return events

    def close(self) -> None:
        if self.finished:
            self._response.release()
        else:  # the connection is inside a message: it cannot go back to the pool
            self._response.close()


def _decrypted(step: Callable[..., list[bytes]], *data: bytes) -> list[bytes]:
    try:
        return step(*data)
    except (ChunkedError, EncapsulationError) as exc:
        if not data:  # at the end: no final chunk (§7.1), or not even the response nonce
            raise StreamTruncated() from exc
        raise ResponseDecryptionError() from exc
    except OHTTPError as exc:
        raise ResponseDecryptionError() from exc


def _decoded(step: Callable[..., list[bhttp.StreamEvent]], *data: bytes) -> list[bhttp.StreamEvent]:
    try:
        return step(*data)
    except OHTTPError as exc:
        raise InvalidInnerResponse() from exc


class ResponseStream:
    """A streamed inner response: status and header fields at once, the content as it
    arrives (``async for chunk in response``, or ``await response.read()``)."""

    def __init__(
        self, head: bhttp.Response, body: _ChunkedBody, pending: list[bhttp.StreamEvent]
    ) -> None:
        self.status = head.status
        self.headers = _header_dict(head.headers)
        self.trailers: CIMultiDictProxy[str] | None = None  # set once the content ended
        self._body = body
        self._pending = pending
        self._iterating = False

    @property
    def reason(self) -> str:
        return _reason(self.status)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def complete(self) -> bool:
        """True once the final chunk verified and the whole message decoded (§7.1)."""
        return self._body.finished and not self._pending

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterating:
            raise RuntimeError("a response stream is read once")
        self._iterating = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            events, self._pending = self._pending, []
            for event in events:
                if isinstance(event, bhttp.ContentChunk):
                    yield event.data
                elif isinstance(event, bhttp.MessageEnd):
                    self.trailers = _header_dict(event.trailers)
            if self._body.finished:
                return
            self._pending = await self._body.events()

    async def read(self) -> bytes:
        """The rest of the content, once the stream has ended with its final chunk."""
        return b"".join([chunk async for chunk in self])

    async def _buffer(self) -> bytes:
        """Read to the end without consuming: the content stays to be iterated."""
        while not self._body.finished:
            self._pending += await self._body.events()
        return b"".join(e.data for e in self._pending if isinstance(e, bhttp.ContentChunk))

    def close(self) -> None:
        """Release the connection (closed if the stream did not end)."""
        self._body.close()


async def _stream_date_offset(response: ResponseStream, now: float) -> float | None:
    # Only a 400 problem document can be the #date problem; it is small and sent whole.
    if response.status != 400 or PROBLEM_JSON not in response.headers.get("Content-Type", ""):
        return None
    content = await response._buffer()
    return _server_time_offset(InnerResponse(response.status, response.headers, content), now)


def _header_dict(fields: bhttp.Fields) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(
        CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in fields)
    )


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


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


# Helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def _translate_network_errors(error: ClientError) -> Iterator[None]:
    """The one boundary where aiohttp and socket errors become this module's errors."""
    try:
        yield
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise error from exc


def _read_key_file(path: Path) -> list[KeyConfig]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFetchError("the key file could not be read") from exc
    with contextlib.suppress(OHTTPError, ValueError):
        return decode_key_configs(data)
    try:
        return [key.config for key in load_key_file(path).current()]
    except (OHTTPError, ValueError, OSError) as exc:
        raise KeyFetchError("the key file holds no valid key configuration") from exc


def _choose_key(configs: Iterable[KeyConfig], expires: float | None) -> _UsableKey:
    for config in configs:
        suite = supported_suite(config)
        if suite is not None:
            return _UsableKey(config, suite, expires)
    raise KeyFetchError("no key configuration uses a supported suite")


def _freshness_lifetime(headers: Mapping[str, str]) -> float:
    """Seconds the key list stays fresh: max-age minus Age (RFC 9111 §4.2); 0 if not cacheable."""
    max_age = 0
    for value in headers.get("Cache-Control", "").split(","):
        directive, _, argument = value.strip().partition("=")
        if directive.lower() in ("no-store", "no-cache"):
            return 0.0
        if directive.lower() == "max-age" and argument.strip('"').isdigit():
            max_age = int(argument.strip('"'))
    age = headers.get("Age", "0").strip()
    return float(max(0, max_age - (int(age) if age.isdigit() else 0)))


async def _read_body(
    response: aiohttp.ClientResponse, limit: int, error: type[ClientError]
) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise error("the response is larger than the client accepts")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise error("the response is larger than the client accepts")
        chunks.append(chunk)
    return b"".join(chunks)


def _local_address(response: aiohttp.ClientResponse) -> str | None:
    """Our end of the connection: the client address the relay sees (for the observer)."""
    # A small body is read with the head, and the connection is back in the pool before we
    # get here; the response still holds the protocol, whose transport knows the address.
    connection = response.connection
    protocol = (
        connection.protocol if connection is not None else getattr(response, "_protocol", None)
    )
    transport = getattr(protocol, "transport", None)
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return None
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _rejection(outer: _OuterResponse) -> RelayRejected:
    key_problem = _problem_type(outer.content_type, outer.body) == PROBLEM_OHTTP_KEY
    if outer.status == 422 or (400 <= outer.status < 500 and key_problem):
        return KeyRejected(outer.status)
    return RelayRejected(outer.status)


def _problem_type(content_type: str, body: bytes) -> str | None:
    """The ``type`` member of an RFC 9457 problem document, if ``body`` is one."""
    if content_type.split(";", maxsplit=1)[0].strip().lower() != PROBLEM_JSON:
        return None
    try:
        problem = jsonlib.loads(body)
    except ValueError:
        return None
    kind = problem.get("type") if isinstance(problem, dict) else None
    return kind if isinstance(kind, str) else None


def _open_response(opener: ClientResponseOpener, body: bytes) -> InnerResponse:
    try:
        plaintext = opener.open(body)
    except OHTTPError as exc:
        raise ResponseDecryptionError() from exc
    try:
        message = bhttp.decode_response(plaintext)
    except OHTTPError as exc:
        raise InvalidInnerResponse() from exc
    return InnerResponse(message.status, _header_dict(message.headers), message.content)


def _server_time_offset(response: InnerResponse, now: float) -> float | None:
    """Server clock minus ours, if ``response`` is the RFC 9458 §6.5.2 ``#date`` problem."""
    if response.status != 400:
        return None
    content_type = response.headers.get("Content-Type", "")
    if _problem_type(content_type, response.content) != PROBLEM_DATE:
        return None
    try:
        server_time = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    if server_time.tzinfo is None:
        return None
    return server_time.timestamp() - now
