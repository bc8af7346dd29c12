"""The relay's routes and their answers, the same on both transports (``relay.exchange``).

Each path has one method (GET also answers HEAD); another method on it is 405, any other
path 404. :func:`answer` is every route's wrapper: it refuses absolute-form targets and
unknown transfer codings, and turns each ``RelayError`` into its answer through the one
mapping, ``relay.errors.error_answer``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ohttp.aio.readiness import LIVENESS_ANSWER, Readiness, readiness_answer
from ohttp.codings import only_chunked_transfer
from ohttp.keys import KEYS_MEDIA_TYPE
from relay.config import RelayConfig
from relay.errors import (
    MethodNotAllowed,
    NotFound,
    RelayError,
    TransferCodingNotImplemented,
    error_answer,
)
from relay.events import log_failure
from relay.exchange import TEXT_PLAIN, Answer, ClientRequest
from relay.forward import forward
from relay.keymirror import KEYS_PATH
from relay.logmirror import LogMirror
from relay.metrics import Result
from relay.state import RelayState

__all__ = ["Route", "RouteHandler", "RouteTable", "answer", "forward_route", "not_allowed",
           "not_found", "refusal", "relay_routes"]

RouteHandler = Callable[[ClientRequest, RelayState], Awaitable[Answer | None]]
_LOG_TILES = "/log/tile/"


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` on ``path`` (with ``prefix``: on every longer path starting with it);
    ``gateway``: the name of the gateway a forward route forwards to."""

    method: str
    path: str
    handler: RouteHandler
    prefix: bool = False
    gateway: str | None = None


def relay_routes(
    config: RelayConfig, checks: Readiness, log_mirror: LogMirror | None
) -> list[Route]:
    """The relay's routes: the probes, each gateway's POST and keys, the log mirror's."""
    routes = [Route("GET", "/healthz", _liveness), Route("GET", "/readyz", _readiness(checks))]
    for gateway in config.gateways:
        base = f"/{gateway.name}" if gateway.name else ""
        routes.append(Route("POST", base or "/", forward_route(gateway.name),
                            gateway=gateway.name))
        routes.append(Route("GET", f"{base}/{KEYS_PATH}", _keys(gateway.name)))
    if log_mirror is not None:  # the key transparency log, mirrored like the keys
        handler = _log(log_mirror)
        routes.append(Route("GET", "/log/checkpoint", handler))
        routes.append(Route("GET", _LOG_TILES, handler, prefix=True))
    return routes


class RouteTable:
    """The route of a method and path, as aiohttp's router finds it for the same routes."""

    def __init__(self, routes: list[Route]) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: list[Route] = []
        for route in routes:
            if route.prefix:
                self._prefixes.append(route)
            else:
                self._exact.setdefault(route.path, route)

    def forwards(self) -> dict[str, str]:
        """The gateway's name by the path of each forward route that :meth:`find` finds."""
        return {path: route.gateway for path, route in self._exact.items()
                if route.gateway is not None}

    def find(self, method: str, path: str) -> RouteHandler:
        route = self._exact.get(path) or self._prefixed(path)
        if route is None:
            return not_found
        if method == route.method or (method == "HEAD" and route.method == "GET"):
            return route.handler
        return not_allowed(route.method)

    def _prefixed(self, path: str) -> Route | None:
        for route in self._prefixes:
            if path.startswith(route.path) and len(path) > len(route.path):
                return route
        return None


async def answer(handler: RouteHandler, request: ClientRequest, state: RelayState,
                 target: str) -> Answer | None:
    """Every route's wrapper: ``handler``'s answer, or the answer to the ``RelayError`` it
    (or a check before it) raised."""
    try:
        if not _origin_form(target):
            # An absolute-form target names a host: the relay is no forward proxy, and a
            # client never chooses where its request goes (checklist R9).
            raise NotFound("absolute-form target")
        # RFC 9112 §6.1: only exactly "chunked" is understood; anything else is 501, unread.
        if not only_chunked_transfer(request.fields("transfer-encoding")):
            raise TransferCodingNotImplemented("transfer coding")
        return await handler(request, state)
    except RelayError as error:
        return refusal(error, state)


def refusal(error: RelayError, state: RelayState) -> Answer:
    """The answer to ``error``, logged and counted (every route's, and the lane's)."""
    log_failure(error)
    return error_answer(error, state.metrics)


def _origin_form(target: str) -> bool:
    return target.startswith("/") and not target.startswith("//")


async def not_found(_: ClientRequest, __: RelayState) -> Answer | None:
    raise NotFound("no route")


def not_allowed(allow: str) -> RouteHandler:
    async def handle(_: ClientRequest, __: RelayState) -> Answer | None:
        raise MethodNotAllowed(allow)

    return handle


async def _liveness(_: ClientRequest, __: RelayState) -> Answer | None:
    status, text, headers = LIVENESS_ANSWER
    return Answer(status, [TEXT_PLAIN, *headers.items()], text.encode())


def _readiness(checks: Readiness) -> RouteHandler:
    async def handle(_: ClientRequest, __: RelayState) -> Answer | None:
        status, text, headers = await readiness_answer(checks)
        return Answer(status, [TEXT_PLAIN, *headers.items()], text.encode())

    return handle


def forward_route(name: str, *, counted: bool = False) -> RouteHandler:
    """The route that forwards to the gateway ``name``; ``counted``: for requests the rate
    limit has counted already (``relay.forward.forward``)."""

    async def handle(request: ClientRequest, state: RelayState) -> Answer | None:
        return await forward(request, state, name, counted=counted)

    return handle


def _keys(name: str) -> RouteHandler:
    async def handle(_: ClientRequest, state: RelayState) -> Answer | None:
        body, remaining = await state.mirrors[name].get()
        state.metrics.count(Result.KEYS_SERVED)
        # The same bytes for every client; only the remaining lifetime depends on time.
        return Answer(200, [("Content-Type", KEYS_MEDIA_TYPE),
                            ("Cache-Control", f"max-age={remaining}")], body)

    return handle


def _log(mirror: LogMirror) -> RouteHandler:
    async def handle(request: ClientRequest, _: RelayState) -> Answer | None:
        path = request.path.removeprefix("/log/")  # "checkpoint" or "tile/..."
        body, kind, cache = await mirror.get(path)
        return Answer(200, [("Content-Type", kind), ("Cache-Control", cache)], body)

    return handle
