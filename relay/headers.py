"""Which gateway response fields the relay passes on, and only with valid values (sans-IO).

The relay copies a handful of fields from the gateway's answer to the client (RFC 9458 §6.2:
nothing else); a value that is not of its field's syntax is dropped, so a misbehaving gateway
cannot send the client arbitrary bytes through the relay (issue 13, finding 7).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ohttp.httpdate import parse_http_date

__all__ = [
    "SF_BOOLEANS",
    "passed_fields",
    "valid_cache_control",
    "valid_incremental",
    "valid_retry_after",
]

SF_BOOLEANS = frozenset({"?0", "?1"})  # RFC 8941 §3.3.6, the Incremental field's type
_MAX_VALUE = 1024  # longer values are dropped: no real Cache-Control needs more

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string (qdtext or quoted-pair, no CTLs but HTAB).
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
# RFC 9111 §5.2: Cache-Control = #cache-directive; token [ "=" ( token / quoted-string ) ].
_DIRECTIVE = rf"{_TCHARS}(?:=(?:{_TCHARS}|{_QUOTED}))?"
_CACHE_CONTROL = re.compile(rf"{_DIRECTIVE}(?:[ \t]*,[ \t]*{_DIRECTIVE})*")
# RFC 9110 §10.2.3: delay-seconds = 1*DIGIT (bounded here: a day is plenty).
_DELAY_SECONDS = re.compile(r"[0-9]{1,6}")
# RFC 9110 §8.3: media-type = type "/" subtype parameters.
_PARAMETER = rf"[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|{_QUOTED})"
_MEDIA_TYPE = re.compile(rf"{_TCHARS}/{_TCHARS}(?:{_PARAMETER})*")


def valid_cache_control(value: str) -> bool:
    """Well-formed ``Cache-Control`` directives (RFC 9111 §5.2)."""
    return _CACHE_CONTROL.fullmatch(value) is not None


def valid_retry_after(value: str) -> bool:
    """``Retry-After``: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    return _DELAY_SECONDS.fullmatch(value) is not None or parse_http_date(value) is not None


def valid_incremental(value: str) -> bool:
    """``Incremental``: a Structured Fields boolean, ``?0`` or ``?1`` (RFC 8941 §3.3.6)."""
    return value in SF_BOOLEANS


def _valid_media_type(value: str) -> bool:
    return _MEDIA_TYPE.fullmatch(value) is not None


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "content-type": _valid_media_type,
    "cache-control": valid_cache_control,
    "retry-after": valid_retry_after,
    "incremental": valid_incremental,
}


def passed_fields(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The fields the client gets: known names (lower case) with valid values, trimmed."""
    passed = []
    for name, value in fields:
        check = _VALIDATORS.get(name)
        trimmed = value.strip(" \t")
        if check is not None and len(trimmed) <= _MAX_VALUE and check(trimmed):
            passed.append((name, trimmed))
    return passed
