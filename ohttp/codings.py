"""The codings an outer OHTTP request may carry: the rule both servers apply, in one place."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["only_chunked_transfer", "only_identity_content"]


def _codings(field_values: Iterable[str]) -> list[str]:
    # A field may be repeated or hold a comma-separated list (RFC 9110 §5.3).
    return [c.strip().lower() for value in field_values for c in value.split(",")]


def only_identity_content(field_values: Iterable[str]) -> bool:
    """Whether the Content-Encoding values name no coding but ``identity``.

    RFC 9110 §8.4: an encapsulated request is never content-coded; anything else is a 415
    (§15.5.16) before a byte of the body is read.
    """
    return all(c in ("", "identity") for c in _codings(field_values))


def only_chunked_transfer(field_values: Iterable[str]) -> bool:
    """Whether the Transfer-Encoding values are absent or exactly ``chunked``.

    RFC 9112 §6.1: the one transfer coding understood here; anything else (``gzip, chunked``,
    ``chunked, chunked``, ...) is a 501 and the body is never decoded.
    """
    codings = _codings(field_values)
    return not codings or codings == ["chunked"]
