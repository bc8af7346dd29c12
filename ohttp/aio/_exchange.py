"""One round trip through the relay, for either framing: the client's single request flow.

A :class:`Framing` says how a request is encapsulated and its answer opened: :class:`OneShot`
(RFC 9458) or :class:`Chunked` (draft-ietf-ohai-chunked-ohttp-08). :class:`Relay` posts the
encapsulated request, classifies the outer response the same way for both, and reports the
exchange to the observer; the retries around it are :meth:`ohttp.aio.client.Client._send`'s.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Generic, TypeVar

import aiohttp

from ohttp import bhttp
from ohttp.aio._errors import (
    KeyRejected,
    RelayRejected,
    RelayUnreachable,
    ResponseDecryptionError,
    network_errors,
    read_body,
)
from ohttp.aio._keyfetch import SKIP_AUTO_HEADERS, UsableKey
from ohttp.aio._responses import (
    ChunkedBody,
    InnerResponse,
    ResponseStream,
    open_response,
    problem_type,
    server_time_offset,
    stream_date_offset,
)
from ohttp.chunked import (
    CHUNKED_REQUEST_MEDIA_TYPE,
    CHUNKED_RESPONSE_MEDIA_TYPE,
    ChunkedRequestEncoder,
)
from ohttp.encapsulation import REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE, encapsulate_request
from ohttp.errors import PROBLEM_OHTTP_KEY
from ohttp.keys import KEM, SymmetricSuite
from ohttp.padding import Padding, pad_message, whole_chunks

_R = TypeVar("_R")
_MAX_ERROR_BYTES: Final = 64 * 1024

Report = Callable[[int], None]  # the observer, given the response bytes received
# Opens the answer to one encapsulated request: (response, body read so far, report) -> result.
Receive = Callable[[aiohttp.ClientResponse, bytes, Report], Awaitable[_R]]


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
    inner_request_bytes: int  # the encoded inner request, padding included
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_bytes: int


@dataclass(frozen=True, slots=True)
class _OuterHead:
    status: int
    content_type: str
    headers: tuple[tuple[str, str], ...]
    sent_headers: tuple[tuple[str, str], ...]
    local_address: str | None


class Framing(abc.ABC, Generic[_R]):
    """How one request is encapsulated and its answer read: the flow's only variable part."""

    headers: ClassVar[Mapping[str, str]]  # the outer request's only fields (RFC 9458 §5)
    media_type: ClassVar[str]  # of a successful outer response
    not_ours: ClassVar[str]  # why a 200 of another media type cannot be opened

    def __init__(self, timeout: aiohttp.ClientTimeout, max_response_bytes: int) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    @abc.abstractmethod
    def encapsulate(self, key: UsableKey, inner: bytes) -> tuple[bytes, Receive[_R]]:
        """The encapsulated request, with a fresh HPKE context (RFC 9458 §6.1, §6.5.2)."""

    @abc.abstractmethod
    async def prefetch(self, response: aiohttp.ClientResponse) -> bytes:
        """The body the flow reads before classifying the outer response."""

    @abc.abstractmethod
    def discard(self, response: aiohttp.ClientResponse) -> None:
        """Let go of a response the flow does not hand out."""

    @abc.abstractmethod
    async def date_offset(self, result: _R, now: float) -> float | None:
        """Server clock minus ours if ``result`` is the RFC 9458 §6.5.2 ``#date`` problem."""

    def close(self, result: _R) -> None:
        """Let go of a result the flow does not hand out."""

    async def _read_whole(self, response: aiohttp.ClientResponse, limit: int) -> bytes:
        async with response:  # read whole, then the connection goes back to the pool
            return await read_body(response, limit, ResponseDecryptionError)


class OneShot(Framing[InnerResponse]):
    """RFC 9458 encapsulation: the whole response is read, then opened."""

    headers: ClassVar[Mapping[str, str]] = {"Content-Type": REQUEST_MEDIA_TYPE}
    media_type = RESPONSE_MEDIA_TYPE
    not_ours = "the relay's answer is not an encapsulated response"

    def encapsulate(self, key: UsableKey, inner: bytes) -> tuple[bytes, Receive[InnerResponse]]:
        encapsulated, opener = encapsulate_request(key.config, inner, suite=key.suite)

        async def receive(
            response: aiohttp.ClientResponse, body: bytes, report: Report
        ) -> InnerResponse:
            report(len(body))
            return open_response(opener, body)

        return encapsulated, receive

    async def prefetch(self, response: aiohttp.ClientResponse) -> bytes:
        ok = response.status == 200
        return await self._read_whole(response, self.max_response_bytes if ok else _MAX_ERROR_BYTES)

    def discard(self, response: aiohttp.ClientResponse) -> None:
        response.release()

    async def date_offset(self, result: InnerResponse, now: float) -> float | None:
        return server_time_offset(result, now)


