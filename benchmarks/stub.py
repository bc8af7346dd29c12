"""The stub gateway of issue 18, the reference for the gateway's own cost (a benchmark server).

    python -m benchmarks.stub --listen HOST:PORT --keys FILE --answer-bytes N --path /P
        [--shell | --engine [--work]] [--timed]

One aiohttp + uvloop process whose POST ``path`` reads the body, decapsulates it
(``decapsulate_request``) and answers a sealed fixed body of ``answer-bytes``: what any aiohttp
gateway with this crypto must at least spend. ``--shell`` serves the same handler through the
project's serving shell (``ohttp.aio.serving.serving``: connection guard, head deadline,
``tracked``, no ``Server`` field), to tell the shell's cost from the gateway's request path;
``--engine`` serves it on the serving engine of ``ohttp gateway`` (``ohttp.aio.engine``);
``--work`` adds the request work the gateway must do and the stub does not, with none of the
gateway's own code around it: Binary HTTP decode, the echo backend's body, Binary HTTP encode,
padding to the size classes, then sealing that answer.
``--timed`` adds the thread CPU time spent inside decapsulation and sealing, read with
``GET /crypto-cpu`` (``REQUESTS SECONDS``): what the crypto costs inside a loaded server, as
opposed to a warm loop (``benchmarks.crypto_in_server``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from benchmarks.procs import serve_app
from gateway.backends.echo import EchoBackend
from gateway.config import GatewayConfig
from ohttp import bhttp
from ohttp.aio.engine import EngineLimits, Exchange
from ohttp.aio.guard import ConnectionTracker
from ohttp.aio.keyfile import load_key_file
from ohttp.aio.readiness import healthz
from ohttp.aio.serving import (
    TRACKER,
    run_worker,
    serving,
    serving_engine,
    tracked,
    wait_for_stop,
)
from ohttp.encapsulation import decapsulate_request
from ohttp.padding import pad_message

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def stub_app(
    keys: str, answer_bytes: int, path: str, *, timed: bool, wrap: Callable[[Handler], Handler]
) -> web.Application:
    ring = load_key_file(keys)
    answer = bytes(max(0, answer_bytes - 32))  # the sealed answer adds a 16-byte nonce and tag
    spent = [0, 0.0]  # requests, thread CPU seconds inside the crypto

    def crypto(body: bytes) -> bytes:
        _inner, sealer = decapsulate_request(ring, body)
        return sealer.seal(answer)

    def timed_crypto(body: bytes) -> bytes:
        started = time.thread_time()
        sealed = crypto(body)
        spent[0] += 1
        spent[1] += time.thread_time() - started
        return sealed

    seal: Callable[[bytes], bytes] = timed_crypto if timed else crypto

    async def stub(request: web.Request) -> web.Response:
        return web.Response(body=seal(await request.read()), content_type="message/ohttp-res")

    async def crypto_cpu(_request: web.Request) -> web.Response:
        return web.Response(text=f"{spent[0]} {spent[1]:.6f}\n")

    app = web.Application()
    app.router.add_post(path, wrap(stub))
    if timed:
        app.router.add_get("/crypto-cpu", crypto_cpu)
    return app


def _serve_in_shell(app: web.Application, listen: str) -> None:
    config = GatewayConfig()  # the gateway's default limits
    app.router.add_get("/healthz", tracked(healthz))
    tracker = ConnectionTracker(
        config.max_connections, config.header_timeout, keepalive_timeout=config.keepalive_timeout
    )
    app[TRACKER] = tracker
    host, _, port = listen.rpartition(":")

    async def main() -> None:
        async with serving(app, (host, int(port)), tracker):
            gc.freeze()  # as the gateway's workers
            await wait_for_stop()

    run_worker(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stub")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--keys", required=True, help="key file")
    parser.add_argument("--answer-bytes", type=int, required=True)
    parser.add_argument("--path", required=True, help="the POST route")
    parser.add_argument("--shell", action="store_true", help="serve through ohttp.aio.serving")
    parser.add_argument("--engine", action="store_true", help="serve on ohttp.aio.engine")
    parser.add_argument("--work", action="store_true",
                        help="with --engine: also the gateway's Binary HTTP, echo and padding")
    parser.add_argument("--timed", action="store_true", help="time the crypto: GET /crypto-cpu")
    args = parser.parse_args(argv)
    if args.engine:
        _serve_on_engine(args.keys, args.answer_bytes, args.path, args.listen, work=args.work)
        return 0
    app = stub_app(args.keys, args.answer_bytes, args.path, timed=args.timed,
                   wrap=tracked if args.shell else _unchanged)
    if args.shell:
        _serve_in_shell(app, args.listen)
    else:
        serve_app(app, args.listen)
    return 0


def _serve_on_engine(keys: str, answer_bytes: int, path: str, listen: str, *, work: bool) -> None:
    ring = load_key_file(keys)
    answer = bytes(max(0, answer_bytes - 32))
    config = GatewayConfig()
    headers = [("Content-Type", "message/ohttp-res")]
    echo = EchoBackend()

    async def answer_to(inner: bytes) -> bytes:
        if not work:
            return answer
        response = await echo.handle(bhttp.decode_request(inner, _LIMITS))
        return pad_message(bhttp.encode_response(response), config.padding)

    async def handle(exchange: Exchange) -> None:
        if exchange.head.path == path:
            body = await exchange.body.readexactly(exchange.head.content_length or 0)
            inner, sealer = decapsulate_request(ring, body)
            exchange.respond(200, headers, sealer.seal(await answer_to(inner)))
        else:  # /healthz
            exchange.respond(200, [], b"ok\n")

    async def main() -> None:
        limits = EngineLimits(config.max_connections, config.header_timeout,
                              config.keepalive_timeout)
        async with serving_engine(web.Application(), lambda _app: handle,
                                  (host, int(port)), limits):
            gc.freeze()
            await wait_for_stop()

    host, _, port = listen.rpartition(":")
    run_worker(main)


_LIMITS = bhttp.Limits()


def _unchanged(handler: Handler) -> Handler:
    return handler


if __name__ == "__main__":
    sys.exit(main())
