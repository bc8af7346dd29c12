"""An Oblivious Gateway in front of any ASGI application, as ASGI middleware.

``OhttpMiddleware(app, keys, targets=[...])`` answers the gateway resource
(``GET`` key configurations, ``POST message/ohttp-req`` and ``message/ohttp-chunked-req``,
the latter streamed back as produced) itself and hands each decapsulated inner request to
the wrapped app in-process (``AsgiBackend``: a fresh HTTP scope with ``client`` None).
Every other request, and the lifespan and websocket scopes, pass through untouched. The
handling is ``gateway.pipeline``'s, the same as the aiohttp gateway's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from gateway.app import GATEWAY_PATH
from gateway.backends import AsgiApp, AsgiBackend, Backend, Message, Receive, Scope, Send
from gateway.config import GatewayConfig, TargetPolicy
from gateway.metrics import GatewayMetrics
from gateway.pipeline import (
    Answer,
    GatewayState,
    KeyDocument,
    StreamedAnswer,
    answer_request,
    read_chunks,
)
from ohttp.keys import KeyRing

__all__ = ["OhttpMiddleware"]


class _Disconnected(ConnectionResetError):
    """The client went away before its request body arrived."""


class OhttpMiddleware:
    """ASGI 3 middleware: the gateway resource at ``path``, everything else to ``app``.

    ``targets`` are the authorities inner requests may name (the target allowlist, RFC 9458
    §6.3); anything else gets an encapsulated 403. ``config`` supplies the limits, Date
    window and backend timeout (its ``backend`` and ``allow_target`` are not used).
    ``backend`` replaces the wrapped app as the inner requests' destination.
    """

    def __init__(
        self,
        app: AsgiApp,
        keys: KeyRing,
        *,
        targets: Iterable[str],
        path: str = GATEWAY_PATH,
        config: GatewayConfig | None = None,
        backend: Backend | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        allowed = tuple(targets)
        if not allowed:
            raise ValueError("targets must name at least one authority")
        config = config if config is not None else GatewayConfig()
        self.app = app
        self.path = path
        self.state = GatewayState.from_config(
            config,
            keys,
            backend if backend is not None else AsgiBackend(app),
            metrics=metrics,
            policy=TargetPolicy.from_authorities(allowed),
        )

    def replace_keys(self, keys: KeyRing) -> None:
        """Serve another key ring from now on (in-flight requests keep the old one)."""
        self.state.keys = KeyDocument(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_gateway_path(scope):
            await self.app(scope, receive, send)
            return
        try:
            answer = await answer_request(
                self.state,
                scope["method"],
                _header(scope, b"content-type"),
                _content_length(scope),
                lambda length, limit: read_chunks(_request_body(receive), length, limit),
                body_chunks=lambda: _request_body(receive),
                content_encoding=_all_values(scope, b"content-encoding"),
                transfer_encoding=_all_values(scope, b"transfer-encoding"),
            )
        except _Disconnected:
            return  # nobody to answer
        if isinstance(answer, StreamedAnswer):
            await _send_streamed(send, answer)
        else:
            await _send_answer(send, answer, head=scope["method"] == "HEAD")

    def _is_gateway_path(self, scope: Scope) -> bool:
        path: str = scope["path"]
        # Hosts differ on whether scope["path"] includes root_path; accept both forms.
        return path == self.path or path == scope.get("root_path", "") + self.path


def _all_values(scope: Scope, name: bytes) -> str | None:
    values = [bytes(v).decode("latin-1") for k, v in scope["headers"] if bytes(k).lower() == name]
    return ", ".join(values) if values else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None or not value.isdigit():
        return None  # the host server has already rejected invalid framing
    return int(value)


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            yield bytes(chunk)
        if not message.get("more_body", False):
            return


async def _send_answer(send: Send, answer: Answer, *, head: bool) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.items()
    ]
    headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
    start: dict[str, Any] = {"type": "http.response.start", "status": answer.status}
    start["headers"] = headers
    await send(start)
    await send({"type": "http.response.body", "body": b"" if head else answer.body})


async def _send_streamed(send: Send, answer: StreamedAnswer) -> None:
    """Each piece sent as it is produced. ``StreamAborted`` propagates: an ASGI server closes
    the connection when the app fails after the response started, which is what the client
    must see (truncation, never a complete response; chunked-08 §7.1)."""
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.items()
    ]
    try:
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        async for piece in answer:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    finally:
        await answer.aclose()
    await send({"type": "http.response.body", "body": b"", "more_body": False})
