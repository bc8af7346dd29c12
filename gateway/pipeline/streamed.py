"""The streamed path: chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08).

A chunked request is decrypted as it arrives; once its final chunk verified it is answered as
a ``200 message/ohttp-chunked-res``, forwarding the backend's body as it is produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from time import perf_counter

from gateway.backends.base import StreamedResponse, StreamingBackend, encode_head, encode_response
from gateway.errors import BackendError, BodyTooLarge, InnerError, Result, inner_reply
from gateway.pipeline.deadlines import each_within
from gateway.pipeline.oneshot import at_backend, check_inner
from gateway.pipeline.state import GatewayState, finish
from ohttp import bhttp
from ohttp.chunked import CHUNKED_RESPONSE_MEDIA_TYPE as OHTTP_CHUNKED_RES
from ohttp.chunked import ChunkedRequestDecoder, ChunkedResponseEncoder, ChunkLimits
from ohttp.errors import EncapsulationError, OHTTPError
from ohttp.padding import ChunkPadder, pad_message, whole_chunks

__all__ = ["StreamAborted", "StreamedAnswer", "answer_chunked"]

logger = logging.getLogger("gateway")

# draft-ietf-ohai-chunked-ohttp-08 §3: a chunked response is marked with the Incremental field so
# intermediaries forward each part as it arrives instead of buffering the whole message.
_CHUNKED_RES_HEADERS: Mapping[str, str] = {
    "Content-Type": OHTTP_CHUNKED_RES,
    "Incremental": "?1",
}


class StreamAborted(Exception):
    """The chunked response failed after its first byte was handed out.

    The transport must end the connection without ending the HTTP message, so that the
    client sees truncation: the response has no final chunk and never verifies as complete
    (chunked-08 §7.1).
    """

    def __init__(self) -> None:
        super().__init__("response stream aborted")


@dataclass(frozen=True, slots=True)
class _BodyStream:
    """The backend's body still to be sent, and the Binary HTTP framing it goes in."""

    streamed: StreamedResponse
    framer: bhttp.StreamingResponseEncoder
    padder: ChunkPadder  # cuts the framed stream into chunks of class sizes (ohttp.padding)


class StreamedAnswer:
    """A ``200 message/ohttp-chunked-res`` answer, produced while it is sent.

    Iterate it and write (and flush) each piece as it comes; the first piece carries the
    inner status and header fields. ``StreamAborted`` from the iteration means: abort the
    connection. Always ``aclose()`` it, also when the client went away: that releases the
    backend and accounts for the request.
    """

    status = 200
    headers = _CHUNKED_RES_HEADERS

    def __init__(
        self,
        state: GatewayState,
        started: float,
        encoder: ChunkedResponseEncoder,
        first: bytes,
        *,
        rest: _BodyStream | None,
        result: Result,
    ) -> None:
        self._state = state
        self._started = started
        self._encoder = encoder
        self._first = first
        self._rest = rest
        self._final_result = result
        self._result: Result | None = None  # None until the stream ended either way
        self._iterator: AsyncGenerator[bytes, None] | None = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is not None or self._closed:
            raise RuntimeError("a streamed answer is iterated once")
        self._iterator = self._pieces()
        return self._iterator

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        rest = self._rest
        if rest is None:  # the whole inner response is in the first piece
            self._result = self._final_result
            yield self._first
            return
        yield self._first
        encoder, framer, padder = self._encoder, rest.framer, rest.padder
        try:
            async for piece in each_within(rest.streamed.body, self._state.deadlines.run):
                # An empty piece makes no chunk (chunked-08 §6): the padder returns none.
                for plaintext in padder.feed(framer.content(piece)):
                    yield encoder.chunk(plaintext)
            final = encoder.final(padder.final(framer.end()))
        except TimeoutError:
            self._result = Result.BACKEND_TIMEOUT
            raise StreamAborted() from None
        except Exception as exc:  # the backend seam: anything failing there ends the stream
            logger.warning("backend_stream_failed", extra={"error": type(exc).__name__})
            self._result = Result.BACKEND_ERROR
            raise StreamAborted() from None
        self._result = Result.OK
        yield final

    async def aclose(self) -> None:
        """Release the backend's stream and account for the request (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._iterator is not None:
                await self._iterator.aclose()
            if self._rest is not None:
                await self._rest.streamed.aclose()
        except Exception as exc:  # closing a failed backend stream must not mask the answer
            logger.warning("backend_close_failed", extra={"error": type(exc).__name__})
        finally:
            finish(self._state, self._started, self._result)


async def answer_chunked(
    state: GatewayState,
    content_length: int | None,
    chunks: AsyncIterable[bytes],
    started: float,
) -> StreamedAnswer:
    """Decrypt a chunked request, then answer it as a chunked response (chunked-08 §3).

    Errors before the request is complete raise (plain 4xx, as for ``message/ohttp-req``);
    after that every answer is a chunked response, an inner error included.
    """
    accepted = state.config.max_chunk
    decoder = ChunkedRequestDecoder(
        state.keys.ring, limits=ChunkLimits(max_chunk=accepted, max_final_chunk=accepted)
    )
    inner = await _read_chunked_request(state, decoder, content_length, chunks)
    # chunked-08 §7.1: only now, with the final chunk verified, is the request complete.
    encoder = decoder.response_encoder()
    try:
        request = bhttp.decode_request(inner, state.limits)
        # key_id is known once the header is read, which it is here
        record = check_inner(state, request, decoder.enc, decoder.key_id or 0)
        if record is not None:
            await record
        if state.tokens is not None:  # Privacy Pass: after decapsulation, before the backend
            request = await state.tokens.check(request)
        backend_started = perf_counter()
        first, rest = await _backend_head(state, request, encoder)
        state.metrics.backend_seconds.observe(perf_counter() - backend_started)
    except (InnerError, OHTTPError) as exc:
        reply = inner_reply(exc)
        first = _sealed_whole(encoder, reply.encoded, state.config.padding)
        return StreamedAnswer(state, started, encoder, first, rest=None, result=reply.result)
    return StreamedAnswer(state, started, encoder, first, rest=rest, result=Result.OK)


async def _read_chunked_request(
    state: GatewayState,
    decoder: ChunkedRequestDecoder,
    content_length: int | None,
    chunks: AsyncIterable[bytes],
) -> bytes:
    """The request's plaintext, once its final chunk verified."""
    limit = state.config.max_body
    plaintext = bytearray()
    size = 0
    crypto_seconds = 0.0
    async for piece in chunks:
        size += len(piece)
        if size > limit:  # enforced while reading when no Content-Length bounds it
            raise BodyTooLarge()
        crypto_seconds += await _feed(decoder, piece, plaintext)
    if size == 0:
        raise EncapsulationError("empty request")
    if content_length is not None and size != content_length:
        raise EncapsulationError("request body truncated")
    opened = perf_counter()
    for part in decoder.close():  # raises unless the final chunk verified
        plaintext += part
    state.metrics.decapsulate_seconds.observe(crypto_seconds + perf_counter() - opened)
    return bytes(plaintext)


