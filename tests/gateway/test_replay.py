"""gateway.replay: the Date window and the replay check on the state store (RFC 9458 §6.5)."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest

from gateway.errors import DateOutOfWindow, Replay, ReplayCacheFull, StateUnavailable
from gateway.replay import CLOCK_SLACK, ReplayGuard, parse_http_date
from ohttp.aio.store import MemoryStore, StoreUnavailable
from ohttp.encapsulation import decapsulate_request, encapsulate_request
from ohttp.keys import GatewayKey, KeyRing

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def date(offset: float = 0) -> bytes:
    return formatdate(NOW + offset, usegmt=True).encode()


def guard(
    clock: Clock | None = None, *, max_entries: int = 100, require_date: bool = False
) -> ReplayGuard:
    clock = clock or Clock()
    store = MemoryStore(max_entries=max_entries, clock=clock)
    return ReplayGuard(60.0, require_date=require_date, store=store, clock=clock)


def test_parse_http_date_forms() -> None:
    assert parse_http_date(date()) == NOW
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == 784111777.0
    for bad in (b"", b"yesterday", b"\xff\xfe", b"Sun, 06 Nov 1994 08:49:37"):
        assert parse_http_date(bad) is None


@pytest.mark.parametrize("offset", [-60, -1, 0, 1, 60])
async def test_inside_the_window(offset: float) -> None:
    await guard().check(date(offset), 1, b"e" * 32)


@pytest.mark.parametrize("offset", [-61, 61, -86400])
async def test_outside_the_window(offset: float) -> None:
    with pytest.raises(DateOutOfWindow):
        await guard().check(date(offset), 1, b"e" * 32)


async def test_missing_date() -> None:
    plain = guard()
    await plain.check(None, 1, b"e" * 32)
    await plain.check(None, 1, b"e" * 32)  # accepted again: nothing was remembered
    assert len(plain.store) == 0  # type: ignore[arg-type]
    with pytest.raises(DateOutOfWindow):
        await guard(require_date=True).check(None, 1, b"e" * 32)


async def test_replay_refused_until_the_date_leaves_the_window() -> None:
    clock = Clock()
    replay = guard(clock)
    await replay.check(date(), 1, b"a" * 32)
    clock.now = NOW + 59
    with pytest.raises(Replay):
        await replay.check(date(), 1, b"a" * 32)
    await replay.check(date(), 1, b"b" * 32)  # another enc is another request
    await replay.check(date(), 2, b"a" * 32)  # the same enc for another key is another one
    # Once the Date is outside the window the record goes; the Date check refuses it anyway.
    clock.now = NOW + 60 + CLOCK_SLACK
    await replay.check(date(70), 1, b"c" * 32)
    assert len(replay.store) == 1  # type: ignore[arg-type]
    with pytest.raises(DateOutOfWindow):
        await replay.check(date(), 1, b"a" * 32)


async def test_hard_cap_refuses_rather_than_forgets() -> None:
    clock = Clock()
    small = guard(clock, max_entries=3)
    for index in range(3):
        await small.check(date(), 1, bytes([index]) * 32)
    with pytest.raises(ReplayCacheFull):
        await small.check(date(), 1, b"z" * 32)
    with pytest.raises(Replay):
        await small.check(date(), 1, bytes([0]) * 32)
    clock.now = NOW + 60 + CLOCK_SLACK  # the old records expired: room again
    await small.check(date(61), 1, b"z" * 32)
    assert len(small.store) == 1  # type: ignore[arg-type]


class DownStore(MemoryStore):
    """A memory store that can be switched off: the store seam, not a mock of Redis."""

    down = True

    async def add(self, key: bytes, ttl: float) -> bool:
        if self.down:
            raise StoreUnavailable("connection")
        return await super().add(key, ttl)

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("connection")


async def test_an_unavailable_store_refuses_logs_once_counts_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = DownStore(clock=clock)
    failures: list[str] = []
    checked = ReplayGuard(60.0, require_date=False, store=store, clock=clock,
                          on_unavailable=failures.append)
    caplog.set_level(logging.INFO, logger="gateway")
    for enc in (b"a" * 32, b"b" * 32):
        with pytest.raises(StateUnavailable):  # never accepted unchecked
            await checked.check(date(), 1, enc)
    assert failures == ["connection", "connection"]
    assert not await checked.ready()
    store.down = False
    await checked.check(date(), 1, b"a" * 32)  # recovered by itself
    assert await checked.ready()
    events = [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert events == [("store_unavailable", "connection"), ("store_available", None)]


def test_the_sealer_enc_is_the_requests_kem_sized_enc() -> None:
    # The pipeline keys the replay cache on ResponseSealer.enc (RFC 9458 §4.1: after the
    # 7-byte header, Nenc = 32 bytes for X25519).
    key = GatewayKey.generate(3)
    body, _ = encapsulate_request(key.config, b"\x00")
    _, sealer = decapsulate_request(KeyRing([key]), body)
    assert sealer.enc == body[7 : 7 + 32]
    assert sealer.key_id == 3
