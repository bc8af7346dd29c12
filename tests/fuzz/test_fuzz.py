"""Fuzzing every harness: any exception other than the parser's own error type fails.

``make test`` runs a short hypothesis pass; ``make fuzz`` sets ``FUZZ_SECONDS`` and each
harness also runs seeded random mutations for that long.
"""

from __future__ import annotations

import contextlib
import os
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harnesses import HARNESSES, Harness

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "0"))


def _run(harness: Harness, data: bytes) -> None:
    with contextlib.suppress(*harness.errors):
        harness.target(data)


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randint(0, len(data))
        if choice < 0.4 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.7:
            data[position:position] = rng.randbytes(rng.randint(1, 16))
        else:
            del data[position : position + rng.randint(1, 16)]
    return bytes(data)


@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.name)
def test_short_pass(harness: Harness) -> None:
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=512) | st.sampled_from(harness.seeds).flatmap(
        lambda seed: st.integers(0, 2**32).map(lambda n: _mutate(random.Random(n), seed))))
    def check(data: bytes) -> None:
        _run(harness, data)

    check()


@pytest.mark.skipif(FUZZ_SECONDS <= 0, reason="set FUZZ_SECONDS (make fuzz)")
@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.name)
def test_timed(harness: Harness) -> None:
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "13")))
    deadline = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < deadline:
        data = _mutate(rng, rng.choice(harness.seeds))
        try:
            _run(harness, data)
        except Exception as exc:  # report the input that failed
            raise AssertionError(f"{harness.name}: {data!r}") from exc
