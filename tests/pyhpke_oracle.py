"""HPKE base mode run by ``pyhpke``: the independent oracle for ``ohttp._hpke``.

The tests seal with one implementation and open with the other for every suite, and run the
RFC 9180 vectors on both; the micro-benchmark times the gateway through it for reference.
Contexts follow :class:`ohttp._hpke.Context`; a bad ``enc`` or ciphertext raises
:class:`~ohttp.errors.DecryptionError`, as the direct path does.
"""

from __future__ import annotations

import pyhpke

from ohttp import _hpke
from ohttp.errors import DecryptionError


class PyhpkeContext:
    """A pyhpke context behind the ``seal/open/export/sequence`` protocol."""

    __slots__ = ("_context", "_seq")

    def __init__(self, context: pyhpke.ContextInterface) -> None:
        self._context = context
        self._seq = 0

    @property
    def sequence(self) -> int:
        return self._seq

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        ciphertext = self._context.seal(plaintext, aad)
        self._seq += 1
        return ciphertext

    def open(self, ciphertext: bytes | memoryview, aad: bytes = b"") -> bytes:
        try:
            plaintext = self._context.open(bytes(ciphertext), aad)
        except pyhpke.PyHPKEError:
            raise DecryptionError() from None
        self._seq += 1
        return plaintext

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return self._context.export(exporter_context, length)


def _cipher_suite(suite: _hpke.Suite) -> pyhpke.CipherSuite:
    return pyhpke.CipherSuite.new(
        pyhpke.KEMId(suite.kem_id), pyhpke.KDFId(suite.kdf_id), pyhpke.AEADId(suite.aead_id)
    )


class Receiver:
    """SetupBaseR by pyhpke for one key, suite and info, the key deserialized once."""

    def __init__(self, key: _hpke.PrivateKey, suite: _hpke.Suite, info: bytes) -> None:
        if suite.kem_id != key.kem_id:
            raise ValueError("suite KEM does not match the key")
        self._suite = _cipher_suite(suite)
        self._key = self._suite.kem.deserialize_private_key(key.raw)
        self._n_enc = suite.n_enc
        self._info = info

    def setup(self, enc: bytes) -> _hpke.Context:
        """A bad ``enc`` raises :class:`DecryptionError`, as on the direct path."""
        if len(enc) != self._n_enc:
            raise DecryptionError()
        try:
            context = self._suite.create_recipient_context(enc, self._key, info=self._info)
        except Exception:  # pyhpke lets ValueError/cryptography errors through on a bad enc
            raise DecryptionError() from None
        return PyhpkeContext(context)


def receiver_setup(
    key: _hpke.PrivateKey, suite: _hpke.Suite, info: bytes, enc: bytes
) -> _hpke.Context:
    """SetupBaseR(enc, skR, info) by pyhpke; a bad ``enc`` raises :class:`DecryptionError`."""
    return Receiver(key, suite, info).setup(enc)


def sender_setup(
    key: _hpke.PublicKey,
    suite: _hpke.Suite,
    info: bytes,
    ephemeral_private_key: bytes | None = None,
) -> tuple[bytes, _hpke.Context]:
    """SetupBaseS(pkR, info) -> (enc, context) by pyhpke, the ephemeral key injectable."""
    if suite.kem_id != key.kem_id:
        raise ValueError("suite KEM does not match the key")
    cipher_suite = _cipher_suite(suite)
    eks = None
    if ephemeral_private_key is not None:
        private = cipher_suite.kem.deserialize_private_key(ephemeral_private_key)
        public = pyhpke.KEMKey.from_pyca_cryptography_key(private.raw.public_key())
        eks = pyhpke.KEMKeyPair(private, public)
    pkr = cipher_suite.kem.deserialize_public_key(key.raw)
    enc, context = cipher_suite.create_sender_context(pkr, info=info, eks=eks)
    return enc, PyhpkeContext(context)
