"""Signed notes: the golang.org/x/mod/sumdb/note and c2sp.org/signed-note examples, exactly."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ohttp.errors import MalformedError
from ohttp.tlog.errors import (
    InvalidSignatureError,
    NoteError,
    SignerKeyError,
    UnverifiedNoteError,
)
from ohttp.tlog.note import (
    MAX_SIGNATURES,
    Ed25519Signer,
    Ed25519Verifier,
    Signature,
    open_note,
    parse_note,
    sign_note,
)
from tests.ohttp.tlog_vectors import VECTORS

NOTES = VECTORS["notes"]
PETER = Ed25519Verifier.from_vkey(NOTES["peter_vkey"])
ENOCH = Ed25519Verifier.from_vkey(NOTES["enoch_vkey"])
TEXT: str = NOTES["peter_text"]
PETER_SIG: str = NOTES["peter_sig_line"]
ENOCH_SIG: str = NOTES["enoch_sig_line"]


def _note(*lines: str) -> bytes:
    return (TEXT + "\n" + "".join(lines)).encode()


def test_vkeys_round_trip() -> None:
    assert PETER.name == "PeterNeumann" and PETER.key_id == 0xC74F20A3
    assert PETER.vkey == NOTES["peter_vkey"] and ENOCH.vkey == NOTES["enoch_vkey"]


def test_sign_reproduces_the_go_example() -> None:
    signer = Ed25519Signer.from_skey(NOTES["peter_skey"])
    assert signer.skey == NOTES["peter_skey"]
    assert signer.verifier == PETER
    assert sign_note(TEXT, [signer]) == _note(PETER_SIG)
    # An existing signature of the same key is replaced, others are kept.
    stale = Signature("PeterNeumann", 0xC74F20A3, b"\x00" * 64)
    enoch = parse_note(_note(ENOCH_SIG)).signatures[0]
    assert sign_note(TEXT, [signer], [stale, enoch]) == _note(ENOCH_SIG, PETER_SIG)


def test_open_the_c2sp_example() -> None:
    verifier = Ed25519Verifier.from_vkey(NOTES["c2sp_vkey"])
    opened = open_note(NOTES["c2sp_note"].encode(), [verifier])
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.verified] == ["example.com/foo"]


def test_open_with_one_known_key() -> None:
    opened = open_note(_note(PETER_SIG, ENOCH_SIG), [PETER])
    assert opened.text == TEXT
    assert [s.line() for s in opened.verified] == [PETER_SIG]
    assert [s.line() for s in opened.unverified] == [ENOCH_SIG]
    both = open_note(_note(PETER_SIG, ENOCH_SIG), [PETER, ENOCH])
    assert [s.line() for s in both.verified] == [PETER_SIG, ENOCH_SIG] and not both.unverified


def test_duplicates_are_dropped() -> None:
    opened = open_note(_note(PETER_SIG, PETER_SIG, ENOCH_SIG, ENOCH_SIG), [PETER])
    assert len(opened.verified) == 1 and len(opened.unverified) == 1
    # Identical verifiers are one; two different keys under one (name, ID) are refused.
    open_note(_note(PETER_SIG), [PETER, PETER])
    with pytest.raises(NoteError):
        open_note(_note(PETER_SIG), [PETER, _Colliding(PETER.name, PETER.key_id)])
    # Same name with another key ID, or another name with the same key ID: unknown keys.
    impostor = Ed25519Verifier("PeterNeumann", ENOCH.public_key)
    with pytest.raises(UnverifiedNoteError):
        open_note(_note(PETER_SIG), [impostor, _Colliding("Peter", PETER.key_id)])


@dataclass(frozen=True)
class _Colliding:
    """A verifier that accepts anything, under a chosen name and key ID."""

    name: str
    key_id: int

    def verify(self, text: bytes, signature: bytes) -> bool:
        return True


def test_no_known_signature() -> None:
    with pytest.raises(UnverifiedNoteError):
        open_note(_note(PETER_SIG, ENOCH_SIG), [])


def test_invalid_signature_of_a_known_key() -> None:
    damaged = PETER_SIG[:60] + "ABCD" + PETER_SIG[64:]
    with pytest.raises(InvalidSignatureError):
        open_note(_note(damaged), [PETER])
    with pytest.raises(InvalidSignatureError):
        open_note((TEXT.replace("problem", "issue") + "\n" + PETER_SIG).encode(), [PETER])


def test_signature_limit() -> None:
    lines = [Signature("k", i, b"x").line() for i in range(MAX_SIGNATURES)]
    with pytest.raises(UnverifiedNoteError):
        open_note(_note(*lines), [PETER])  # 100 are parsed
    with pytest.raises(NoteError):
        open_note(_note(*lines, PETER_SIG), [PETER])


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("—", "-"),
        TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),
        TEXT + "\n" + "— PeterNeumann AAAA\n",
        TEXT + "\n" + "— a+b " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "\n",
        "no newline\n\n" + PETER_SIG.replace("\n", "\r\n"),
    ],
)
def test_malformed_notes(message: str) -> None:
    with pytest.raises(NoteError):
        open_note(message.encode(), [PETER])


def test_invalid_utf8() -> None:
    with pytest.raises(NoteError):
        open_note(b"\xff" + _note(PETER_SIG), [PETER])
    assert issubclass(NoteError, MalformedError)


def test_mangled_vkeys_are_rejected() -> None:
    # As golang.org/x/mod/sumdb/note TestNewVerifier: every substring, every byte bumped.
    vkey = NOTES["peter_vkey"]
    mangled = {vkey[i:j] for i in range(len(vkey)) for j in range(i + 1, len(vkey) + 1)}
    mangled |= {vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :] for i in range(len(vkey))}
    mangled |= set(NOTES["bad_vkeys"])
    mangled.discard(vkey)
    for bad in sorted(mangled):
        with pytest.raises(NoteError):
            Ed25519Verifier.from_vkey(bad)


def test_mangled_skeys_are_rejected() -> None:
    skey = NOTES["peter_skey"]
    bumped = {skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :] for i in range(len(skey))}
    for bad in sorted(bumped | {skey[:-1], skey + "A", skey.replace("+KEY+", "+key+")}):
        with pytest.raises(SignerKeyError):
            Ed25519Signer.from_skey(bad)


def test_generated_keys_round_trip() -> None:
    signer = Ed25519Signer.generate("example.com/ohttp-keys")
    again = Ed25519Signer.from_skey(signer.skey)
    assert again == signer
    verifier = Ed25519Verifier.from_vkey(signer.verifier.vkey)
    opened = open_note(sign_note("hello\n", [signer]), [verifier])
    assert opened.text == "hello\n"
    for name in ("", "a b", "a+b", "tab\there", "nbsp\u00a0"):
        with pytest.raises(NoteError):
            Ed25519Signer(name, b"\x00" * 32)
    for name, key, raw in (("a+b", 1, b"x"), ("a", -1, b"x"), ("a", 1 << 32, b"x"), ("a", 1, b"")):
        with pytest.raises(NoteError):
            Signature(name, key, raw)
    for text in ("", "no newline", "bell\x07\n"):
        with pytest.raises(NoteError):
            sign_note(text, [signer])
