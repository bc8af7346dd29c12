"""A smoke of the padding benchmark: it runs, and on the demo's traffic with the default
classes every one-shot body the relay carried is a class plus the fixed HPKE overhead."""

from __future__ import annotations

import asyncio

from benchmarks import padding_bench
from ohttp.padding import padded_size

CLASSES = {padded_size(n) for n in range(1 << 16)}


def test_demo_traffic_lands_on_classes() -> None:
    rows = asyncio.run(padding_bench._carry("classes"))
    assert [label for label, _, _ in rows] == [call[0] for call in padding_bench._demo_calls()]
    for label, request, response in rows:
        if "streamed" not in label:
            assert request - (7 + 32 + 16) in CLASSES  # X25519, AES-128-GCM
            assert response - (16 + 16) in CLASSES


def test_report_has_both_parts() -> None:
    assert len(padding_bench.bandwidth()) == 2 + 4 + 1
    assert "padding classes" in padding_bench.cpu(repeats=1)[-1]
