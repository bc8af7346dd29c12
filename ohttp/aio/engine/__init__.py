"""The serving engine of the standalone servers: HTTP/1.1 on llhttp (httptools) and asyncio.

Why not aiohttp's server here: for the gateway's one-shot request it spends about 40 µs per
request on HTTP alone, and its per-request objects (request, response, router match, header
multidicts, a task switch) also slow the crypto beside them through the caches
(``benchmarks/README.md``, issue 18). The engine parses with llhttp (strict, the parser of
Node.js), answers each request with one ``write`` and keeps one task per connection.

A handler gets an :class:`Exchange` (the request head, its body as it arrives, and the one
answer) and must answer it. The engine owns the limits and deadlines of the connection
(:class:`EngineLimits`); the handler those of its request (body, backend, write).
"""

from ohttp.aio.engine._body import Body
from ohttp.aio.engine._deadline import ConnectionDeadline
from ohttp.aio.engine._exchange import Exchange, Handler, WriteStalled, log_client_gone
from ohttp.aio.engine._head import Head, Headers
from ohttp.aio.engine._lane import LANE_MAX_BODY, Lane, LaneRequest
from ohttp.aio.engine._server import EngineLimits, EngineServer
from ohttp.aio.engine._wire import OVER_CAPACITY, TEXT_PLAIN, fixed_page, fixed_text

__all__ = [
    "LANE_MAX_BODY",
    "OVER_CAPACITY",
    "TEXT_PLAIN",
    "Body",
    "ConnectionDeadline",
    "EngineLimits",
    "EngineServer",
    "Exchange",
    "Handler",
    "Head",
    "Headers",
    "Lane",
    "LaneRequest",
    "WriteStalled",
    "fixed_page",
    "fixed_text",
    "log_client_gone",
]