# Issue 13, finding 4: a piece of the smallest chunks costs an AEAD operation per 18 bytes;
# fed in slices with a yield between them, no piece blocks the loop for long (~3 ms a slice).
_FEED_SLICE = 8192


async def _feed(decoder: ChunkedRequestDecoder, piece: bytes, plaintext: bytearray) -> float:
    """Decrypt what ``piece`` completes into ``plaintext``; the seconds spent decrypting."""
    spent = 0.0
    for start in range(0, len(piece), _FEED_SLICE):
        if start:
            await asyncio.sleep(0)
        opened = perf_counter()
        for part in decoder.feed(piece[start : start + _FEED_SLICE]):  # each chunk completed
            plaintext += part
        spent += perf_counter() - opened
    return spent


async def _backend_head(
    state: GatewayState, request: bhttp.Request, encoder: ChunkedResponseEncoder
) -> tuple[bytes, _BodyStream | None]:
    """The first piece of the chunked response, and the backend stream still to be sent.

    A backend that cannot stream answers in one piece, its response in the final chunk.
    """
    backend = state.backend
    if not isinstance(backend, StreamingBackend):
        response = await at_backend(state, partial(state.backend.handle, request))
        return _sealed_whole(encoder, encode_response(response), state.config.padding), None
    streamed = await at_backend(state, partial(backend.stream, request))
    framer = bhttp.StreamingResponseEncoder()  # indeterminate length: the size is not known
    try:
        head = encode_head(framer, streamed.status, streamed.headers)
    except BackendError:  # a field the backend sent cannot be encoded: a 502, nothing sent
        await streamed.aclose()
        raise
    padder = ChunkPadder(state.config.padding)
    first = [encoder.header(), *(encoder.chunk(plaintext) for plaintext in padder.feed(head))]
    return b"".join(first), _BodyStream(streamed, framer, padder)


def _sealed_whole(encoder: ChunkedResponseEncoder, encoded: bytes, padding: str) -> bytes:
    """A whole response, padded to its class, in chunks of class sizes (ohttp.padding)."""
    *chunks, last = whole_chunks(pad_message(encoded, padding))
    sealed = [encoder.header(), *(encoder.chunk(chunk) for chunk in chunks)]
    return b"".join(sealed) + encoder.final(last)
