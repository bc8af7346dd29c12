"""The gateway's request handling, independent of the HTTP server in front of it.

One request to the gateway resource, as method + Content-Type + Content-Length + a body reader
in, and one ``Answer`` (status, headers, body, metric result) out:
outer checks -> decapsulate -> Binary HTTP -> policy -> backend -> seal (RFC 9458 §5).
``gateway.app`` (aiohttp) and ``gateway.asgi`` (ASGI) both serve it, so both transports give
byte-identical answers. Which answer each error gets is decided in ``gateway.errors`` alone.

Modules: ``admission`` (the resource's outer checks), ``keydoc`` (the key document),
``deadlines`` (backend timeouts), ``oneshot`` (``message/ohttp-req``), ``streamed`` (chunked
OHTTP), ``state`` (what they share). This is the hot path: answers that do not depend on the
request are built once, metrics are plain counters (``gateway.metrics``), and nothing here logs
unless something failed.
"""

from __future__ import annotations

from gateway.pipeline.admission import (
    BodyChunks,
    BodyReader,
    BodyStream,
    answer_request,
    read_body_within,
    read_chunks,
    streams,
)
from gateway.pipeline.deadlines import BackendDeadlines, BodyDeadline
from gateway.pipeline.keydoc import KeyDocument
from gateway.pipeline.oneshot import handle_encapsulated, inner_answer
from gateway.pipeline.state import Answer, GatewayState
from gateway.pipeline.streamed import StreamAborted, StreamedAnswer

__all__ = [
    "Answer",
    "BackendDeadlines",
    "BodyChunks",
    "BodyDeadline",
    "BodyReader",
    "BodyStream",
    "GatewayState",
    "KeyDocument",
    "StreamAborted",
    "StreamedAnswer",
    "answer_request",
    "handle_encapsulated",
    "inner_answer",
    "read_body_within",
    "read_chunks",
    "streams",
]
