"""RSA blind signatures, RSABSSA-SHA384-PSS (RFC 9474): the part Privacy Pass type 0x0002 needs.

Three parties, four steps (RFC 9474 §4)::

    client                                   signer (issuer)
    prepared = prepare(msg)                  # identity for the Deterministic variant
    blinded, inv = blind(pk, prepared)  -->  blind_sig = key.blind_sign(blinded)
    sig = finalize(pk, prepared, blind_sig, inv)  <--
    verify(pk, prepared, sig)                # anyone holding pk

The signature is an ordinary RSASSA-PSS signature (SHA-384, MGF1-SHA-384, salt length 48 by
default, 0 for the PSSZERO variants); :func:`verify` and :func:`finalize` check it with
``cryptography``. Randomness is injected (``rng(n) -> n bytes``, ``secrets.token_bytes`` by
default); :func:`blind_with` takes the salt and blinding factor explicitly so that published
vectors reproduce.

The signer's private operation (:meth:`BlindRSAPrivateKey.blind_sign`) runs on gmpy2's
constant-time ``powmod_sec``, blinds its input with a fresh ``r^e`` and checks every signature
before returning it: see the comments there.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import gmpy2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ohttp.privacypass.errors import BlindingError, InvalidSignatureError, SigningError

__all__ = [
    "PREFIX_LEN",
    "SALT_LEN",
    "BlindRSAPrivateKey",
    "BlindRSAPublicKey",
    "Random",
    "blind",
    "blind_with",
    "emsa_pss_encode",
    "finalize",
    "prepare",
    "verify",
]

Random = Callable[[int], bytes]
"""A source of randomness: ``rng(n)`` returns ``n`` random bytes."""

SALT_LEN = 48  # RSABSSA-SHA384-PSS-*: sLen = hLen = 48 (RFC 9474 §5)
PREFIX_LEN = 32  # the Randomized variants' message prefix (RFC 9474 §4.1)
_HASH_LEN = 48  # SHA-384


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _os2ip(data: bytes) -> int:
    return int.from_bytes(data, "big")


@dataclass(frozen=True)
class BlindRSAPublicKey:
    """An RSA public key ``(n, e)`` for RSABSSA-SHA384-PSS."""

    n: int
    e: int

    @property
    def modulus_len(self) -> int:
        """``kLen``: the modulus length in bytes, which is every signature's length."""
        return (self.n.bit_length() + 7) // 8

    @cached_property
    def _verifier(self) -> rsa.RSAPublicKey:
        return rsa.RSAPublicNumbers(self.e, self.n).public_key()

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPublicKey) -> BlindRSAPublicKey:
        """The ``(n, e)`` of a ``cryptography`` RSA public key."""
        numbers = key.public_numbers()
        return cls(n=numbers.n, e=numbers.e)


