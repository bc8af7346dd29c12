"""Micro-benchmark of the sans-IO hot path: ``python -m benchmarks.micro [--quick] [--markdown]``.

For 0 B, 1 KiB and 64 KiB messages it reports microseconds per operation for

- gateway: ``decapsulate_request`` + ``ResponseSealer.seal`` (response as large as the request),
- client: ``encapsulate_request`` + ``ClientResponseOpener.open`` (the gateway's work in between
  is not timed),
- the same gateway work through the pyhpke oracle (``tests/pyhpke_oracle.py``), for reference,
- Binary HTTP encode/decode of a request carrying that content, when ``ohttp.bhttp`` exists,

and the ratio to the *floor* measured in the same run: the unavoidable cryptography done with
bare ``cryptography`` calls on inputs of the real sizes. Gateway floor: load ``enc`` as an
X25519 public key and one exchange, the 10 HMAC-SHA256 calls of the key schedule, export and
response keys (RFC 9180 §4-5, RFC 9458 §4.4), one AES-128-GCM open of the request and one
seal of the response (each with its key set-up). Client floor: one X25519 key generation with
the public key serialized, one exchange, the same 10 HMACs, one AES-GCM seal and one open.
Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (RFC 9458 Appendix A).

X-Wing (``x-wing ...`` rows): the same, with an X-Wing key (MLKEM768-X25519, 0x647A) instead.
Its floors are bare ``cryptography`` and ``hashlib`` calls: gateway, one ML-KEM-768
decapsulation (key already loaded), loading the X25519 half of ``enc`` and one exchange, the
SHA3-256 combiner, the 8 HMACs left once the KEM has no ExtractAndExpand, and the two AES-GCM
calls; client, one ML-KEM-768 encapsulation, one X25519 key generation with serialization and
one exchange, the combiner, the 8 HMACs and the two AES-GCM calls. Compare the ``x-wing``
rows with the X25519 rows of the same size for the price of post-quantum security.

Timing: process CPU time (the machine is shared); all cases interleaved, repeat after repeat.
µs/op is the best sample (interference only ever adds time); the ratio is the median, over
repeats, of each sample divided by the floor sample taken just before it, which cancels most
of the drift of a loaded machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ohttp import _hpke
from ohttp.encapsulation import (
    RESPONSE_LABEL,
    decapsulate_request,
    encapsulate_request,
    request_info,
)
from ohttp.keys import KEM, GatewayKey, KeyRing
from tests import pyhpke_oracle

SIZES = (0, 1024, 64 * 1024)
_SHA256 = hashes.SHA256()
# (key length, message length) of the 10 per-request HMACs: eae_prk, shared_secret, secret,
# key, base_nonce, exp, export, response extract, response key, response nonce.
_HMAC_SHAPES = ((0, 52), (32, 101), (32, 26), (32, 100), (32, 107), (32, 100), (32, 53),
                (48, 16), (32, 4), (32, 6))  # fmt: skip


@dataclass(frozen=True)
class Row:
    size: int
    case: str
    micros: float  # best sample
    ratio: float | None  # median over repeats of (this sample / the floor sample next to it)


def _hmac(key: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(key, _SHA256)
    mac.update(message)
    return mac.finalize()


class Fixture:
    """Keys and messages for one payload size, prepared outside the timed code."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.payload = os.urandom(size)
        self.key = GatewayKey.generate(1, KEM.X25519)
        self.ring = KeyRing([self.key])
        self.config = self.key.config
        self.body, _ = encapsulate_request(self.config, self.payload)
        self.enc = self.body[7:39]
        self.gateway_private = X25519PrivateKey.from_private_bytes(self.key.private_key)
        self.gateway_public = X25519PublicKey.from_public_bytes(self.config.public_key)
        self.hmac_inputs = [(os.urandom(k), os.urandom(m)) for k, m in _HMAC_SHAPES]
        self.aead_key = os.urandom(16)
        self.nonce = os.urandom(12)
        self.sealed = AESGCM(self.aead_key).encrypt(self.nonce, self.payload, b"")
        self.suite = _hpke.get_suite(0x20, 1, 1)
        self.info = request_info(b"message/bhttp request", self.body[:7])
        self.pyhpke_receiver = pyhpke_oracle.Receiver(
            self.key.hpke_private_key, self.suite, self.info
        )

    # -- floors --
    def gateway_floor(self) -> None:
        peer = X25519PublicKey.from_public_bytes(self.enc)
        self.gateway_private.exchange(peer)
        for key, message in self.hmac_inputs:
            _hmac(key, message)
        AESGCM(self.aead_key).decrypt(self.nonce, self.sealed, b"")
        AESGCM(self.aead_key).encrypt(self.nonce, self.payload, b"")

    def client_floor(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        ephemeral.public_key().public_bytes_raw()
        ephemeral.exchange(self.gateway_public)
        for key, message in self.hmac_inputs:
            _hmac(key, message)
        AESGCM(self.aead_key).encrypt(self.nonce, self.payload, b"")
        AESGCM(self.aead_key).decrypt(self.nonce, self.sealed, b"")

    # -- implementations --
    def gateway(self) -> None:
        request, sealer = decapsulate_request(self.ring, self.body)
        sealer.seal(request)

    def gateway_pyhpke(self) -> None:
        context = self.pyhpke_receiver.setup(self.enc)
        request = context.open(self.body[39:])
        nonce = _hpke.random_response_nonce(self.suite)
        aead = _hpke.derive_response_aead(context, self.suite, RESPONSE_LABEL, self.enc, nonce)
        aead.seal(0, request)

    def client_batch(self, number: int) -> float:
        """``number`` client exchanges: encapsulations timed as one batch, the gateway's work
        untimed, then the openings timed as one batch (no timer call per operation)."""
        start = time.process_time_ns()
        requests = [encapsulate_request(self.config, self.payload) for _ in range(number)]
        encapsulated = time.process_time_ns() - start
        responses = []
        for body, _ in requests:  # the gateway: not timed
            _, sealer = decapsulate_request(self.ring, body)
            responses.append(sealer.seal(self.payload))
        start = time.process_time_ns()
        for (_, opener), response in zip(requests, responses, strict=True):
            opener.open(response)
        opened = time.process_time_ns() - start
        return (encapsulated + opened) / number / 1000


class XWingFixture(Fixture):
    """The same work with an X-Wing gateway key; floors of bare ML-KEM-768 and X25519 calls."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.key = GatewayKey.generate(1, KEM.X_WING)
        self.ring = KeyRing([self.key])
        self.config = self.key.config
        self.body, _ = encapsulate_request(self.config, self.payload)
        self.enc = self.body[7 : 7 + 1120]
        seed = hashlib.shake_256(self.key.private_key).digest(96)  # X-Wing expandKey
        self.mlkem_private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed[:64])
        self.mlkem_public = self.mlkem_private.public_key()
        self.gateway_private = X25519PrivateKey.from_private_bytes(seed[64:])
        self.gateway_public = self.gateway_private.public_key()
        self.combiner_input = os.urandom(32 * 4 + 6)
        self.hmac_inputs = self.hmac_inputs[2:]  # no eae_prk / shared_secret (no DHKEM)

    def gateway_floor(self) -> None:
        self.mlkem_private.decapsulate(self.enc[:1088])
        self.gateway_private.exchange(X25519PublicKey.from_public_bytes(self.enc[1088:]))
        hashlib.sha3_256(self.combiner_input).digest()
        for key, message in self.hmac_inputs:
            _hmac(key, message)
        AESGCM(self.aead_key).decrypt(self.nonce, self.sealed, b"")
        AESGCM(self.aead_key).encrypt(self.nonce, self.payload, b"")

    def client_floor(self) -> None:
        self.mlkem_public.encapsulate()
        ephemeral = X25519PrivateKey.generate()
        ephemeral.public_key().public_bytes_raw()
        ephemeral.exchange(self.gateway_public)
        hashlib.sha3_256(self.combiner_input).digest()
        for key, message in self.hmac_inputs:
            _hmac(key, message)
        AESGCM(self.aead_key).encrypt(self.nonce, self.payload, b"")
        AESGCM(self.aead_key).decrypt(self.nonce, self.sealed, b"")


def _per_op(function: Callable[[], object], number: int) -> float:
    start = time.process_time_ns()
    for _ in range(number):
        function()
    return (time.process_time_ns() - start) / number / 1000


def _measure(
    cases: dict[str, Callable[[int], float]], number: int, repeat: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():  # warm-up
        run(max(1, number // 10))
    for _ in range(repeat):  # interleaved, so a floor sample and its neighbours share conditions
        for name, run in cases.items():
            samples[name].append(run(number))
    return samples


def _paired_ratio(samples: list[float], floor: list[float]) -> float:
    return statistics.median(value / base for value, base in zip(samples, floor, strict=True))


def _bhttp_cases(size: int) -> dict[str, Callable[[int], float]]:
    try:
        from ohttp import bhttp
    except ImportError:
        return {}
    request = bhttp.Request(
        method=b"POST",
        scheme=b"https",
        authority=b"example.com",
        path=b"/upload",
        headers=((b"content-type", b"application/octet-stream"), (b"user-agent", b"bench")),
        content=os.urandom(size),
    )
    encoded = bhttp.encode_request(request)
    return {
        "bhttp encode": partial(_per_op, partial(bhttp.encode_request, request)),
        "bhttp decode": partial(_per_op, partial(bhttp.decode_request, encoded)),
    }


def run(number: int, repeat: int) -> list[Row]:
    rows: list[Row] = []
    for size in SIZES:
        fixture = Fixture(size)
        scaled = max(10, number // (1 + size // 32768))
        cases: dict[str, Callable[[int], float]] = {
            "gateway floor": partial(_per_op, fixture.gateway_floor),
            "gateway": partial(_per_op, fixture.gateway),
            "gateway (pyhpke path)": partial(_per_op, fixture.gateway_pyhpke),
            "client floor": partial(_per_op, fixture.client_floor),
            "client": fixture.client_batch,
        }
        xwing = XWingFixture(size)
        cases |= {
            "x-wing gateway floor": partial(_per_op, xwing.gateway_floor),
            "x-wing gateway": partial(_per_op, xwing.gateway),
            "x-wing client floor": partial(_per_op, xwing.client_floor),
            "x-wing client": xwing.client_batch,
        }
        samples = _measure(cases | _bhttp_cases(size), scaled, repeat)
        for name, values in samples.items():
            floor = samples.get(_floor_of(name))
            ratio = None if floor is None else _paired_ratio(values, floor)
            rows.append(Row(size, name, min(values), ratio))
    return rows


def _floor_of(case: str) -> str:
    """The floor a case is measured against: "x-wing gateway" -> "x-wing gateway floor"."""
    words = case.removesuffix(" floor").split()
    side = words[:2] if words[0] == "x-wing" else words[:1]
    if side[-1] not in ("gateway", "client"):
        return ""
    return " ".join(side) + " floor"


def _size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def format_table(rows: list[Row], markdown: bool) -> str:
    header = ("size", "operation", "µs/op", "x floor")
    lines = []
    if markdown:
        lines += ["| " + " | ".join(header) + " |", "|---|---|---:|---:|"]
    else:
        lines.append(f"{header[0]:>7}  {header[1]:<24} {header[2]:>9} {header[3]:>8}")
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        cells = (_size_label(row.size), row.case, f"{row.micros:.1f}", ratio)
        if markdown:
            lines.append("| " + " | ".join(cells) + " |")
        else:
            lines.append(f"{cells[0]:>7}  {cells[1]:<24} {cells[2]:>9} {cells[3]:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.micro", description=__doc__)
    parser.add_argument("--number", type=int, default=60, help="operations per sample")
    parser.add_argument("--repeat", type=int, default=31, help="samples per case (best is kept)")
    parser.add_argument("--quick", action="store_true", help="a fast, noisier run")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    number, repeat = (20, 5) if args.quick else (args.number, args.repeat)
    print(format_table(run(number, repeat), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
