"""The one mapping from the relay's exceptions to its answers: status, fixed text, headers and
the metric result, for every leaf of the tree."""

from __future__ import annotations

import pytest

from relay import errors
from relay.app import web_response
from relay.metrics import RelayMetrics, Result

Case = tuple[errors.RelayError, int, str, dict[str, str], Result]

CASES: list[Case] = [
    (errors.NotFound("x"), 404, "Not Found", {}, Result.NOT_FOUND),
    (errors.MethodNotAllowed("POST"), 405, "Method Not Allowed", {"Allow": "POST"},
     Result.METHOD_NOT_ALLOWED),
    (errors.RateLimited(7), 429, "too many requests", {"Retry-After": "7"}, Result.RATE_LIMITED),
    (errors.Overloaded("x"), 503, "overloaded", {"Retry-After": "1"}, Result.OVERLOADED),
    (errors.UnsupportedMediaType("x"), 415, "unsupported media type", {},
     Result.UNSUPPORTED_MEDIA_TYPE),
    (errors.TransferCodingNotImplemented("x"), 501, "transfer coding not implemented",
     {"Connection": "close"}, Result.BAD_REQUEST),
    (errors.UnsupportedContentCoding("x"), 415, "unsupported content coding",
     {"Accept-Encoding": "identity"}, Result.UNSUPPORTED_MEDIA_TYPE),
    (errors.RequestTooLarge("x"), 413, "request too large", {"Connection": "close"},
     Result.TOO_LARGE),
    (errors.EmptyRequest("x"), 400, "empty request", {}, Result.BAD_REQUEST),
    (errors.ClientTimeout("x"), 408, "request not relayed", {"Connection": "close"},
     Result.CLIENT_TIMEOUT),
    (errors.ClientAborted("x"), 400, "request not relayed", {"Connection": "close"},
     Result.CLIENT_ABORTED),
    (errors.BodyTooLarge("x"), 413, "request not relayed", {"Connection": "close"},
     Result.TOO_LARGE),
    (errors.UpstreamError("x"), 502, "bad gateway", {}, Result.UPSTREAM_UNAVAILABLE),
    (errors.UpstreamProtocolError("x"), 502, "bad gateway", {}, Result.UPSTREAM_UNAVAILABLE),
    (errors.GatewayUntrusted("x"), 502, "bad gateway", {}, Result.UPSTREAM_UNAVAILABLE),
    (errors.UpstreamTimeout("x"), 504, "gateway timeout", {}, Result.UPSTREAM_TIMEOUT),
    (errors.GatewayRefused("x"), 502, "bad gateway", {}, Result.GATEWAY_SERVER_ERROR),
    (errors.GatewayUnavailable("30"), 503, "gateway unavailable", {"Retry-After": "30"},
     Result.GATEWAY_SERVER_ERROR),
    (errors.GatewayUnavailable(None), 503, "gateway unavailable", {},
     Result.GATEWAY_SERVER_ERROR),
    (errors.KeysUnavailable("x"), 502, "keys unavailable", {}, Result.KEYS_UNAVAILABLE),
    (errors.KeysTimeout("x"), 504, "gateway timeout", {}, Result.KEYS_UNAVAILABLE),
    (errors.StateUnavailable("timeout"), 503, "service unavailable", {"Retry-After": "1"},
     Result.STATE_UNAVAILABLE),
]


@pytest.mark.parametrize(("error", "status", "text", "headers", "result"), CASES)
def test_error_answer_as_an_aiohttp_response(error: errors.RelayError, status: int, text: str,
                     headers: dict[str, str], result: Result) -> None:
    metrics = RelayMetrics()
    response = web_response(errors.error_answer(error, metrics))
    assert (response.status, response.text) == (status, text + "\n")
    assert {k: v for k, v in response.headers.items() if k != "Content-Type"} == headers
    assert metrics._requests[result] == 1 and sum(metrics._requests.values()) == 1


def test_every_leaf_is_covered() -> None:
    def leaves(cls: type[errors.RelayError]) -> set[type[errors.RelayError]]:
        subclasses = cls.__subclasses__()
        return {cls} if not subclasses else set().union(*(leaves(c) for c in subclasses))

    covered = {type(error) for error, *_ in CASES}
    assert leaves(errors.RelayError) <= covered
