"""Chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp-08): incremental, single-use state
machines carrying opaque bytes (like :mod:`ohttp.encapsulation`, never Binary HTTP).

Client::

    encoder = ChunkedRequestEncoder(config)
    send(encoder.header()); send(encoder.chunk(part)); ...; send(encoder.final())
    decoder = encoder.response_decoder()
    for data in received: deliver(decoder.feed(data))   # plaintext chunks as they verify
    deliver(decoder.close())                            # raises unless the final chunk verified

Gateway::

    decoder = ChunkedRequestDecoder(key_ring)
    for data in received: handle(decoder.feed(data))
    handle(decoder.close())
    encoder = decoder.response_encoder()
    send(encoder.header()); send(encoder.chunk(part)); ...; send(encoder.final())

Wire format (§4, §5): a prefix (request: hdr || enc; response: response_nonce), then non-final
chunks ``varint(len(sealed)) || sealed`` and a final chunk ``0x00 || sealed`` that runs to the
end of the stream. Because only the end of the stream delimits the final chunk, decoders buffer
its bytes (bounded by :attr:`ChunkLimits.max_final_chunk`) and open it in ``close()``.

Decoder errors, all from :mod:`ohttp.errors`, and terminal (the same error is raised again by
any later call):

- :class:`EncapsulationError`: the stream ends inside the request header / ``enc`` or inside
  the response nonce (as for non-chunked messages);
- :class:`UnknownKeyError`, :class:`UnsupportedSuiteError`: request key lookup (RFC 9458
  §4.3 step 1), before any cryptography;
- :class:`DecryptionError`: HPKE/AEAD failure (bad ``enc``, tag, AAD, order, appended bytes),
  a non-final chunk too short to hold any plaintext (§6);
- :class:`ChunkedError`: a chunk longer than the configured maximum, a final chunk longer
  than its maximum, 256^Nn - 1 chunks already seen (§6.2), or a stream ending after the
  prefix without a final chunk (§7.1).

Nothing is ``complete`` before ``close()`` opened the final chunk with AAD "final" (§7.1).
Encoders concatenate: the bytes returned by ``header()``, ``chunk()`` and ``final()``, in call
order, are the message; if ``header()`` was not called, the first chunk carries the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from ohttp import _hpke
from ohttp.encapsulation import (
    CHUNKED_REQUEST_LABEL,
    CHUNKED_RESPONSE_LABEL,
    HEADER_LENGTH,
    request_info,
    select_key,
    sender_setup,
)
from ohttp.errors import (
    ChunkedError,
    ContextUsedError,
    DecryptionError,
    EncapsulationError,
    OHTTPError,
)
from ohttp.keys import GatewayKey, KeyConfig, KeyRing, SymmetricSuite
from ohttp.varint import decode_varint, encode_varint

__all__ = [
    "CHUNKED_REQUEST_MEDIA_TYPE",
    "CHUNKED_RESPONSE_MEDIA_TYPE",
    "DEFAULT_MAX_CHUNK",
    "ChunkLimits",
    "ChunkedRequestDecoder",
    "ChunkedRequestEncoder",
    "ChunkedResponseDecoder",
    "ChunkedResponseEncoder",
]

# §3, §8: a message/ohttp-chunked-req request is answered, when successful, with -res.
CHUNKED_REQUEST_MEDIA_TYPE = "message/ohttp-chunked-req"
CHUNKED_RESPONSE_MEDIA_TYPE = "message/ohttp-chunked-res"
# §3: implementations MUST accept chunks of 2^14 bytes of plaintext; senders SHOULD not exceed it.
DEFAULT_MAX_CHUNK = 1 << 14
_FINAL_AAD = b"final"  # §6.1, §6.2: the final chunk's AAD; other chunks have an empty AAD
_FINAL_INDICATOR = b"\x00"  # §4, §5: a zero length prefix marks the final chunk
_ENCODER_TOKEN = object()
_DECODER_TOKEN = object()


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """Plaintext bytes per chunk: the most a decoder accepts and an encoder produces.

    Both are at least 2^14 (§3 MUST). ``max_final_chunk`` bounds the final chunk, which a
    decoder buffers until ``close()`` because only the end of the stream delimits it.
    """

    max_chunk: int = DEFAULT_MAX_CHUNK
    max_final_chunk: int = DEFAULT_MAX_CHUNK

    def __post_init__(self) -> None:
        if self.max_chunk < DEFAULT_MAX_CHUNK or self.max_final_chunk < DEFAULT_MAX_CHUNK:
            raise ValueError("chunk limits must be at least 2**14 bytes")


def _chunk_count_limit(suite: _hpke.Suite) -> int:
    """Chunks never number 256^Nn or more (§6.2, §7.3), so a nonce is never reused.

    One below that, as the HPKE sequence number of RFC 9180 §5.2 (whose last value is
    reserved), so requests and responses share one bound.
    """
    return (1 << (8 * suite.nn)) - 1


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


# --- helpers shared with ohttp.encapsulation --------------------------------------------------
# --- encoders ---------------------------------------------------------------------------------


class _ChunkWriter:
    """Frames and seals chunks; subclasses supply the prefix and the sealing (§6.1 / §6.2)."""

    __slots__ = ("_finished", "_limits", "_prefix", "_prefix_sent", "_suite")

    def __init__(self, prefix: bytes, suite: _hpke.Suite, limits: ChunkLimits) -> None:
        self._prefix = prefix
        self._suite = suite
        self._limits = limits
        self._prefix_sent = False
        self._finished = False

    @property
    def finished(self) -> bool:
        """Whether ``final()`` was called: the message is entirely out."""
        return self._finished

    def header(self) -> bytes:
        """The message prefix; call it first, or the first chunk carries it."""
        if self._prefix_sent:
            raise ContextUsedError("chunked header already produced")
        return self._take_prefix()

    def chunk(self, plaintext: bytes) -> bytes:
        """``plaintext`` as non-final chunks of at most ``limits.max_chunk`` bytes each."""
        self._check_open()
        if not plaintext:  # §6: a non-final chunk MUST NOT contain a zero-length plaintext
            raise ValueError("a non-final chunk cannot be empty")
        return self._take_prefix() + self._sealed_chunks(bytes(plaintext))

    def final(self, plaintext: bytes = b"") -> bytes:
        """The final chunk (0x00 || Seal(aad="final")), after non-final chunks for any excess."""
        self._check_open()
        data = bytes(plaintext)
        cut = max(0, len(data) - self._limits.max_final_chunk)
        body = self._sealed_chunks(data[:cut]) if cut else b""
        self._check_count()
        sealed = self._seal(data[cut:], _FINAL_AAD)
        self._finished = True
        return self._take_prefix() + body + _FINAL_INDICATOR + sealed

    def _sealed_chunks(self, data: bytes) -> bytes:
        parts = []
        for piece in _split(data, self._limits.max_chunk):
            self._check_count()
            sealed = self._seal(piece, b"")
            parts.append(encode_varint(len(sealed)) + sealed)
        return b"".join(parts)

    def _take_prefix(self) -> bytes:
        if self._prefix_sent:
            return b""
        self._prefix_sent = True
        return self._prefix

    def _check_open(self) -> None:
        if self._finished:
            raise ContextUsedError("chunked message already finished")

    def _check_count(self) -> None:
        if self._sequence() >= _chunk_count_limit(self._suite):
            raise ChunkedError("too many chunks")

    def _sequence(self) -> int:
        raise NotImplementedError

    def _seal(self, plaintext: bytes, aad: bytes) -> bytes:
        raise NotImplementedError


class ChunkedRequestEncoder(_ChunkWriter):
    """Client side: seals a chunked request for ``config`` (§4, §6.1). Single use.

    ``suite`` defaults to the first pair of the config; ``ephemeral_private_key`` exists only
    to reproduce known vectors (a fresh key is generated otherwise).
    """

    __slots__ = ("_context", "_decoder_taken", "_enc")

    def __init__(
        self,
        config: KeyConfig,
        *,
        suite: SymmetricSuite | None = None,
        ephemeral_private_key: bytes | None = None,
        limits: ChunkLimits = ChunkLimits(),
    ) -> None:
        header, enc, context, hpke_suite = sender_setup(
            config, suite, CHUNKED_REQUEST_LABEL, ephemeral_private_key
        )
        super().__init__(header + enc, hpke_suite, limits)
        self._context = context
        self._enc = enc
        self._decoder_taken = False

    def response_decoder(self, *, limits: ChunkLimits = ChunkLimits()) -> ChunkedResponseDecoder:
        """The decoder of the one chunked response to this request (single use)."""
        if self._decoder_taken:
            raise ContextUsedError("response decoder already created")
        self._decoder_taken = True
        return ChunkedResponseDecoder(_DECODER_TOKEN, self._context, self._suite, self._enc, limits)

    def _sequence(self) -> int:
        return self._context.sequence

    def _seal(self, plaintext: bytes, aad: bytes) -> bytes:
        # §6.1: the HPKE context's own sequence number orders the chunks.
        return self._context.seal(plaintext, aad)


class ChunkedResponseEncoder(_ChunkWriter):
    """Gateway side: seals the chunked response to one request (§5, §6.2). Single use.

    Only :meth:`ChunkedRequestDecoder.response_encoder` creates it, so a response is always
    bound to a request.
    """

    __slots__ = ("_aead", "_counter", "key_id")

    def __init__(
        self,
        token: object,
        key_id: int,
        context: _hpke.Context,
        suite: _hpke.Suite,
        enc: bytes,
        *,
        response_nonce: bytes | None,
        limits: ChunkLimits,
    ) -> None:
        if token is not _ENCODER_TOKEN:
            raise TypeError("ChunkedResponseEncoder comes from ChunkedRequestDecoder only")
        if response_nonce is None:
            response_nonce = _hpke.random_response_nonce(suite)
        elif len(response_nonce) != _hpke.response_nonce_length(suite):
            raise ValueError("response nonce must have max(Nn, Nk) bytes")
        nonce = bytes(response_nonce)
        super().__init__(nonce, suite, limits)
        self.key_id = key_id
        self._aead = _hpke.derive_response_aead(context, suite, CHUNKED_RESPONSE_LABEL, enc, nonce)
        self._counter = 0

    def _sequence(self) -> int:
        return self._counter

    def _seal(self, plaintext: bytes, aad: bytes) -> bytes:
        # §6.2: chunk_nonce = aead_nonce XOR encode(Nn, counter) (AEADState XORs; never adds).
        sealed = self._aead.seal(self._counter, plaintext, aad)
        self._counter += 1
        return sealed


# --- decoders ---------------------------------------------------------------------------------


class _ChunkReader:
    """Parses prefix and chunks as bytes arrive; subclasses read the prefix and open chunks."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_complete",
        "_error",
        "_in_final",
        "_limits",
        "_ready",
        "_suite",
    )

    def __init__(self, limits: ChunkLimits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._suite: _hpke.Suite | None = None
        self._ready = False  # the prefix is read and the keys are set up
        self._in_final = False  # the zero length prefix was read; the rest is the final chunk
        self._closed = False
        self._complete = False
        self._error: OHTTPError | None = None

    @property
    def complete(self) -> bool:
        """True only once ``close()`` opened the final chunk with AAD "final" (§7.1)."""
        return self._complete

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the plaintext of every non-final chunk they complete."""
        self._check_usable()
        try:
            return self._feed(data)
        except OHTTPError as error:
            self._error = error
            raise

    def close(self) -> list[bytes]:
        """The stream ended: open the final chunk; return its plaintext (empty list if none).

        Raises unless a final chunk was received and verified.
        """
        self._check_usable()
        self._closed = True
        try:
            return self._close()
        except OHTTPError as error:
            self._error = error
            raise

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error.with_traceback(None)
        if self._closed:
            raise ContextUsedError("chunked decoder already closed")

    def _feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        position = 0
        if not self._ready:
            position = self._read_prefix(buffer)
            if not self._ready:
                return []
        plaintexts: list[bytes] = []
        while not self._in_final:
            chunk_end = self._next_chunk(buffer, position)
            if chunk_end is None:
                break
            start, position = chunk_end
            if start == position:  # the zero length prefix (§4, §5)
                self._in_final = True
                break
            plaintexts.append(self._open_chunk(bytes(buffer[start:position]), b""))
        del buffer[:position]
        if self._in_final:
            self._check_final_size()
        return plaintexts

    def _next_chunk(self, buffer: bytearray, position: int) -> tuple[int, int] | None:
        """(start, end) of the next complete chunk, start == end for the final indicator, or
        ``None`` when more bytes are needed. Lengths are checked before their bytes arrive."""
        if position >= len(buffer) or position + (1 << (buffer[position] >> 6)) > len(buffer):
            return None
        length, start = decode_varint(buffer, position)  # non-minimal accepted (§6)
        if length == 0:
            return start, start
        assert self._suite is not None
        if length > self._limits.max_chunk + self._suite.nt:
            raise ChunkedError("chunk too large")  # before waiting for (allocating) its bytes
        if length <= self._suite.nt:  # §6: a chunk without data is a decryption error
            raise DecryptionError()
        if start + length > len(buffer):
            return None
        return start, start + length

    def _check_final_size(self) -> None:
        assert self._suite is not None
        if len(self._buffer) > self._limits.max_final_chunk + self._suite.nt:
            raise ChunkedError("final chunk too large")

    def _open_chunk(self, sealed: bytes, aad: bytes) -> bytes:
        assert self._suite is not None
        if self._sequence() >= _chunk_count_limit(self._suite):  # §6.2, §7.3
            raise ChunkedError("too many chunks")
        plaintext = self._open(sealed, aad)
        if not plaintext and aad != _FINAL_AAD:  # §6: empty non-final chunk
            raise DecryptionError()
        return plaintext

    def _close(self) -> list[bytes]:
        if not self._ready:
            raise EncapsulationError(self._truncated_prefix_message())
        if not self._in_final:  # §7.1: no final chunk, so never complete
            raise ChunkedError("chunked message truncated")
        plaintext = self._open_chunk(bytes(self._buffer), _FINAL_AAD)
        self._buffer.clear()
        self._complete = True
        return [plaintext] if plaintext else []

    def _read_prefix(self, buffer: bytearray) -> int:
        """Consume the prefix if it has fully arrived (setting ``_ready``); return its length."""
        raise NotImplementedError

    def _truncated_prefix_message(self) -> str:
        raise NotImplementedError

    def _sequence(self) -> int:
        raise NotImplementedError

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        raise NotImplementedError


class ChunkedRequestDecoder(_ChunkReader):
    """Gateway side: opens a chunked request as it arrives (§4, §6.1). Single use.

    The key is looked up as soon as the 7-byte header is in (RFC 9458 §4.3 step 1), before
    any cryptography; ``now`` is the time used for key validity (default: the clock).
    """

    __slots__ = ("_context", "_enc", "_encoder_taken", "_key", "_keys", "_now")

    def __init__(
        self, keys: KeyRing, *, limits: ChunkLimits = ChunkLimits(), now: float | None = None
    ) -> None:
        super().__init__(limits)
        self._keys = keys
        self._now = now
        self._key: GatewayKey | None = None
        self._context: _hpke.Context | None = None
        self._enc = b""
        self._encoder_taken = False

    @property
    def key_id(self) -> int | None:
        """The key id of the request once its header is in (for metrics), else ``None``."""
        return None if self._key is None else self._key.key_id

    @property
    def enc(self) -> bytes:
        """The request's encapsulated KEM key once its prefix is in (else ``b""``).

        Unique per request: the replay-cache key (RFC 9458 §6.5), as for non-chunked requests.
        """
        return self._enc

    def response_encoder(
        self, *, response_nonce: bytes | None = None, limits: ChunkLimits = ChunkLimits()
    ) -> ChunkedResponseEncoder:
        """The encoder of the one chunked response (single use; needs the request header).

        Available before the request is complete; whether to answer before ``complete`` is
        the caller's decision (§7.1, §7.2).
        """
        if self._encoder_taken:
            raise ContextUsedError("response encoder already created")
        if self._key is None or self._context is None or self._suite is None:
            raise ContextUsedError("request header not received")
        encoder = ChunkedResponseEncoder(
            _ENCODER_TOKEN,
            self._key.key_id,
            self._context,
            self._suite,
            self._enc,
            response_nonce=response_nonce,
            limits=limits,
        )
        self._encoder_taken = True  # only once created: a bad nonce does not use it up
        return encoder

    def _read_prefix(self, buffer: bytearray) -> int:
        if len(buffer) < HEADER_LENGTH:
            return 0
        if self._key is None:
            header = bytes(buffer[:HEADER_LENGTH])
            self._key, self._suite = select_key(self._keys, header, self._now)
        assert self._suite is not None
        enc_end = HEADER_LENGTH + self._suite.n_enc
        if len(buffer) < enc_end:
            return 0
        header = bytes(buffer[:HEADER_LENGTH])
        self._enc = bytes(buffer[HEADER_LENGTH:enc_end])
        receiver = self._key.hpke_private_key.receiver(
            self._suite, request_info(CHUNKED_REQUEST_LABEL, header)
        )
        self._context = receiver.setup(self._enc)  # DecryptionError for an invalid enc
        self._ready = True
        return enc_end

    def _truncated_prefix_message(self) -> str:
        return "encapsulated request truncated"

    def _sequence(self) -> int:
        assert self._context is not None
        return self._context.sequence

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        assert self._context is not None
        return self._context.open(sealed, aad)  # §6.1: the context's sequence number


class ChunkedResponseDecoder(_ChunkReader):
    """Client side: opens the chunked response to one request (§5, §6.2). Single use.

    Only :meth:`ChunkedRequestEncoder.response_decoder` creates it.
    """

    __slots__ = ("_aead", "_context", "_counter", "_enc")

    def __init__(
        self,
        token: object,
        context: _hpke.Context,
        suite: _hpke.Suite,
        enc: bytes,
        limits: ChunkLimits,
    ) -> None:
        if token is not _DECODER_TOKEN:
            raise TypeError("ChunkedResponseDecoder comes from ChunkedRequestEncoder only")
        super().__init__(limits)
        self._suite = suite
        self._context = context
        self._enc = enc
        self._aead: _hpke.AEADState | None = None
        self._counter = 0

    def _read_prefix(self, buffer: bytearray) -> int:
        assert self._suite is not None
        nonce_length = _hpke.response_nonce_length(self._suite)
        if len(buffer) < nonce_length:
            return 0
        self._aead = _hpke.derive_response_aead(
            self._context,
            self._suite,
            CHUNKED_RESPONSE_LABEL,
            self._enc,
            bytes(buffer[:nonce_length]),
        )
        self._ready = True
        return nonce_length

    def _truncated_prefix_message(self) -> str:
        return "encapsulated response truncated"

    def _sequence(self) -> int:
        return self._counter

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        assert self._aead is not None
        plaintext = self._aead.open(self._counter, sealed, aad)  # nonce = base XOR counter
        self._counter += 1
        return plaintext
