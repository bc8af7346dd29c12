"""Wire encodings of Privacy Pass token type 0x0002 (Blind RSA, 2048-bit).

- :class:`TokenChallenge` (RFC 9577 §2.1): ``token_type`` u16, ``issuer_name<1..2^16-1>``,
  ``redemption_context<0..32>`` (0 or 32 bytes), ``origin_info<0..2^16-1>``;
- :class:`TokenRequest` (RFC 9578 §6.1): ``token_type`` u16, ``truncated_token_key_id`` u8,
  ``blinded_msg[Nk]``;
- TokenResponse (RFC 9578 §6.2): ``blind_sig[Nk]``, just bytes;
- :class:`Token` (RFC 9577 §2.2, RFC 9578 §6.3): ``token_type`` u16, ``nonce[32]``,
  ``challenge_digest[32]``, ``token_key_id[32]``, ``authenticator[Nk]``.

Each ``decode`` is strict (exact lengths, no trailing bytes) and raises
:class:`~ohttp.privacypass.errors.TokenFormatError` with a fixed message.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ohttp.privacypass.errors import TokenFormatError

__all__ = [
    "NK",
    "TOKEN_TYPE_BLIND_RSA",
    "Token",
    "TokenChallenge",
    "TokenRequest",
]

TOKEN_TYPE_BLIND_RSA = 0x0002  # RFC 9578 §8.2.2
NK = 256  # RFC 9578 §6: the 2048-bit modulus length in bytes
_NONCE_LEN = _DIGEST_LEN = _KEY_ID_LEN = 32
_U16 = struct.Struct("!H")


class _Reader:
    """Reads length-prefixed fields; every shortfall is the same TokenFormatError."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data, self._offset, self._error = data, 0, TokenFormatError(f"malformed {what}")

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise self._error
        chunk, self._offset = self._data[self._offset : end], end
        return chunk

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def vector(self, length_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(length_bytes), "big"))

    def end(self) -> None:
        if self._offset != len(self._data):
            raise self._error


@dataclass(frozen=True)
class TokenChallenge:
    """What an origin asks for (RFC 9577 §2.1); ``encode()`` is what is hashed and sent."""

    token_type: int
    issuer_name: bytes
    redemption_context: bytes = b""
    origin_info: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.token_type <= 0xFFFF:
            raise TokenFormatError("malformed token challenge")
        if not 1 <= len(self.issuer_name) <= 0xFFFF or len(self.origin_info) > 0xFFFF:
            raise TokenFormatError("malformed token challenge")
        if len(self.redemption_context) not in (0, 32):  # RFC 9577 §2.1.1
            raise TokenFormatError("malformed token challenge")

    def encode(self) -> bytes:
        """The TokenChallenge bytes (RFC 9577 §2.1)."""
        return b"".join(
            (
                _U16.pack(self.token_type),
                _U16.pack(len(self.issuer_name)) + self.issuer_name,
                bytes([len(self.redemption_context)]) + self.redemption_context,
                _U16.pack(len(self.origin_info)) + self.origin_info,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> TokenChallenge:
        """Parse TokenChallenge bytes strictly."""
        reader = _Reader(data, "token challenge")
        challenge = cls(reader.u16(), reader.vector(2), reader.vector(1), reader.vector(2))
        reader.end()
        return challenge

    def digest(self) -> bytes:
        """``challenge_digest``: SHA-256 of the encoded challenge (RFC 9578 §6.1)."""
        return hashlib.sha256(self.encode()).digest()


@dataclass(frozen=True)
class TokenRequest:
    """A client's request to the issuer (RFC 9578 §6.1)."""

    token_type: int
    truncated_token_key_id: int
    blinded_msg: bytes

    def encode(self) -> bytes:
        """The TokenRequest bytes: 2 + 1 + Nk."""
        head = _U16.pack(self.token_type) + bytes([self.truncated_token_key_id])
        return head + self.blinded_msg

    @classmethod
    def decode(cls, data: bytes) -> TokenRequest:
        """Parse TokenRequest bytes; the length must be exactly 2 + 1 + Nk."""
        reader = _Reader(data, "token request")
        request = cls(reader.u16(), reader.take(1)[0], reader.take(NK))
        reader.end()
        return request


@dataclass(frozen=True)
class Token:
    """A Privacy Pass token (RFC 9577 §2.2), redeemed in ``Authorization: PrivateToken``."""

    token_type: int
    nonce: bytes
    challenge_digest: bytes
    token_key_id: bytes
    authenticator: bytes

    def __post_init__(self) -> None:
        sizes = (len(self.nonce), len(self.challenge_digest), len(self.token_key_id))
        if sizes != (_NONCE_LEN, _DIGEST_LEN, _KEY_ID_LEN) or not 0 <= self.token_type <= 0xFFFF:
            raise TokenFormatError("malformed token")

    def token_input(self) -> bytes:
        """What the authenticator signs: token_type || nonce || challenge_digest || key id."""
        return _U16.pack(self.token_type) + self.nonce + self.challenge_digest + self.token_key_id

    def encode(self) -> bytes:
        """The Token bytes: token input || authenticator."""
        return self.token_input() + self.authenticator

    @classmethod
    def decode(cls, data: bytes) -> Token:
        """Parse a type 0x0002 Token strictly (any other type: :class:`TokenFormatError`)."""
        reader = _Reader(data, "token")
        token_type = reader.u16()
        if token_type != TOKEN_TYPE_BLIND_RSA:  # the authenticator's size depends on the type
            raise TokenFormatError("unsupported token type")
        fields = (reader.take(_NONCE_LEN), reader.take(_DIGEST_LEN), reader.take(_KEY_ID_LEN))
        token = cls(token_type, *fields, reader.take(NK))
        reader.end()
        return token
