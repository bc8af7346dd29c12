"""Request and response encapsulation (RFC 9458 §4); the messages are opaque bytes here.

Gateway::

    request, sealer = decapsulate_request(key_ring, body)
    ...
    body = sealer.seal(response)

Client::

    body, opener = encapsulate_request(config, request)
    ...
    response = opener.open(body)

Decapsulation errors are checked in the order of RFC 9458 §4.3: a header shorter than 7 bytes
(:class:`EncapsulationError`), the key id and KEM (:class:`UnknownKeyError`), the (KDF, AEAD)
pair (:class:`UnsupportedSuiteError`), then ``enc`` and the ciphertext too short for the
suite (:class:`EncapsulationError`) and finally the HPKE work (:class:`DecryptionError`).
All three :class:`~ohttp.errors.DecapsulationError` kinds carry the same fixed message.
"""

from __future__ import annotations

import struct

from ohttp import _hpke
from ohttp.errors import (
    ContextUsedError,
    EncapsulationError,
    UnknownKeyError,
    UnsupportedSuiteError,
)
from ohttp.keys import GatewayKey, KeyConfig, KeyRing, SymmetricSuite

__all__ = [
    "CHUNKED_REQUEST_LABEL",
    "CHUNKED_RESPONSE_LABEL",
    "HEADER_LENGTH",
    "REQUEST_LABEL",
    "REQUEST_MEDIA_TYPE",
    "RESPONSE_LABEL",
    "RESPONSE_MEDIA_TYPE",
    "ClientResponseOpener",
    "ResponseSealer",
    "decapsulate_request",
    "encapsulate_request",
    "request_header",
    "request_info",
    "select_key",
    "sender_setup",
]

# The media types of RFC 9458 §9.1-9.2 (chunked ones: ``ohttp.chunked``).
REQUEST_MEDIA_TYPE = "message/ohttp-req"
RESPONSE_MEDIA_TYPE = "message/ohttp-res"

# The labels, in one place (RFC 9458 §4.3-4.4; draft-ietf-ohai-chunked-ohttp-08 §6).
REQUEST_LABEL = b"message/bhttp request"
RESPONSE_LABEL = b"message/bhttp response"
CHUNKED_REQUEST_LABEL = b"message/bhttp chunked request"
CHUNKED_RESPONSE_LABEL = b"message/bhttp chunked response"

HEADER_LENGTH = 7  # key_id(1) kem_id(2) kdf_id(2) aead_id(2), RFC 9458 §4.1
_HEADER = struct.Struct(">BHHH")
_SEALER_TOKEN = object()


def request_header(key_id: int, kem_id: int, kdf_id: int, aead_id: int) -> bytes:
    """hdr = key_id || kem_id || kdf_id || aead_id (RFC 9458 §4.3)."""
    return _HEADER.pack(key_id, kem_id, kdf_id, aead_id)


def request_info(label: bytes, header: bytes) -> bytes:
    """info = label || 0x00 || hdr (RFC 9458 §4.3)."""
    return label + b"\x00" + header


class ClientResponseOpener:
    """Opens the one Encapsulated Response answering a request (RFC 9458 §4.4). Single use."""

    __slots__ = ("_context", "_enc", "_suite", "_used")

    def __init__(self, context: _hpke.Context, suite: _hpke.Suite, enc: bytes) -> None:
        self._context = context
        self._suite = suite
        self._enc = enc
        self._used = False

    def open(self, encapsulated_response: bytes) -> bytes:
        """The response plaintext; EncapsulationError if truncated, DecryptionError if bad."""
        if self._used:
            raise ContextUsedError("response opener already used")
        self._used = True
        data = bytes(encapsulated_response)
        nonce_length = _hpke.response_nonce_length(self._suite)
        if len(data) < nonce_length + self._suite.nt:
            raise EncapsulationError("encapsulated response truncated")
        nonce = data[:nonce_length]
        aead = _hpke.derive_response_aead(
            self._context, self._suite, RESPONSE_LABEL, self._enc, nonce
        )
        return aead.open(0, memoryview(data)[nonce_length:])


