"""Checkpoints, cosignature/v1 and the witness state machine."""

from __future__ import annotations

import base64

import pytest

from ohttp.keys import KEM, GatewayKey
from ohttp.tlog.checkpoint import Checkpoint, open_checkpoint
from ohttp.tlog.errors import (
    CheckpointError,
    ForkError,
    InvalidSignatureError,
    NoteError,
    RollbackError,
    UnverifiedNoteError,
)
from ohttp.tlog.log import TileLog
from ohttp.tlog.merkle import consistency_proof, leaf_hash, leaf_node_reader
from ohttp.tlog.note import Ed25519Signer, Signature, open_note, parse_note, sign_note
from ohttp.tlog.statement import KeyStatement
from ohttp.tlog.witness import (
    CosignatureVerifier,
    Cosigner,
    Witness,
    cosignature_message,
    cosignature_timestamp,
)
from tests.ohttp.tlog_vectors import VECTORS
from tests.support import REPO

COSIG = VECTORS["cosignatures"]
ORIGIN = "example.com/ohttp-keys"
LOG_KEY = Ed25519Signer(ORIGIN, bytes(range(32)))
WITNESS_KEY = Cosigner("witness.example/w1", bytes(range(32, 64)))
ENTRIES = [f"entry {i}".encode() for i in range(40)]
READ = leaf_node_reader([leaf_hash(e) for e in ENTRIES])
T0 = 1_796_479_200  # 2026-12-05T14:00:00Z


def signed_checkpoint(size: int, entries: list[bytes] = ENTRIES) -> bytes:
    log = TileLog.empty()
    result = log.append(entries[:size])
    return sign_note(Checkpoint(ORIGIN, size, result.root).encode(), [LOG_KEY])


# --- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_extensions() -> None:
    text = COSIG["c2sp_checkpoint"] + "ext one\n"
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.extensions == ("ext one",)
    assert checkpoint.encode() == text


