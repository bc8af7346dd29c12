"""One table of Date field values (RFC 9110 §5.6.7, RFC 9458 §6.5) for the gateway and the client.

Each row: an id, a function of the current time giving the value's bytes, and whether the
value is a valid date inside a 60-second window around that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

DIGITS_30 = b"1" + b"0" * 30  # 10**30: seconds-like digits past any date
DIGITS_400 = b"9" * 400


def _fixed(value: bytes) -> Callable[[float], bytes]:
    return lambda _now: value


def _imf(now: float) -> bytes:
    return formatdate(now, usegmt=True).encode()


def _rfc850(now: float) -> bytes:
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(now)).encode()


def _asctime(now: float) -> bytes:
    stamp = time.gmtime(now)
    return time.strftime(f"%a %b {stamp.tm_mday:2d} %H:%M:%S %Y", stamp).encode()


DATE_VALUES: list[tuple[str, Callable[[float], bytes], bool]] = [
    ("imf-fixdate-now", _imf, True),
    ("rfc850-now", _rfc850, True),
    ("asctime-now", _asctime, True),
    ("imf-fixdate-1994", _fixed(b"Sun, 06 Nov 1994 08:49:37 GMT"), False),
    ("rfc850-1994", _fixed(b"Sunday, 06-Nov-94 08:49:37 GMT"), False),
    ("asctime-1994", _fixed(b"Sun Nov  6 08:49:37 1994"), False),
    ("year-0", _fixed(b"Sun, 06 Nov 0000 08:49:37 GMT"), False),
    ("year-0-short", _fixed(b"Sun, 06 Nov 0 08:49:37 GMT"), False),
    ("year-1", _fixed(b"Mon, 01 Jan 0001 00:00:00 GMT"), False),
    ("year-10000", _fixed(b"Mon, 06 Nov 10000 08:49:37 GMT"), False),
    ("year-9999-end", _fixed(b"Fri, 31 Dec 9999 23:59:59 GMT"), False),
    ("negative-year", _fixed(b"Sun, 06 Nov -1994 08:49:37 GMT"), False),
    ("digits-10e30", _fixed(DIGITS_30), False),
    ("year-10e30", _fixed(b"Sun, 06 Nov " + DIGITS_30 + b" 08:49:37 GMT"), False),
    ("digits-400", _fixed(DIGITS_400), False),
    ("year-400-digits", _fixed(b"Sun, 06 Nov " + DIGITS_400 + b" 08:49:37 GMT"), False),
    ("non-ascii", _fixed(b"Sun, 06 Nov 1994 08:49:37 G\xc3\x9cT"), False),
    ("non-ascii-only", _fixed(b"\xff\xfe\x80"), False),
    ("no-zone", _fixed(b"Sun, 06 Nov 1994 08:49:37"), False),
    ("not-a-date", _fixed(b"yesterday"), False),
]