class ResponseSealer:
    """Seals the one response to a decapsulated request (RFC 9458 §4.4). Single use.

    Only :func:`decapsulate_request` creates it, so a response is always bound to a request.
    """

    __slots__ = ("_context", "_enc", "_suite", "_used", "key_id")

    def __init__(
        self,
        token: object,
        key_id: int,
        context: _hpke.Context,
        suite: _hpke.Suite,
        enc: bytes,
    ) -> None:
        if token is not _SEALER_TOKEN:
            raise TypeError("ResponseSealer comes from decapsulate_request only")
        self.key_id = key_id
        self._context = context
        self._suite = suite
        self._enc = enc
        self._used = False

    @property
    def enc(self) -> bytes:
        """The request's encapsulated KEM key: unique per request, the replay-cache key (§6.5)."""
        return self._enc

    def seal(self, response: bytes, *, response_nonce: bytes | None = None) -> bytes:
        """response_nonce || Seal(key, nonce, "", response); the nonce is random by default."""
        if self._used:
            raise ContextUsedError("response sealer already used")
        if response_nonce is None:
            response_nonce = _hpke.random_response_nonce(self._suite)
        elif len(response_nonce) != _hpke.response_nonce_length(self._suite):
            raise ValueError("response nonce must have max(Nn, Nk) bytes")
        self._used = True
        aead = _hpke.derive_response_aead(
            self._context, self._suite, RESPONSE_LABEL, self._enc, bytes(response_nonce)
        )
        return bytes(response_nonce) + aead.seal(0, response)


def sender_setup(
    config: KeyConfig,
    suite: SymmetricSuite | None,
    label: bytes,
    ephemeral_private_key: bytes | None,
) -> tuple[bytes, bytes, _hpke.Context, _hpke.Suite]:
    """SetupBaseS for ``config`` with ``label``: (hdr, enc, context, suite); RFC 9458 §4.3.

    ``suite`` defaults to the first pair of the config. Shared with ``ohttp.chunked``.
    """
    chosen = config.suites[0] if suite is None else suite
    if chosen not in config.suites:
        raise ValueError("suite not offered by this key configuration")
    hpke_suite = _hpke.get_suite(config.kem, chosen.kdf, chosen.aead)
    header = request_header(config.key_id, config.kem, chosen.kdf, chosen.aead)
    sender = config.hpke_public_key.sender(hpke_suite, request_info(label, header))
    enc, context = sender.setup(ephemeral_private_key)
    return header, enc, context, hpke_suite


def encapsulate_request(
    config: KeyConfig,
    request: bytes,
    *,
    suite: SymmetricSuite | None = None,
    ephemeral_private_key: bytes | None = None,
) -> tuple[bytes, ClientResponseOpener]:
    """Encapsulate ``request`` for ``config`` (RFC 9458 §4.3).

    ``suite`` defaults to the first pair of the config; ``ephemeral_private_key`` exists only
    to reproduce known vectors (a fresh key is generated otherwise).
    """
    header, enc, context, hpke_suite = sender_setup(
        config, suite, REQUEST_LABEL, ephemeral_private_key
    )
    ciphertext = context.seal(request)  # aad is empty (RFC 9458 §4.3)
    return header + enc + ciphertext, ClientResponseOpener(context, hpke_suite, enc)


def select_key(
    keys: KeyRing, header: bytes | memoryview, now: float | None = None
) -> tuple[GatewayKey, _hpke.Suite]:
    """RFC 9458 §4.3 step 1 on the first 7 bytes, before any cryptography runs.

    EncapsulationError if shorter than 7 bytes; UnknownKeyError when the key id is unknown
    (or expired) or its KEM differs; UnsupportedSuiteError when (KDF, AEAD) is not offered.
    Shared with ``ohttp.chunked``.
    """
    if len(header) < HEADER_LENGTH:
        raise EncapsulationError("encapsulated request truncated")
    key_id, kem_id, kdf_id, aead_id = _HEADER.unpack_from(header)
    key = keys.get(key_id, now)
    if key is None or key.config.kem != kem_id:  # §4.3 step 1a
        raise UnknownKeyError()
    suite = key.offered_suite(kdf_id, aead_id)
    if suite is None:  # §4.3 step 1b
        raise UnsupportedSuiteError()
    return key, suite


def decapsulate_request(
    keys: KeyRing, encapsulated_request: bytes, *, now: float | None = None
) -> tuple[bytes, ResponseSealer]:
    """Decapsulate a request (RFC 9458 §4.3): the plaintext and the sealer for its response."""
    data = bytes(encapsulated_request)
    key, suite = select_key(keys, data, now)
    enc_end = HEADER_LENGTH + suite.n_enc
    if len(data) < enc_end + suite.nt:
        raise EncapsulationError("encapsulated request truncated")
    header = data[:HEADER_LENGTH]
    enc = data[HEADER_LENGTH:enc_end]
    receiver = key.hpke_private_key.receiver(suite, request_info(REQUEST_LABEL, header))
    context = receiver.setup(enc)  # DecryptionError for invalid or small-order enc
    # A memoryview: no copy of a large ciphertext before AES-GCM reads it.
    request = context.open(memoryview(data)[enc_end:])  # DecryptionError: bad tag, wrong info
    return request, ResponseSealer(_SEALER_TOKEN, key.key_id, context, suite, enc)
