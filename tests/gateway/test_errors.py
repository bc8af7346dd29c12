"""gateway.errors: the one mapping from exceptions to answers and metric results."""

from __future__ import annotations

import json

import pytest

import gateway.errors as errors_module
from gateway.backends import BackendError, BackendTimeout
from gateway.errors import (
    BadMediaType,
    BadMethod,
    BodyTooLarge,
    DateOutOfWindow,
    ExpectNotAllowed,
    ForbiddenTarget,
    GatewayError,
    Overloaded,
    Replay,
    Result,
    inner_reply,
    outer_reply,
)
from ohttp import bhttp
from ohttp.errors import (
    PROBLEM_DATE,
    PROBLEM_OHTTP_KEY,
    BinaryHTTPError,
    DecapsulationError,
    DecryptionError,
    EncapsulationError,
    KeyConfigError,
    MessageTooLargeError,
    UnknownKeyError,
    UnsupportedSuiteError,
)


@pytest.mark.parametrize(
    ("exc", "status", "result"),
    [
        (BadMethod(), 405, Result.BAD_METHOD),
        (BadMediaType(), 415, Result.BAD_MEDIA_TYPE),
        (BodyTooLarge(), 413, Result.TOO_LARGE),
        (Overloaded(), 503, Result.OVERLOADED),
        (EncapsulationError("x"), 400, Result.MALFORMED),
        (KeyConfigError("x"), 400, Result.MALFORMED),
        (UnknownKeyError(), 422, Result.KEY_UNKNOWN),
        (UnsupportedSuiteError(), 422, Result.KEY_UNKNOWN),
        (DecryptionError(), 422, Result.DECRYPT_FAILED),
    ],
)
def test_outer_statuses(exc: BaseException, status: int, result: Result) -> None:
    reply = outer_reply(exc)
    assert reply is not None
    assert (reply.status, reply.result) == (status, result)


def test_retry_after_and_allow() -> None:
    overloaded, method = outer_reply(Overloaded()), outer_reply(BadMethod())
    assert overloaded is not None and overloaded.headers["Retry-After"] == "1"
    assert method is not None and method.headers["Allow"] == "GET, POST"


def test_every_decapsulation_failure_gets_the_same_problem() -> None:
    replies = [outer_reply(cls()) for cls in DecapsulationError.__subclasses__()]
    replies.append(outer_reply(DecapsulationError()))
    answers = {(r.status, tuple(r.headers.items()), r.body) for r in replies if r is not None}
    assert len(answers) == 1
    ((status, headers, body),) = answers
    assert status == 422
    assert dict(headers)["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"] == PROBLEM_OHTTP_KEY


@pytest.mark.parametrize(
    ("exc", "status", "result"),
    [
        (BinaryHTTPError("x"), 400, Result.MALFORMED),
        (MessageTooLargeError("x"), 413, Result.TOO_LARGE),
        (ForbiddenTarget(), 403, Result.FORBIDDEN_TARGET),
        (ExpectNotAllowed(), 417, Result.MALFORMED),
        (BackendError(), 502, Result.BACKEND_ERROR),
        (BackendTimeout(), 504, Result.BACKEND_TIMEOUT),
        (ValueError("unencodable backend response"), 502, Result.BACKEND_ERROR),
        (Overloaded(), 503, Result.OVERLOADED),
        (DateOutOfWindow(), 400, Result.DATE),
        (Replay(), 400, Result.REPLAY),
    ],
)
def test_inner_statuses(exc: BaseException, status: int, result: Result) -> None:
    reply = inner_reply(exc)
    assert (reply.response.status, reply.result) == (status, result)
    assert bhttp.decode_response(reply.encoded) == reply.response


def test_date_and_replay_answers_look_alike() -> None:
    date, replay = inner_reply(DateOutOfWindow()), inner_reply(Replay())
    assert date.response.content == replay.response.content
    assert [n for n, _ in date.response.headers] == [n for n, _ in replay.response.headers]
    headers = dict(date.response.headers)
    assert headers[b"cache-control"] == b"no-store"
    assert b"date" in headers
    assert json.loads(date.response.content)["type"] == PROBLEM_DATE


def test_every_gateway_error_has_an_answer_and_fixed_message() -> None:
    classes = [
        getattr(errors_module, name)
        for name in errors_module.__all__
        if isinstance(getattr(errors_module, name), type)
        and issubclass(getattr(errors_module, name), GatewayError)
        and getattr(errors_module, name) is not GatewayError
    ]
    assert len(classes) >= 8
    for cls in classes:
        exc = cls()
        assert str(exc) == cls.message
        assert outer_reply(exc) is not None or inner_reply(exc).response.status != 500


def test_unknown_exception_has_no_outer_answer() -> None:
    assert outer_reply(RuntimeError("x")) is None
    assert inner_reply(RuntimeError("x")).response.status == 500