def _mgf1_sha384(seed: bytes, length: int) -> bytes:
    # RFC 8017 §B.2.1
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def emsa_pss_encode(msg: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE with SHA-384 and MGF1-SHA-384 (RFC 8017 §9.1.1)."""
    em_len = (em_bits + 7) // 8
    if em_len < _HASH_LEN + len(salt) + 2:
        raise BlindingError("modulus too small for this salt")
    m_hash = hashlib.sha384(msg).digest()
    h = hashlib.sha384(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - len(salt) - _HASH_LEN - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1_sha384(h, len(db)), strict=True))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


def prepare(msg: bytes, *, randomized: bool = False, rng: Random = secrets.token_bytes) -> bytes:
    """RFC 9474 §4.1: the identity (Deterministic) or a 32-byte random prefix (Randomized)."""
    return rng(PREFIX_LEN) + msg if randomized else msg


def _random_unit(n: int, rng: Random) -> int:
    """A uniformly random r in [1, n) invertible mod n, by rejection sampling."""
    length = (n.bit_length() + 7) // 8
    mask = (1 << n.bit_length()) - 1
    while True:
        r = _os2ip(rng(length)) & mask
        if 0 < r < n and gmpy2.gcd(r, n) == 1:
            return r


def blind_with(
    public_key: BlindRSAPublicKey, msg: bytes, *, salt: bytes, r: int
) -> tuple[bytes, bytes]:
    """RFC 9474 §4.2 Blind with explicit salt and blinding factor r: ``(blinded_msg, inv)``."""
    n, k_len = public_key.n, public_key.modulus_len
    encoded = emsa_pss_encode(msg, n.bit_length() - 1, salt)
    m = _os2ip(encoded)
    if gmpy2.gcd(m, n) != 1:  # §4.2 step 4: "invalid input"
        raise BlindingError("message not invertible under this key")
    if not 0 < r < n or gmpy2.gcd(r, n) != 1:  # §4.2 step 6: "blinding error"
        raise BlindingError("blinding factor not invertible")
    inv = int(gmpy2.invert(r, n))
    z = m * int(gmpy2.powmod(r, public_key.e, n)) % n
    return _i2osp(z, k_len), _i2osp(inv, k_len)


def blind(
    public_key: BlindRSAPublicKey,
    msg: bytes,
    rng: Random = secrets.token_bytes,
    *,
    salt_len: int = SALT_LEN,
) -> tuple[bytes, bytes]:
    """RFC 9474 §4.2 Blind: ``(blinded_msg, inv)``; keep ``inv`` secret for :func:`finalize`."""
    salt = rng(salt_len)
    return blind_with(public_key, msg, salt=salt, r=_random_unit(public_key.n, rng))


def verify(
    public_key: BlindRSAPublicKey, msg: bytes, sig: bytes, *, salt_len: int = SALT_LEN
) -> None:
    """RSASSA-PSS-VERIFY (SHA-384, MGF1-SHA-384); raises :class:`InvalidSignatureError`."""
    if len(sig) != public_key.modulus_len:
        raise InvalidSignatureError("signature has the wrong length")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_len)
    try:
        public_key._verifier.verify(sig, msg, pss, hashes.SHA384())
    except InvalidSignature:
        raise InvalidSignatureError("invalid signature") from None


def finalize(
    public_key: BlindRSAPublicKey,
    msg: bytes,
    blind_sig: bytes,
    inv: bytes,
    *,
    salt_len: int = SALT_LEN,
) -> bytes:
    """RFC 9474 §4.4 Finalize: unblind and verify; the signature, or InvalidSignatureError."""
    n, k_len = public_key.n, public_key.modulus_len
    if len(blind_sig) != k_len or len(inv) != k_len:  # §4.4 step 1: "unexpected input size"
        raise InvalidSignatureError("blind signature has the wrong length")
    sig = _i2osp(_os2ip(blind_sig) * _os2ip(inv) % n, k_len)
    verify(public_key, msg, sig, salt_len=salt_len)
    return sig


@dataclass(frozen=True, eq=False, repr=False)
class BlindRSAPrivateKey:
    """The signer's RSA key, kept as CRT components for :meth:`blind_sign`."""

    public_key: BlindRSAPublicKey
    _p: gmpy2.mpz = field(repr=False)
    _q: gmpy2.mpz = field(repr=False)
    _dp: gmpy2.mpz = field(repr=False)
    _dq: gmpy2.mpz = field(repr=False)
    _qinv: gmpy2.mpz = field(repr=False)

    def __repr__(self) -> str:  # never the private numbers, even in a traceback
        return f"BlindRSAPrivateKey(bits={self.public_key.n.bit_length()})"

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPrivateKey) -> BlindRSAPrivateKey:
        """Wrap a ``cryptography`` RSA private key (any size; type 0x0002 needs 2048 bits)."""
        nums = key.private_numbers()
        pub = BlindRSAPublicKey.from_cryptography(key.public_key())
        mpz = gmpy2.mpz
        return cls(pub, mpz(nums.p), mpz(nums.q), mpz(nums.dmp1), mpz(nums.dmq1), mpz(nums.iqmp))

    def _rsasp1(self, c: int) -> int:
        # Constant-time exponentiations (gmpy2.powmod_sec): the time of Python's pow or of
        # gmpy2.powmod depends on the exponent's bits, and a timing side channel on d, dP or
        # dQ leaks the private key to anyone who can ask for signatures and measure.
        c_mpz = gmpy2.mpz(c)
        s_p = gmpy2.powmod_sec(c_mpz % self._p, self._dp, self._p)
        s_q = gmpy2.powmod_sec(c_mpz % self._q, self._dq, self._q)
        h = self._qinv * (s_p - s_q) % self._p
        return int(s_q + h * self._q)

    def blind_sign(self, blinded_msg: bytes, rng: Random = secrets.token_bytes) -> bytes:
        """RFC 9474 §4.3 BlindSign: the blind signature of a client's ``blinded_msg``."""
        pub = self.public_key
        n, e = pub.n, pub.e
        if len(blinded_msg) != pub.modulus_len:
            raise SigningError("blinded message has the wrong length")
        m = _os2ip(blinded_msg)
        if m >= n:  # RSASP1 step 1: "message representative out of range"
            raise SigningError("blinded message out of range")
        # Base blinding: the exponentiation runs on m * r^e for a fresh random r, so its
        # operands are independent of the client's chosen input (no chosen-input side channel).
        r = _random_unit(n, rng)
        s = self._rsasp1(m * int(gmpy2.powmod(r, e, n)) % n) * int(gmpy2.invert(r, n)) % n
        # §4.3 step 3: verify before releasing. A fault in one CRT half (glitch, bit flip, bug)
        # gives a signature from which gcd(s^e - m, n) factors n (the Bellcore attack); an
        # unchecked wrong signature would hand the private key to the client.
        if int(gmpy2.powmod(s, e, n)) != m:
            raise SigningError("signing failure")
        return _i2osp(s, pub.modulus_len)
