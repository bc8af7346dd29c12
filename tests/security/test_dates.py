"""Every inner Date value, however odd, at the real gateway (RFC 9458 §6.5; RFC 9110 §5.6.7):
an encapsulated 400 #date problem, or success when it is a valid date inside the window;
never an outer 5xx, never an inner 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from tests.date_values import DATE_VALUES

from .conftest import Gateway, exchange
from .test_gateway_inner import assert_date_problem


@pytest.mark.parametrize(
    ("make", "valid"), [row[1:] for row in DATE_VALUES], ids=[row[0] for row in DATE_VALUES]
)
def test_every_date_value_is_answered_inside(
    gateway: Gateway, make: Callable[[float], bytes], valid: bool
) -> None:
    path = f"/date-{uuid.uuid4().hex}".encode()
    inner = gateway.inner(path, headers=((b"date", make(time.time())),))
    response = exchange(gateway, inner)[1]  # asserts an outer 200 message/ohttp-res
    if valid:
        assert response.status == 200
        assert gateway.origin.count(path.decode()) == 1
    else:
        assert_date_problem(response)
        assert gateway.origin.count(path.decode()) == 0
