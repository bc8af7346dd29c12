"""gateway.replay: the Date window and the replay cache (RFC 9458 §6.5)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from gateway.errors import DateOutOfWindow, Replay, ReplayCacheFull
from gateway.replay import ReplayGuard, parse_http_date
from ohttp.encapsulation import decapsulate_request, encapsulate_request
from ohttp.keys import GatewayKey, KeyRing

NOW = 1_800_000_000.0


def date(offset: float = 0) -> bytes:
    return formatdate(NOW + offset, usegmt=True).encode()


def guard(**settings: object) -> ReplayGuard:
    defaults: dict[str, object] = {"window": 60.0, "require_date": False, "max_entries": 100}
    return ReplayGuard(**{**defaults, **settings})  # type: ignore[arg-type]


def test_parse_http_date_forms() -> None:
    assert parse_http_date(date()) == NOW
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == 784111777.0
    for bad in (b"", b"yesterday", b"\xff\xfe", b"Sun, 06 Nov 1994 08:49:37"):
        assert parse_http_date(bad) is None


@pytest.mark.parametrize("offset", [-60, -1, 0, 1, 60])
def test_inside_the_window(offset: float) -> None:
    guard().check(date(offset), b"e" * 32, now=NOW)


@pytest.mark.parametrize("offset", [-61, 61, -86400])
def test_outside_the_window(offset: float) -> None:
    with pytest.raises(DateOutOfWindow):
        guard().check(date(offset), b"e" * 32, now=NOW)


def test_missing_date() -> None:
    plain = guard()
    plain.check(None, b"e" * 32, now=NOW)
    plain.check(None, b"e" * 32, now=NOW)  # accepted again: nothing was remembered
    assert len(plain) == 0
    with pytest.raises(DateOutOfWindow):
        guard(require_date=True).check(None, b"e" * 32, now=NOW)


def test_replay_refused_until_the_date_leaves_the_window() -> None:
    replay = guard()
    replay.check(date(), b"a" * 32, now=NOW)
    with pytest.raises(Replay):
        replay.check(date(), b"a" * 32, now=NOW + 59)
    replay.check(date(), b"b" * 32, now=NOW)  # another enc is another request
    # Once the Date is outside the window the entry goes; the Date check refuses it anyway.
    replay.check(date(70), b"c" * 32, now=NOW + 70)
    assert len(replay) == 1
    with pytest.raises(DateOutOfWindow):
        replay.check(date(), b"a" * 32, now=NOW + 61)


def test_hard_cap_refuses_rather_than_forgets() -> None:
    small = guard(max_entries=3)
    for index in range(3):
        small.check(date(), bytes([index]) * 32, now=NOW)
    with pytest.raises(ReplayCacheFull):
        small.check(date(), b"z" * 32, now=NOW)
    with pytest.raises(Replay):
        small.check(date(), bytes([0]) * 32, now=NOW)
    small.check(date(61), b"z" * 32, now=NOW + 61)  # the old entries expired: room again
    assert len(small) == 1


def test_the_sealer_enc_is_the_requests_kem_sized_enc() -> None:
    # The pipeline keys the replay cache on ResponseSealer.enc (RFC 9458 §4.1: after the
    # 7-byte header, Nenc = 32 bytes for X25519).
    key = GatewayKey.generate(3)
    body, _ = encapsulate_request(key.config, b"\x00")
    _, sealer = decapsulate_request(KeyRing([key]), body)
    assert sealer.enc == body[7 : 7 + 32]
