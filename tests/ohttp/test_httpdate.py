"""HTTP-date parsing (RFC 9110 §5.6.7) and the client's server-clock offset, over one table."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ohttp import bhttp
from ohttp.aio._responses import InnerResponse, header_dict, server_time_offset
from ohttp.errors import PROBLEM_DATE, PROBLEM_JSON
from ohttp.httpdate import parse_http_date
from tests.date_values import DATE_VALUES

ROWS = pytest.mark.parametrize(
    ("make", "valid"), [row[1:] for row in DATE_VALUES], ids=[row[0] for row in DATE_VALUES]
)
NOW = 1_780_000_000.0  # a fixed clock: the table's valid rows are built from it


def date_problem(date: bytes) -> InnerResponse:
    fields: bhttp.Fields = ((b"content-type", PROBLEM_JSON.encode()), (b"date", date))
    body = json.dumps({"type": PROBLEM_DATE, "status": 400}).encode()
    return InnerResponse(400, header_dict(fields), body)


@ROWS
def test_parse_never_raises(make: Callable[[float], bytes], valid: bool) -> None:
    value = make(NOW)
    parsed = parse_http_date(value)
    assert parse_http_date(value.decode("latin-1")) == parsed
    if valid:
        assert parsed == NOW
    else:
        assert parsed is None or abs(parsed - NOW) > 60


@ROWS
def test_client_offset_ignores_what_is_no_date(make: Callable[[float], bytes], valid: bool) -> None:
    offset = server_time_offset(date_problem(make(NOW)), NOW - 5.0)
    if valid:
        assert offset == 5.0
    else:
        parsed = parse_http_date(make(NOW))
        assert offset == (None if parsed is None else parsed - (NOW - 5.0))


def test_obsolete_forms_name_the_same_instant() -> None:
    # RFC 9110 §5.6.7: recipients accept all three forms.
    values = [b"Sun, 06 Nov 1994 08:49:37 GMT", b"Sunday, 06-Nov-94 08:49:37 GMT",
              b"Sun Nov  6 08:49:37 1994"]
    assert {parse_http_date(v) for v in values} == {784111777.0}
    assert parse_http_date(b"Sun Nov  6 08:49:37") is None  # asctime without its year
    assert parse_http_date(b"Sun, 06 Nov 0000 08:49:37 GMT") is None  # not read as 2000
    assert parse_http_date(b"Sun Nov  6 08:49:37 0000") is None
    assert parse_http_date(b"Sat, 06 Nov 0100 08:49:37 GMT") is not None  # literal year 100
