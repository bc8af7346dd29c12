"""``section_error``'s fast paths against the field-by-field rule (RFC 9292 §3.6, RFC 9113
§8.2.1): for any section, the same verdict and the same first error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp._bhttp_messages import _FEW_FIELDS, _first_field_error, section_error

# Bytes that matter to the rule, and a few that do not.
_ALPHABET = b"a-z:0 \t\r\n\x00\x01\x7fA"
_bytes = st.binary(max_size=6).map(lambda raw: bytes(_ALPHABET[b % len(_ALPHABET)] for b in raw))
_sections = st.lists(st.tuples(_bytes, _bytes), max_size=_FEW_FIELDS + 4)  # both paths


@given(_sections, st.booleans())
@settings(max_examples=3000, deadline=None)
def test_fast_paths_agree_with_the_rule(fields: list[tuple[bytes, bytes]], trailers: bool) -> None:
    assert section_error(fields, trailers=trailers) == _first_field_error(fields, trailers=trailers)


def test_both_fast_paths_are_taken_and_refuse() -> None:
    bad = (b"x", b" leading space")
    for size in (1, _FEW_FIELDS, _FEW_FIELDS + 1, _FEW_FIELDS + 3):  # one by one, then joined
        good = [(b"n%d" % i, b"v") for i in range(size - 1)]
        assert section_error([*good, (b"ok", b"v")], trailers=False) is None
        assert section_error([*good, bad], trailers=False) is not None
