"""The outer codings rule shared by the gateway and the relay (RFC 9110 §8.4, RFC 9112 §6.1)."""

from __future__ import annotations

import pytest

from ohttp.codings import only_chunked_transfer, only_identity_content


@pytest.mark.parametrize(
    ("values", "allowed"),
    [([], True), (["identity"], True), (["IDENTITY, "], True), (["identity", "identity"], True),
     (["gzip"], False), (["GZIP"], False), (["gzip, identity"], False),
     (["identity", "br"], False), (["x-custom"], False)],
)
def test_content_coding_only_identity(values: list[str], allowed: bool) -> None:
    assert only_identity_content(values) is allowed


@pytest.mark.parametrize(
    ("values", "allowed"),
    [([], True), (["chunked"], True), (["Chunked "], True), (["gzip, chunked"], False),
     (["chunked, chunked"], False), (["chunked", "chunked"], False), (["identity"], False),
     (["chunked, "], False), (["x-custom, chunked"], False)],
)
def test_transfer_coding_only_chunked(values: list[str], allowed: bool) -> None:
    assert only_chunked_transfer(values) is allowed
