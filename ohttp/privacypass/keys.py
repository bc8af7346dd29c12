"""Issuer keys for token type 0x0002: generation, PKCS#8, the RSASSA-PSS SPKI and key ids.

RFC 9578 §6.5: the Issuer Public Key is encoded as a DER SubjectPublicKeyInfo whose algorithm
is id-RSASSA-PSS (1.2.840.113549.1.1.10) with RSASSA-PSS-params naming SHA-384, MGF1 with
SHA-384 and a salt length of 48. ``cryptography`` only emits rsaEncryption SPKIs, so this module
builds and parses that one structure with a small DER encoder; the algorithm identifier must
match byte for byte. ``token_key_id`` is SHA-256 over that DER (RFC 9578 §6.5), and its last
byte is the ``truncated_token_key_id`` of a TokenRequest (RFC 9578 §6.1).

Pure encode/decode only: reading and writing files is left to the command line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ohttp.privacypass._base64 import b64url_decode, b64url_encode
from ohttp.privacypass.blindrsa import BlindRSAPrivateKey, BlindRSAPublicKey
from ohttp.privacypass.errors import KeyFormatError

__all__ = [
    "MODULUS_BITS",
    "PSS_ALGORITHM",
    "IssuerKeyPair",
    "der_integer",
    "der_tlv",
    "decode_public_key",
    "decode_token_key",
    "encode_public_key",
    "encode_token_key",
    "generate_issuer_key",
    "load_private_key_pem",
    "private_key_pem",
    "token_key_id",
]

MODULUS_BITS = 2048  # RFC 9578 §6: Nk = 256
_PUBLIC_EXPONENT = 65537

_SEQUENCE, _INTEGER, _BIT_STRING, _OID = 0x30, 0x02, 0x03, 0x06


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV with a definite, minimal length (X.690 §8.1, §10.1)."""
    return bytes([tag]) + _der_length(len(content)) + content


def der_integer(value: int) -> bytes:
    """A non-negative DER INTEGER: minimal two's complement, a 0x00 before a high bit."""
    return der_tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return der_tlv(_OID, bytes(body))


_SHA384 = der_tlv(_SEQUENCE, _oid("2.16.840.1.101.3.4.2.2"))  # parameters absent
# AlgorithmIdentifier { id-RSASSA-PSS, RSASSA-PSS-params { [0] sha384, [1] mgf1(sha384),
# [2] saltLength 48 } } (RFC 4055 §3.1; RFC 9578 §6.5)
PSS_ALGORITHM = der_tlv(
    _SEQUENCE,
    _oid("1.2.840.113549.1.1.10")
    + der_tlv(
        _SEQUENCE,
        der_tlv(0xA0, _SHA384)
        + der_tlv(0xA1, der_tlv(_SEQUENCE, _oid("1.2.840.113549.1.1.8") + _SHA384))
        + der_tlv(0xA2, der_integer(48)),
    ),
)


def _read_tlv(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
    """The content of the TLV at ``offset`` (which must carry ``tag``) and the next offset."""
    if offset + 2 > len(data) or data[offset] != tag:
        raise KeyFormatError("malformed public key")
    first, offset = data[offset + 1], offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise KeyFormatError("malformed public key")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
        if length < 0x80 or data[offset - count] == 0:  # DER: the minimal length form only
            raise KeyFormatError("malformed public key")
    end = offset + length
    if end > len(data):
        raise KeyFormatError("malformed public key")
    return data[offset:end], end


def _read_positive_integer(data: bytes, offset: int) -> tuple[int, int]:
    content, offset = _read_tlv(data, offset, _INTEGER)
    minimal = len(content) == 1 or not (
        (content[0] == 0 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    )
    if not content or content[0] & 0x80 or not minimal:
        raise KeyFormatError("malformed public key")
    return int.from_bytes(content, "big"), offset


def encode_public_key(public_key: BlindRSAPublicKey) -> bytes:
    """The RSASSA-PSS SubjectPublicKeyInfo DER of RFC 9578 §6.5 (``pkS``, ``token-key``)."""
    rsa_public_key = der_tlv(_SEQUENCE, der_integer(public_key.n) + der_integer(public_key.e))
    return der_tlv(_SEQUENCE, PSS_ALGORITHM + der_tlv(_BIT_STRING, b"\x00" + rsa_public_key))


def decode_public_key(der: bytes) -> BlindRSAPublicKey:
    """Parse :func:`encode_public_key`'s form strictly; :class:`KeyFormatError` otherwise."""
    spki, end = _read_tlv(der, 0, _SEQUENCE)
    if end != len(der) or not spki.startswith(PSS_ALGORITHM):
        raise KeyFormatError("not an RSASSA-PSS SHA-384 public key")
    bits, end = _read_tlv(spki, len(PSS_ALGORITHM), _BIT_STRING)
    if end != len(spki) or bits[:1] != b"\x00":
        raise KeyFormatError("malformed public key")
    body, end = _read_tlv(bits, 1, _SEQUENCE)
    if end != len(bits):
        raise KeyFormatError("malformed public key")
    n, offset = _read_positive_integer(body, 0)
    e, offset = _read_positive_integer(body, offset)
    if offset != len(body):
        raise KeyFormatError("malformed public key")
    if n.bit_length() != MODULUS_BITS or e < 3 or e % 2 == 0 or n % 2 == 0:
        raise KeyFormatError("not a 2048-bit RSA public key")
    return BlindRSAPublicKey(n=n, e=e)


def token_key_id(public_key: BlindRSAPublicKey) -> bytes:
    """SHA-256 of the public key's RSASSA-PSS SPKI (RFC 9578 §6.5): 32 bytes."""
    return hashlib.sha256(encode_public_key(public_key)).digest()


def encode_token_key(public_key: BlindRSAPublicKey) -> str:
    """base64url (padded) of the SPKI: the issuer directory's ``token-key`` (RFC 9578 §4)."""
    return b64url_encode(encode_public_key(public_key))


def decode_token_key(text: str) -> BlindRSAPublicKey:
    """Inverse of :func:`encode_token_key`; padded or unpadded base64url."""
    return decode_public_key(b64url_decode(text, KeyFormatError("malformed token key")))


@dataclass(frozen=True, eq=False)
class IssuerKeyPair:
    """An issuer's signing key with its public half and key id, ready for :func:`issue`."""

    private_key: BlindRSAPrivateKey
    public_key: BlindRSAPublicKey
    token_key_id: bytes

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPrivateKey) -> IssuerKeyPair:
        """Wrap a 2048-bit ``cryptography`` RSA private key."""
        if key.key_size != MODULUS_BITS:
            raise KeyFormatError("issuer keys are 2048-bit RSA keys")
        private = BlindRSAPrivateKey.from_cryptography(key)
        public = private.public_key
        return cls(private_key=private, public_key=public, token_key_id=token_key_id(public))


def generate_issuer_key() -> tuple[IssuerKeyPair, bytes]:
    """A fresh 2048-bit issuer key: the key pair and its PKCS#8 PEM for storage."""
    key = rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=MODULUS_BITS)
    return IssuerKeyPair.from_cryptography(key), private_key_pem(key)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """A ``cryptography`` RSA private key as unencrypted PKCS#8 PEM (RFC 9578 ``skS``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key_pem(pem: bytes) -> IssuerKeyPair:
    """Parse a PKCS#8 PEM 2048-bit RSA private key into an :class:`IssuerKeyPair`."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeyFormatError("malformed private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("issuer keys are 2048-bit RSA keys")
    return IssuerKeyPair.from_cryptography(key)
