"""gateway.errors: the one mapping from exceptions to answers and metric results."""

from __future__ import annotations

import json

import pytest

import gateway.errors as errors_module
from gateway.backends.base import encode_response
from gateway.errors import (
    BackendError,
    BackendResponseInvalid,
    BackendTimeout,
    BadMediaType,
    BadMethod,
    BodyTooLarge,
    DateOutOfWindow,
    ExpectNotAllowed,
    ForbiddenTarget,
    GatewayError,
    InnerError,
    OuterError,
    Overloaded,
    Replay,
    ReplayCacheFull,
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
        (BackendResponseInvalid(), 502, Result.BACKEND_ERROR),
        (ReplayCacheFull(), 503, Result.OVERLOADED),
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


def _instance(cls: type[GatewayError]) -> GatewayError:
    # A token refusal carries the challenge its 401 sends back.
    if issubclass(cls, errors_module.TokenRejected):
        return cls('PrivateToken challenge="AAA=", token-key="AAA="')
    return cls()


def test_every_gateway_error_has_an_answer_and_fixed_message() -> None:
    classes = [
        getattr(errors_module, name)
        for name in errors_module.__all__
        if isinstance(getattr(errors_module, name), type)
        and issubclass(getattr(errors_module, name), GatewayError)
        and getattr(errors_module, name) not in (GatewayError, OuterError, InnerError)
    ]
    assert len(classes) >= 8
    for cls in classes:
        exc = _instance(cls)
        assert str(exc) == cls.message
        assert outer_reply(exc) is not None or inner_reply(exc).response.status != 500


def test_unknown_exception_has_no_outer_answer() -> None:
    assert outer_reply(RuntimeError("x")) is None
    assert inner_reply(RuntimeError("x")).response.status == 500


ERROR_CLASSES = [
    cls
    for name in errors_module.__all__
    if isinstance(cls := getattr(errors_module, name), type)
    and issubclass(cls, GatewayError)
    and cls not in (GatewayError, OuterError, InnerError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_belongs_to_exactly_one_plane(cls: type[GatewayError]) -> None:
    assert issubclass(cls, OuterError) != issubclass(cls, InnerError)
    outer, inner = outer_reply(_instance(cls)), inner_reply(_instance(cls))
    if issubclass(cls, OuterError):  # RFC 9458 §5.2: a plain status, never sealed
        assert outer is not None
        assert inner.response.status == 500  # the fallback: no inner entry
    else:  # sealed inside a 200 message/ohttp-res, never a plain status
        assert outer is None
        assert inner.response.status != 500


@pytest.mark.parametrize(
    "exc",
    [ValueError("x"), UnicodeError("x"), TypeError("x"), KeyError("x"), RuntimeError("x")],
    ids=lambda exc: type(exc).__name__,
)
def test_builtin_exceptions_are_bugs_not_statuses(exc: Exception) -> None:
    """No table maps a builtin: a ValueError after decapsulation is the 500 fallback, not 502."""
    assert outer_reply(exc) is None
    reply = inner_reply(exc)
    assert (reply.response.status, reply.result) == (500, Result.BACKEND_ERROR)


def test_an_unencodable_backend_response_is_a_backend_error_at_the_seam() -> None:
    response = bhttp.Response(200, headers=((b"bad name", b"x"),))
    with pytest.raises(ValueError):
        bhttp.encode_response(response)
    with pytest.raises(BackendResponseInvalid):
        encode_response(response)
    assert inner_reply(BackendResponseInvalid()).response.status == 502
