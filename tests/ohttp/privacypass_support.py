"""Shared data of the Privacy Pass tests: the published vectors and one issuer key each run."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ohttp.privacypass import IssuerKeyPair, generate_issuer_key, load_private_key_pem

VECTORS = Path(__file__).parent.parent / "vectors"
RFC9474: list[dict[str, Any]] = json.loads((VECTORS / "rfc9474.json").read_text())["vectors"]
_TYPE2_FILE = json.loads((VECTORS / "privacypass_type2.json").read_text())
TYPE2: list[dict[str, Any]] = _TYPE2_FILE["vectors"]  # cloudflare/pat-go
TYPE2_DRAFT: list[dict[str, Any]] = _TYPE2_FILE["draft_vectors"]  # the RFC 9578 draft text


def unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def integer(value: str) -> int:
    return int(value, 16)


def scripted(*chunks: bytes) -> Callable[[int], bytes]:
    """An rng that hands out ``chunks`` in order, checking each requested length."""
    queue = list(chunks)

    def rng(length: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == length
        return chunk

    return rng


@functools.cache
def vector_issuer() -> IssuerKeyPair:
    """The issuer key of the type 0x0002 vectors (all five share it)."""
    return load_private_key_pem(unhex(TYPE2[0]["skS"]))


@functools.cache
def fresh_issuer() -> tuple[IssuerKeyPair, bytes]:
    """A 2048-bit key generated once per test session, and its PKCS#8 PEM."""
    return generate_issuer_key()
