"""The processing service as an aiohttp application, for serving it on its own.

The gateway does not go through this app: it calls the service in-process
(``processing.backend``). Both answer from ``processing.service``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.processing.service import (
    INTERNAL_ERROR,
    MAX_BODY_BYTES,
    ROUTES,
    Handler,
    Reply,
    error_reply,
    respond,
)

__all__ = ["create_app"]


def create_app() -> web.Application:
    """The processing app. Stateless: it holds no data between requests."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_json_errors])
    for path, handler in ROUTES.items():
        app.router.add_post(path, _serving(handler))
    app.on_response_prepare.append(_no_store)
    return app


def _serving(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        return await _send(request, await respond(handler, await _read(request)))

    return serve


async def _read(request: web.Request) -> bytes:
    # client_max_size makes read() raise 413 past MAX_BODY_BYTES; checking the declared
    # length first answers 413 without reading an oversized body at all.
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY_BYTES, actual_size=request.content_length
        )
    return await request.read()


async def _send(request: web.Request, reply: Reply) -> web.StreamResponse:
    if reply.lines is None:
        return _response(reply)
    response = web.StreamResponse(headers={"Content-Type": f"{reply.content_type}; charset=utf-8"})
    await response.prepare(request)
    try:
        async for line in reply.lines:
            # StreamResponse.write sends the line at once (and drains if the peer is slow),
            # so a streaming gateway can forward each sentence as its own chunk.
            await response.write(line)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; nothing to clean up, nothing to keep
    return response


def _response(reply: Reply) -> web.Response:
    response = web.Response(
        body=reply.body, status=reply.status, content_type=reply.content_type, charset="utf-8"
    )
    if reply.allow is not None:
        response.headers["Allow"] = reply.allow
    return response


Middleware = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Middleware) -> web.StreamResponse:
    """Every error as a fixed JSON body: no input, no traceback, nothing logged."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        return _response(error_reply(error.status))
    except Exception:  # last resort; the tests show bad inputs never get here
        return _response(INTERNAL_ERROR)


async def _no_store(_request: web.Request, response: web.StreamResponse) -> None:
    # Results are private to one request: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