class Chunked(Framing[ResponseStream]):
    """Chunked OHTTP (chunked-08): the request is sent whole (the gateway answers only once
    its final chunk verified), the response is read chunk by chunk."""

    # chunked-08 §3: the chunked media type, marked Incremental; nothing else.
    headers: ClassVar[Mapping[str, str]] = {
        "Content-Type": CHUNKED_REQUEST_MEDIA_TYPE,
        "Incremental": "?1",
    }
    media_type = CHUNKED_RESPONSE_MEDIA_TYPE
    not_ours = "the relay's answer is not a chunked response"

    def encapsulate(self, key: UsableKey, inner: bytes) -> tuple[bytes, Receive[ResponseStream]]:
        encoder = ChunkedRequestEncoder(key.config, suite=key.suite)
        *chunks, last = whole_chunks(inner)  # each a size class when ``inner`` is padded
        sealed = [encoder.header(), *(encoder.chunk(chunk) for chunk in chunks)]
        encapsulated = b"".join(sealed) + encoder.final(last)

        async def receive(
            response: aiohttp.ClientResponse, body: bytes, report: Report
        ) -> ResponseStream:
            reader = ChunkedBody(response, encoder.response_decoder(), self.max_response_bytes)
            head, pending = await reader.head()
            report(reader.received)
            return ResponseStream(head, reader, pending)

        return encapsulated, receive

    async def prefetch(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status == 200 and response.content_type == self.media_type:
            return b""  # the stream is read as it arrives
        return await read_body(response, _MAX_ERROR_BYTES, ResponseDecryptionError)

    def discard(self, response: aiohttp.ClientResponse) -> None:
        response.close()  # possibly inside a message: the connection cannot be reused

    async def date_offset(self, result: ResponseStream, now: float) -> float | None:
        return await stream_date_offset(result, now)

    def close(self, result: ResponseStream) -> None:
        result.close()


class Relay:
    """The relay resource: posts encapsulated requests and classifies the outer responses."""

    def __init__(
        self,
        url: str,
        http: Callable[[], aiohttp.ClientSession],
        observer: Callable[[Exchange], None] | None,
        padding: str = Padding.CLASSES,
    ) -> None:
        self._url = url
        self._http = http
        self._observer = observer
        self._padding = Padding(padding)

    async def attempt(self, framing: Framing[_R], key: UsableKey, dated: bhttp.Request) -> _R:
        """One round trip of ``dated`` (which carries its Date) under ``key``."""
        # RFC 9292 §3.8 padding to a size class (ohttp.padding), in both framings.
        inner = pad_message(bhttp.encode_request(dated), self._padding)
        encapsulated, receive = framing.encapsulate(key, inner)
        with network_errors(RelayUnreachable()):
            response = await self._http().post(
                self._url,
                data=encapsulated,
                headers=framing.headers,
                skip_auto_headers=SKIP_AUTO_HEADERS,
                allow_redirects=False,
                timeout=framing.timeout,
            )
        try:
            outer = _outer_head(response)
            with network_errors(RelayUnreachable()):
                body = await framing.prefetch(response)

            def report(response_bytes: int) -> None:
                sizes = (len(inner), len(encapsulated), response_bytes)
                self._observe(outer, key, dated, sizes)

            if outer.status != 200 or outer.content_type != framing.media_type:
                report(len(body))
                if outer.status != 200:
                    raise _rejection(outer, body)
                raise ResponseDecryptionError(framing.not_ours)
            return await receive(response, body, report)
        except BaseException:
            framing.discard(response)
            raise

    def _observe(
        self,
        outer: _OuterHead,
        key: UsableKey,
        inner: bhttp.Request,
        sizes: tuple[int, int, int],  # inner request, encapsulated request, response bytes
    ) -> None:
        if self._observer is None:
            return
        inner_bytes, encapsulated_bytes, response_bytes = sizes
        self._observer(
            Exchange(
                relay_url=self._url,
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
                response_bytes=response_bytes,
            )
        )


def _outer_head(response: aiohttp.ClientResponse) -> _OuterHead:
    return _OuterHead(
        status=response.status,
        content_type=response.content_type,
        headers=tuple(response.headers.items()),
        sent_headers=tuple(response.request_info.headers.items()),
        local_address=_local_address(response),
    )


def _rejection(outer: _OuterHead, body: bytes) -> RelayRejected:
    key_problem = problem_type(outer.content_type, body) == PROBLEM_OHTTP_KEY
    if outer.status == 422 or (400 <= outer.status < 500 and key_problem):
        return KeyRejected(outer.status)
    return RelayRejected(outer.status)


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
