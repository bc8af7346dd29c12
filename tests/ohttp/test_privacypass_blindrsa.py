"""RSABSSA-SHA384-PSS (RFC 9474): Appendix A vectors byte for byte, and the signer's guards."""

from __future__ import annotations

from typing import Any

import gmpy2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ohttp.errors import OHTTPError
from ohttp.privacypass import blindrsa
from ohttp.privacypass.blindrsa import BlindRSAPrivateKey
from ohttp.privacypass.errors import BlindingError, InvalidSignatureError, SigningError
from tests.ohttp.privacypass_support import RFC9474, integer, scripted, unhex


def _signer(vector: dict[str, Any]) -> BlindRSAPrivateKey:
    p, q, d = integer(vector["p"]), integer(vector["q"]), integer(vector["d"])
    public = rsa.RSAPublicNumbers(integer(vector["e"]), integer(vector["n"]))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return BlindRSAPrivateKey.from_cryptography(numbers.private_key())


def _r(vector: dict[str, Any]) -> int:
    return int(gmpy2.invert(integer(vector["inv"]), integer(vector["n"])))


@pytest.fixture(scope="module", params=RFC9474, ids=lambda v: v["name"])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


def test_prepare_matches_the_vector(vector: dict[str, Any]) -> None:
    msg, prefix = unhex(vector["msg"]), unhex(vector["msg_prefix"])
    randomized = vector["is_randomized"] == "0x01"
    rng = scripted(prefix) if randomized else scripted()
    assert blindrsa.prepare(msg, randomized=randomized, rng=rng) == unhex(vector["input_msg"])


@pytest.mark.parametrize(
    "vector", [v for v in RFC9474 if "encoded_msg" in v], ids=lambda v: v["name"]
)
def test_emsa_pss_encode_matches_the_vector(vector: dict[str, Any]) -> None:
    n = integer(vector["n"])
    encoded = blindrsa.emsa_pss_encode(
        unhex(vector["input_msg"]), n.bit_length() - 1, unhex(vector["salt"])
    )
    assert encoded == unhex(vector["encoded_msg"])


def test_blind_sign_finalize_match_the_vector(vector: dict[str, Any]) -> None:
    signer = _signer(vector)
    public, msg, salt = signer.public_key, unhex(vector["input_msg"]), unhex(vector["salt"])
    blinded, inv = blindrsa.blind_with(public, msg, salt=salt, r=_r(vector))
    assert blinded == unhex(vector["blinded_msg"])
    assert int.from_bytes(inv, "big") == integer(vector["inv"])
    blind_sig = signer.blind_sign(blinded)
    assert blind_sig == unhex(vector["blind_sig"])
    sig = blindrsa.finalize(public, msg, blind_sig, inv, salt_len=len(salt))
    assert sig == unhex(vector["sig"])
    blindrsa.verify(public, msg, sig, salt_len=len(salt))


def test_blind_draws_salt_then_r_from_the_injected_rng(vector: dict[str, Any]) -> None:
    public = _signer(vector).public_key
    salt = unhex(vector["salt"])
    r = _r(vector).to_bytes(public.modulus_len, "big")
    blinded, _ = blindrsa.blind(
        public, unhex(vector["input_msg"]), scripted(salt, r), salt_len=len(salt)
    )
    assert blinded == unhex(vector["blinded_msg"])


def test_signer_rejects_a_blinded_message_of_the_wrong_size_or_range() -> None:
    signer = _signer(RFC9474[2])
    k_len = signer.public_key.modulus_len
    with pytest.raises(SigningError, match="wrong length"):
        signer.blind_sign(b"\x01" * (k_len - 1))
    with pytest.raises(SigningError, match="out of range"):
        signer.blind_sign(signer.public_key.n.to_bytes(k_len, "big"))


def test_signer_checks_its_signature_before_returning_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A faulty CRT half (the Bellcore attack) must never leave the signer."""
    signer = _signer(RFC9474[2])
    real = BlindRSAPrivateKey._rsasp1
    monkeypatch.setattr(BlindRSAPrivateKey, "_rsasp1", lambda self, c: real(self, c) + 1)
    with pytest.raises(SigningError, match=r"^signing failure$"):
        signer.blind_sign(unhex(RFC9474[2]["blinded_msg"]))


def test_signer_exponentiates_in_constant_time_on_a_blinded_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real = gmpy2.powmod_sec

    def spy(base: Any, exponent: Any, modulus: Any) -> Any:
        seen.append(int(base))
        return real(base, exponent, modulus)

    monkeypatch.setattr(gmpy2, "powmod_sec", spy)
    vector = RFC9474[2]
    signer = _signer(vector)
    blinded = unhex(vector["blinded_msg"])
    assert signer.blind_sign(blinded) == unhex(vector["blind_sig"])
    assert len(seen) == 2  # one per CRT prime
    m = int.from_bytes(blinded, "big")
    assert m % integer(vector["p"]) not in seen  # the input was blinded by r^e first


def test_signer_repr_hides_the_private_numbers() -> None:
    signer = _signer(RFC9474[2])
    assert repr(signer) == "BlindRSAPrivateKey(bits=4096)"


def test_finalize_rejects_a_wrong_blind_signature() -> None:
    vector = RFC9474[2]
    public = _signer(vector).public_key
    msg, inv = unhex(vector["input_msg"]), unhex(vector["inv"])
    bad = bytearray(unhex(vector["blind_sig"]))
    bad[-1] ^= 1
    with pytest.raises(InvalidSignatureError, match=r"^invalid signature$"):
        blindrsa.finalize(public, msg, bytes(bad), inv)
    with pytest.raises(InvalidSignatureError):
        blindrsa.finalize(public, msg, bytes(bad[1:]), inv)


def test_verify_rejects_another_message_and_the_wrong_salt_length() -> None:
    vector = RFC9474[2]
    public, sig = _signer(vector).public_key, unhex(vector["sig"])
    with pytest.raises(InvalidSignatureError):
        blindrsa.verify(public, b"another message", sig)
    with pytest.raises(InvalidSignatureError):
        blindrsa.verify(public, unhex(vector["input_msg"]), sig, salt_len=0)


def test_blind_rejects_a_factor_not_invertible_mod_n() -> None:
    vector = RFC9474[2]
    public = _signer(vector).public_key
    with pytest.raises(BlindingError):
        blindrsa.blind_with(public, b"msg", salt=b"\x00" * 48, r=integer(vector["p"]))
    with pytest.raises(BlindingError):
        blindrsa.blind_with(public, b"msg", salt=b"\x00" * 48, r=0)


def test_errors_are_ohttp_errors_with_fixed_messages() -> None:
    assert issubclass(SigningError, OHTTPError)
    assert issubclass(InvalidSignatureError, OHTTPError)
