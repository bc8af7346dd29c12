"""HTTP-date parsing that never raises (RFC 9110 §5.6.7).

Any value, however odd (a year past 9999, digits beyond a machine integer, non-ASCII bytes),
is either a point in time or None: callers answer None as they answer an unacceptable date
(RFC 9458 §6.5), never with an exception.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["parse_http_date"]

# RFC 9110 §5.6.7 asctime-date (obsolete, no zone, always GMT): "Sun Nov  6 08:49:37 1994".
_ASCTIME = re.compile(
    r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}"
)

# A year written with 3+ digits below 100 ("0000"): email.utils would read it as 2000; in an
# HTTP-date a 4DIGIT year is literal, and year 0 cannot be represented.
_LOW_LONG_YEAR = re.compile(r"(?:^|[ -])00+[0-9]{0,2}(?:$| )")


def parse_http_date(value: str | bytes) -> float | None:
    """Seconds since the epoch of an IMF-fixdate, RFC 850 or asctime date; None otherwise."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not text.isascii() or _LOW_LONG_YEAR.search(text) is not None:
        return None
    try:
        parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is None:  # only the asctime form may omit the zone: it is GMT
            if _ASCTIME.fullmatch(text.strip()) is None:
                return None
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    except (ValueError, TypeError, IndexError, OverflowError):
        # Not a date, or one the datetime code cannot represent (year 0 or past 9999, ...).
        return None
