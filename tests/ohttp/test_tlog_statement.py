"""Key statements (ohttp-key/v1 entries): canonical encoding, strict parsing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp.keys import KEM, GatewayKey
from ohttp.tlog.errors import KeyStatementError
from ohttp.tlog.statement import KeyStatement, format_time, parse_time

KEY = GatewayKey.derive(7, KEM.X25519, bytes(32), not_before=1_796_479_200)
CONFIG_B64 = base64.b64encode(KEY.config.encode()).decode()
DIGEST = "sha256:" + "ab" * 32
ENTRY = (
    "ohttp-key/v1\n"
    f"config {CONFIG_B64}\n"
    "not-before 2026-12-05T14:00:00Z\n"
    "not-after 2027-01-05T14:00:00Z\n"
    f"release {DIGEST}\n"
)


def statement() -> KeyStatement:
    return KeyStatement.from_gateway_key(KEY, not_after=1_799_157_600, release=DIGEST)


def test_encoding_is_the_documented_one() -> None:
    assert statement().encode() == ENTRY.encode()
    assert KeyStatement.parse(ENTRY.encode()) == statement()


def test_release_none_and_window() -> None:
    plain = KeyStatement(KEY.config, 0, 1)
    assert plain.encode().endswith(b"release none\n")
    assert KeyStatement.parse(plain.encode()) == plain
    assert plain.active(0) and not plain.active(1) and not plain.active(-1)


def test_both_bounds_are_required() -> None:
    with pytest.raises(KeyStatementError):
        KeyStatement.from_gateway_key(KEY)  # not_after is open
    unbounded = GatewayKey.derive(1, KEM.X25519, bytes(32))
    both = KeyStatement.from_gateway_key(unbounded, not_before=10, not_after=20)
    assert (both.not_before, both.not_after) == (10, 20)
    for start, end in ((20, 20), (21, 20), (-1, 20), (0, 253402300800)):
        with pytest.raises(KeyStatementError):
            KeyStatement(KEY.config, start, end)


def _mutations() -> list[str]:
    lines = ENTRY.split("\n")[:-1]
    return [
        ENTRY[:-1],  # no final newline
        ENTRY + "\n",
        ENTRY + "extra value\n",
        "\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n",  # order
        ENTRY.replace("ohttp-key/v1", "ohttp-key/v2"),
        ENTRY.replace("ohttp-key/v1\n", "ohttp-key/v1 \n"),
        ENTRY.replace("config ", "config  "),
        ENTRY.replace("config ", "config\t"),
        ENTRY.replace("\n", "\r\n"),
        ENTRY.replace(CONFIG_B64, CONFIG_B64 + "=="),
        ENTRY.replace(CONFIG_B64, base64.b64encode(KEY.config.encode() + b"\x00").decode()),
        ENTRY.replace(CONFIG_B64, base64.urlsafe_b64encode(b"\xfb" * 42).decode()),
        ENTRY.replace("2026-12-05T14:00:00Z", "2026-12-05T14:00:00+00:00"),
        ENTRY.replace("2026-12-05T14:00:00Z", "2026-12-05t14:00:00z"),
        ENTRY.replace("2026-12-05T14:00:00Z", "2026-12-05T14:00:00.0Z"),
        ENTRY.replace("2026-12-05T14:00:00Z", "2026-02-30T14:00:00Z"),
        ENTRY.replace("2026-12-05T14:00:00Z", "2026-12-05T24:00:00Z"),
        ENTRY.replace("2026-12-05T14:00:00Z", "2027-01-05T14:00:00Z"),  # empty window
        ENTRY.replace(DIGEST, DIGEST.upper().replace("SHA256", "sha256")),
        ENTRY.replace(DIGEST, DIGEST[:-1]),
        ENTRY.replace(DIGEST, "sha512:" + "ab" * 32),
        ENTRY.replace(DIGEST, "None"),
        ENTRY.replace(DIGEST, ""),
        ENTRY.replace("release ", "release"),
    ]


@pytest.mark.parametrize("entry", _mutations())
def test_any_deviation_is_rejected(entry: str) -> None:
    with pytest.raises(KeyStatementError):
        KeyStatement.parse(entry.encode())


def test_unknown_algorithms_are_not_silently_dropped() -> None:
    assert len(KEY.config.suites) > 1
    raw = KEY.config.encode()[:-2] + b"\x00\x09"  # AEAD 9 is unknown: decoding drops it
    entry = ENTRY.replace(CONFIG_B64, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(KeyStatementError):
        KeyStatement.parse(entry.encode())
    with pytest.raises(KeyStatementError):
        KeyStatement.parse(b"ohttp-key/v1\n\xff\n")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 253402300799))
def test_times_round_trip(timestamp: int) -> None:
    assert parse_time(format_time(timestamp)) == timestamp
