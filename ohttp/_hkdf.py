"""HKDF (RFC 5869) and HPKE's LabeledExtract / LabeledExpand (RFC 9180 §4), on ``cryptography``'s
HMAC. Split out of :mod:`ohttp._hpke`, which re-exports :func:`extract` and :func:`expand`."""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes, hmac

__all__ = ["HPKE_VERSION", "Labeled", "expand", "extract"]

HPKE_VERSION = b"HPKE-v1"


def _hmac(key: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    mac = hmac.HMAC(key, algorithm)
    mac.update(data)
    return mac.finalize()


def extract(algorithm: hashes.HashAlgorithm, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract; an empty salt means Nh zero bytes (RFC 5869 §2.2), which HMAC pads to."""
    return _hmac(salt, ikm, algorithm)


_NO_KEY = b""


def expand(
    algorithm: hashes.HashAlgorithm,
    prk: bytes,
    info: bytes,
    length: int,
    prk_mac: hmac.HMAC | None = None,
) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3); ``prk_mac`` is HMAC already keyed with ``prk``."""
    digest_size = algorithm.digest_size
    if length > 255 * digest_size:
        raise ValueError("HKDF-Expand length too large")
    keyed = hmac.HMAC(prk, algorithm) if prk_mac is None else prk_mac
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        mac = keyed.copy()
        mac.update(block + info + bytes((counter,)))
        block = mac.finalize()
        output += block
        counter += 1
    return output[:length]


class Labeled:
    """LabeledExtract / LabeledExpand (RFC 9180 §4) for one hash and suite id.

    Speed without changing a single output bit: the empty-salt HMAC state is keyed once and
    copied, and a PRK feeding several expansions is keyed once (``keyed``) and copied per
    expansion, which is cheaper than keying HMAC again.
    """

    __slots__ = ("_empty_salt", "algorithm", "prefix")

    def __init__(self, algorithm: hashes.HashAlgorithm, suite_id: bytes) -> None:
        self.algorithm = algorithm
        self.prefix = HPKE_VERSION + suite_id
        self._empty_salt = hmac.HMAC(b"", algorithm)

    def extract(self, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        mac = hmac.HMAC(salt, self.algorithm) if salt else self._empty_salt.copy()
        mac.update(self.prefix + label + ikm)
        return mac.finalize()

    def keyed(self, prk: bytes) -> hmac.HMAC:
        return hmac.HMAC(prk, self.algorithm)

    def expand_info(self, label: bytes, length: int) -> bytes:
        """The constant head of ``labeled_info``: I2OSP(L, 2) || "HPKE-v1" || suite_id || label."""
        return struct.pack(">H", length) + self.prefix + label

    def expand_keyed(
        self, prk_mac: hmac.HMAC, head: bytes, info: bytes, length: int, *, last: bool = False
    ) -> bytes:
        """LabeledExpand with a keyed PRK and a precomputed :meth:`expand_info` head; with
        ``last`` the keyed state is consumed instead of copied."""
        if length <= self.algorithm.digest_size:
            mac = prk_mac if last else prk_mac.copy()
            mac.update(head + info + b"\x01")
            return mac.finalize()[:length]
        return expand(self.algorithm, _NO_KEY, head + info, length, prk_mac)

    def expand(self, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        head = self.expand_info(label, length)
        return self.expand_keyed(self.keyed(prk), head, info, length, last=True)
