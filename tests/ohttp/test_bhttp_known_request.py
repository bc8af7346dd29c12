"""The known-length request fast path of ``decode_request`` against the state machine.

Both must agree on every input: the same message, or the same error class and message.
Inputs: the RFC 9292 vectors cut at every byte and with every bit flipped, under the default
limits and under tight ones.
"""

from __future__ import annotations

import pytest

from ohttp._bhttp_decode import _WholeRequest
from ohttp.bhttp import Limits, Request, decode_request
from tests.ohttp.test_bhttp import VECTORS

_KNOWN_REQUESTS = [bytes.fromhex(v["hex"]) for v in VECTORS
                   if v["type"] == "request" and v["hex"].startswith("00")]
_LIMITS = [Limits(), Limits(max_fields=1, max_field_section_bytes=40, max_content_bytes=4)]


def _by_machine(data: bytes, limits: Limits) -> object:
    decoder = _WholeRequest(limits)
    try:
        decoder.decode(data)
    except Exception as exc:  # compared by class and message
        return type(exc), str(exc)
    method, scheme, authority, path = decoder._control_data
    return Request(method, scheme, authority, path, decoder._headers, decoder.content(),
                   decoder._trailers)


def _by_fast_path(data: bytes, limits: Limits) -> object:
    try:
        return decode_request(data, limits)
    except Exception as exc:
        return type(exc), str(exc)


def _variants(data: bytes) -> list[bytes]:
    cuts = [data[:length] for length in range(1, len(data) + 1)]
    flips = []
    for index in range(1, len(data)):  # byte 0 stays 0: other framings skip the fast path
        for bit in range(8):
            flipped = bytearray(data)
            flipped[index] ^= 1 << bit
            flips.append(bytes(flipped))
    padded = [data + bytes(3), data + b"\x00\x01"]
    return cuts + flips + padded


def test_there_are_known_length_request_vectors() -> None:
    assert len(_KNOWN_REQUESTS) >= 1


@pytest.mark.parametrize("limits", _LIMITS, ids=["default-limits", "tight-limits"])
def test_fast_path_agrees_with_the_machine_on_every_variant(limits: Limits) -> None:
    compared = 0
    for vector in _KNOWN_REQUESTS:
        for data in _variants(vector):
            assert _by_fast_path(data, limits) == _by_machine(data, limits), data.hex()
            compared += 1
    assert compared > 1000