@pytest.mark.parametrize(
    "text",
    [
        "origin\n1\n" + "A" * 43 + "=",  # no final newline
        "origin\n1\n",
        "\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "origin\n01\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "origin\n+1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "origin\n-1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "origin\n1\n" + base64.b64encode(b"\x00" * 31).decode() + "\n",
        "origin\n1\n" + base64.b64encode(b"\x00" * 32).decode().rstrip("=") + "\n",
        "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",  # non-zero padding bits
        "origin\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n\n",  # empty extension
        "origin\n\u0661\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # non-ASCII digit
        "origin\r\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_open_checkpoint_checks_signature_and_origin() -> None:
    note = signed_checkpoint(5)
    checkpoint, opened = open_checkpoint(note, [LOG_KEY.verifier], ORIGIN)
    assert checkpoint.size == 5 and opened.text == checkpoint.encode()
    with pytest.raises(CheckpointError):
        open_checkpoint(note, [LOG_KEY.verifier], "example.com/other")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [WITNESS_KEY.verifier], ORIGIN)


# --- cosignature/v1 ---------------------------------------------------------------------------


def test_message_and_timestamps_from_the_specs() -> None:
    assert (
        cosignature_message(COSIG["c2sp_checkpoint"], 1679315147) == COSIG["c2sp_message"].encode()
    )
    for encoded, timestamp in COSIG["timestamps"]:
        raw = base64.b64decode(encoded)
        signature = Signature("w", int.from_bytes(raw[:4], "big"), raw[4:])
        assert cosignature_timestamp(signature) == timestamp
    raw = base64.b64decode(COSIG["not_cosignature"])
    with pytest.raises(NoteError):
        cosignature_timestamp(Signature("w", 0, raw[4:]))


def test_type_04_vkey() -> None:
    verifier = CosignatureVerifier.from_vkey(COSIG["vkey_type_04"])
    assert verifier.vkey == COSIG["vkey_type_04"] and verifier.key_id == 0xDA77ADE7
    ed25519_vkey = LOG_KEY.verifier.vkey
    with pytest.raises(NoteError):
        CosignatureVerifier.from_vkey(ed25519_vkey)  # type 0x01 is not a cosigner key


def test_cosignature_verifies_under_its_own_type_only() -> None:
    body = signed_checkpoint(3).decode().split("\n\n")[0] + "\n"
    signature = WITNESS_KEY.cosign(body, T0)
    assert signature.signature[:8] == T0.to_bytes(8, "big") and len(signature.signature) == 72
    assert WITNESS_KEY.verifier.key_id != Ed25519Signer(WITNESS_KEY.name, WITNESS_KEY.seed).key_id
    note = (body + "\n" + signature.line()).encode()
    assert open_note(note, [WITNESS_KEY.verifier]).verified == (signature,)
    forged = Signature(
        signature.name, signature.key_id, (T0 + 1).to_bytes(8, "big") + signature.signature[8:]
    )
    with pytest.raises(InvalidSignatureError):
        open_note((body + "\n" + forged.line()).encode(), [WITNESS_KEY.verifier])
    with pytest.raises(NoteError):
        cosignature_message(body, -1)


# --- the witness --------------------------------------------------------------------------------


def new_witness(state: bytes | None = None) -> Witness:
    return Witness(WITNESS_KEY, LOG_KEY.verifier, ORIGIN, state)


def test_witness_follows_a_growing_log() -> None:
    witness = new_witness()
    assert witness.checkpoint is None and witness.state is None
    witness.cosign(signed_checkpoint(3), [], T0)  # first sight: trusted on first use
    for old, new in ((3, 3), (3, 10), (10, 40)):
        signature = witness.cosign(signed_checkpoint(new), consistency_proof(READ, old, new), T0)
        assert cosignature_timestamp(signature) == T0
    assert witness.checkpoint is not None and witness.checkpoint.size == 40
    assert witness.state is not None
    cosigned = open_note(witness.state, [LOG_KEY.verifier, WITNESS_KEY.verifier])
    assert len(cosigned.verified) == 2
    # The state is all it needs to go on.
    again = new_witness(witness.state)
    assert again.checkpoint == witness.checkpoint


def test_witness_refuses_rollback() -> None:
    witness = new_witness()
    witness.cosign(signed_checkpoint(10), [], T0)
    with pytest.raises(RollbackError):
        witness.cosign(signed_checkpoint(9), [], T0 + 1)
    assert witness.checkpoint is not None and witness.checkpoint.size == 10


def test_witness_refuses_forks() -> None:
    witness = new_witness()
    witness.cosign(signed_checkpoint(10), [], T0)
    forked = [*ENTRIES[:5], b"rewritten", *ENTRIES[6:]]
    with pytest.raises(ForkError):
        witness.cosign(signed_checkpoint(10, forked), [], T0)  # same size, other root
    proof = consistency_proof(READ, 10, 20)
    with pytest.raises(ForkError):
        witness.cosign(signed_checkpoint(20, forked), proof, T0)
    with pytest.raises(ForkError):
        witness.cosign(signed_checkpoint(20), proof[:-1], T0)
    assert witness.checkpoint is not None and witness.checkpoint.size == 10


def test_witness_refuses_other_logs_and_bad_signatures() -> None:
    witness = new_witness()
    other = Ed25519Signer(ORIGIN, bytes(32))
    note = sign_note(parse_note(signed_checkpoint(3)).text, [other])
    with pytest.raises(UnverifiedNoteError):
        witness.cosign(note, [], T0)
    text = Checkpoint("example.com/other", 3, b"\x00" * 32).encode()
    with pytest.raises(CheckpointError):
        witness.cosign(sign_note(text, [LOG_KEY]), [], T0)
    assert witness.checkpoint is None


def test_docs_worked_example() -> None:
    """docs/transparency.md shows these bytes: keep the page and the code in step."""
    key = GatewayKey.derive(1, KEM.X25519, bytes(32), not_before=T0, not_after=1_799_157_600)
    entry = KeyStatement.from_gateway_key(key, release="sha256:" + "0" * 64).encode()
    result = TileLog.empty().append([entry])
    log_key = Ed25519Signer(ORIGIN, bytes(range(32)))
    note = sign_note(Checkpoint(ORIGIN, result.size, result.root).encode(), [log_key])
    witness = Witness(WITNESS_KEY, log_key.verifier, ORIGIN)
    witness.cosign(note, [], T0 + 60)
    assert witness.state is not None
    page = (REPO / "docs" / "transparency.md").read_text()
    shown = [entry.decode(), result.root.hex(), log_key.verifier.vkey, log_key.skey]
    shown += [WITNESS_KEY.verifier.vkey, witness.state.decode()]
    for text in shown:
        assert text in page
