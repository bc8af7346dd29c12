"""Padding against size analysis: Binary HTTP messages padded to size classes (RFC 9292 §3.8).

The relay sees the length of every encapsulated message. Padding the inner Binary HTTP message
with trailing zero bytes (RFC 9292 §3.8; every decoder accepts and ignores them, in both
framings) makes that length one of a few classes, so "summarise 400 messages" and "fix this
sentence" look alike when they land in the same class.

What is padded: the encoded inner Binary HTTP message, padding included, has a class size.
The encapsulation adds a fixed overhead for a given key configuration, so the relay sees:

* a one-shot request: ``7 + Nenc + class + Nt`` bytes (RFC 9458 §4.3; 55 for X25519 and a
  16-byte tag); a one-shot response: ``max(Nn, Nk) + class + Nt`` (RFC 9458 §4.4);
* a chunked message (draft-ietf-ohai-chunked-ohttp-08): every chunk's plaintext has a class
  size, so each chunk is ``varint(class + Nt) + class + Nt`` bytes after the header.

The classes (smallest 256 bytes, at least 64 bytes apart, as issue #17 asks):

* multiples of 256 bytes up to 4 KiB (256, 512, ..., 4096). Most prompts and short answers
  encode to under 256 bytes: they are all one class. The step bounds the waste at 255 bytes per
  message, which is small next to the fixed HPKE and TCP/TLS overheads, while a finer step
  would split short messages into many classes that tell them apart;
* then doubling classes, each a power of two less 1/64th: 63 * 2**j bytes (8064, 16128,
  32256, ..., 1 MiB - 16 KiB, ...). Above 4 KiB a fixed step would make the number of classes
  grow with the size; doubling keeps it logarithmic, so one class holds every message within
  a factor of two, at a cost below 2x (a body of uniformly random length pays about a third
  on average). The 1/64th is headroom for the encapsulation: body limits are usually powers
  of two (the gateway's 1 MiB ``max_body``, the client's 32 MiB response limit), and a class
  plus the HPKE overhead (under 1.7 KiB for every KEM, post-quantum ones included) plus the
  chunk framing (20 bytes per 16 KiB) stays below the next power of two, for limits of 128 KiB
  and more (for X25519, at every size). So padding never pushes a message over such a limit
  unless it was already within 1/64th of it.

Chunked messages: RFC 9292 only allows padding at the end of a message, so a non-final chunk
cannot carry padding. A message known whole is padded to its class and cut into chunks of the
largest class within the chunk size (:func:`whole_chunks`; larger classes are multiples of
it). A message produced piece by piece goes through :class:`ChunkPadder`, which cuts it into
chunks whose sizes are classes, holding back what does not yet fill the smallest class; the
final chunk carries the rest and is padded. That hides the size of each piece but not the
length of a long stream, which the sum of its chunks gives to within 256 bytes. The cost is
latency: a stream of small pieces is sent in pieces of at least 256 bytes. ``Padding.NONE``
sends every piece at once, unpadded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "LINEAR_LIMIT",
    "LINEAR_STEP",
    "MIN_CLASS",
    "ChunkPadder",
    "Padding",
    "class_floor",
    "pad_message",
    "padded_size",
    "whole_chunks",
]

MIN_CLASS: Final = 256  # short messages all look alike
LINEAR_STEP: Final = 256  # classes up to LINEAR_LIMIT are multiples of this
LINEAR_LIMIT: Final = 4096  # above it, classes are 63 * 2**j (powers of two less 1/64th)
_UNIT: Final = 63
_FIRST_DOUBLING: Final = _UNIT << 7  # 8064, the first class above LINEAR_LIMIT
_DEFAULT_MAX_CHUNK: Final = 1 << 14  # chunked-08 §3: every receiver accepts this much


class Padding(StrEnum):
    """``--padding``: ``classes`` (the default) pads to the size classes; ``none`` does not."""

    NONE = "none"
    CLASSES = "classes"


def padded_size(size: int) -> int:
    """The smallest class that holds ``size`` bytes."""
    if size < 0:
        raise ValueError("negative size")
    if size <= LINEAR_LIMIT:
        return max(MIN_CLASS, -(-size // LINEAR_STEP) * LINEAR_STEP)
    return _UNIT << (-(-size // _UNIT) - 1).bit_length()


def class_floor(size: int) -> int:
    """The largest class not above ``size`` (0 if ``size`` is below the smallest class)."""
    if size < MIN_CLASS:
        return 0
    if size < _FIRST_DOUBLING:
        return min(size, LINEAR_LIMIT) // LINEAR_STEP * LINEAR_STEP
    return _UNIT << ((size // _UNIT).bit_length() - 1)


def pad_message(encoded: bytes, padding: str = Padding.CLASSES) -> bytes:
    """``encoded`` (a whole Binary HTTP message) followed by zero bytes up to its class
    (RFC 9292 §3.8); unchanged with ``Padding.NONE``."""
    if padding == Padding.CLASSES:  # compared, not converted: an enum lookup costs ~1 us
        return encoded + bytes(padded_size(len(encoded)) - len(encoded))
    if padding == Padding.NONE:
        return encoded
    raise ValueError(f"unknown padding {padding!r}")


def whole_chunks(message: bytes, *, max_chunk: int = _DEFAULT_MAX_CHUNK) -> list[bytes]:
    """A whole (padded) message as chunk plaintexts, the last one for the final chunk.

    A padded message of a class up to ``max_chunk`` is one chunk; a larger class is a
    multiple of the largest class within ``max_chunk``, so every chunk is that class.
    """
    size = class_floor(max_chunk)
    if size == 0:
        raise ValueError("max_chunk is below the smallest class")
    return [message[start : start + size] for start in range(0, len(message), size)] or [b""]


class ChunkPadder:
    """Cuts one Binary HTTP message, produced piece by piece, into chunk plaintexts of class
    sizes (sans-IO; the caller seals each one as a chunk).

    ``feed`` returns the non-final chunks that are ready, each a class of at most
    ``max_chunk`` bytes, and keeps less than the smallest class back; ``final`` returns the
    final chunk: what was kept back, the message's last bytes and the padding. With
    ``Padding.NONE`` every piece is one chunk, sent at once, and nothing is padded.
    """

    __slots__ = ("_buffer", "_classes", "_max_chunk")

    def __init__(self, padding: str = Padding.CLASSES, *, max_chunk: int = _DEFAULT_MAX_CHUNK):
        self._classes = Padding(padding) is Padding.CLASSES
        self._max_chunk = class_floor(max_chunk)
        if self._max_chunk == 0:
            raise ValueError("max_chunk is below the smallest class")
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The non-final chunk plaintexts ready after ``data`` (possibly none)."""
        if not self._classes:
            return [data] if data else []
        buffer = self._buffer
        buffer += data
        ready: list[bytes] = []
        start = 0
        while (size := class_floor(min(len(buffer) - start, self._max_chunk))) > 0:
            ready.append(bytes(buffer[start : start + size]))
            start += size
        del buffer[:start]
        return ready

    def final(self, tail: bytes = b"") -> bytes:
        """The final chunk's plaintext: what was held back, ``tail`` and the padding."""
        rest = bytes(self._buffer) + tail
        self._buffer.clear()
        return pad_message(rest, Padding.CLASSES if self._classes else Padding.NONE)
