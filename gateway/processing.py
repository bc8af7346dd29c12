"""The embedded private-processing backend: chat summaries and writing help, keeping nothing.

Served by the gateway at the authority ``processing.internal``:

- ``POST /v1/summarize`` ``{"messages": [{"sender", "text"}, ...], "max_sentences": N}``
  -> ``{"summary", "highlights", "language"}``
- ``POST /v1/summarize/stream`` (same body) -> ``application/x-ndjson``: one
  ``{"sentence", "sender"}`` line per chosen sentence, then ``{"done": true, "language",
  "highlights"}``. A stream without the ``done`` line is incomplete.
- ``POST /v1/rewrite`` ``{"text", "style": "concise"|"formal"|"friendly"}``
  -> ``{"text", "changes": [{"rule", "before", "after"}, ...]}``

Stateless by construction: handlers read the body, compute, answer. Nothing is logged,
written to disk or kept between requests; error bodies are fixed strings that never echo
the input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from gateway import _text

MAX_BODY_BYTES: Final = 256 * 1024
MAX_MESSAGES: Final = 500
MAX_SENDER_CHARS: Final = 64
MAX_MESSAGE_CHARS: Final = 4_000
MAX_CONVERSATION_CHARS: Final = 100_000
MAX_REWRITE_CHARS: Final = 20_000
MAX_SENTENCES: Final = 20
DEFAULT_MAX_SENTENCES: Final = 4
MAX_REPORTED_CHANGES: Final = 500

JSON_TYPE: Final = "application/json"
NDJSON_TYPE: Final = "application/x-ndjson"


class BadRequest(Exception):
    """Invalid input; the message is a fixed string, safe to return (never echoes input)."""


@dataclass(frozen=True, slots=True)
class SummarizeInput:
    messages: tuple[_text.ChatMessage, ...]
    max_sentences: int


@dataclass(frozen=True, slots=True)
class RewriteInput:
    text: str
    style: str


def create_app() -> web.Application:
    """The processing app. Stateless: it holds no data between requests."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_json_errors])
    app.router.add_post("/v1/summarize", summarize)
    app.router.add_post("/v1/summarize/stream", summarize_stream)
    app.router.add_post("/v1/rewrite", rewrite)
    app.on_response_prepare.append(_no_store)
    return app


# --- Handlers -----------------------------------------------------------------------------


async def summarize(request: web.Request) -> web.Response:
    """``POST /v1/summarize``: the whole summary as one JSON object."""
    query = parse_summarize(await _read_json(request))
    # In a worker thread: a maximal conversation takes a fraction of a second of CPU, which
    # must not stall the event loop the gateway shares with this app.
    summary = await asyncio.to_thread(_text.summarize_chat, query.messages, query.max_sentences)
    return _json(
        {
            "summary": summary.render(),
            "highlights": list(summary.highlights),
            "language": summary.language,
        }
    )


async def summarize_stream(request: web.Request) -> web.StreamResponse:
    """``POST /v1/summarize/stream``: NDJSON, one line per chosen sentence, then ``done``."""
    query = parse_summarize(await _read_json(request))  # errors before the stream starts
    analysis = await asyncio.to_thread(_text.ChatAnalysis, query.messages)
    response = web.StreamResponse(headers={"Content-Type": f"{NDJSON_TYPE}; charset=utf-8"})
    await response.prepare(request)
    picked: list[_text.Picked] = []
    try:
        for pick in analysis.selected(query.max_sentences):
            picked.append(pick)
            # StreamResponse.write sends the line at once (and drains if the peer is slow),
            # so a streaming gateway can forward each sentence as its own chunk.
            await response.write(_ndjson({"sentence": pick.sentence, "sender": pick.sender}))
        done = {"done": True, "language": analysis.language,
                "highlights": analysis.highlights(picked)}
        await response.write(_ndjson(done))
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; nothing to clean up, nothing to keep
    return response


async def rewrite(request: web.Request) -> web.Response:
    """``POST /v1/rewrite``: the rewritten text and the list of changes."""
    query = parse_rewrite(await _read_json(request))
    result = await asyncio.to_thread(_text.rewrite, query.text, query.style)
    changes = [
        {"rule": c.rule, "before": c.before, "after": c.after}
        for c in result.changes[:MAX_REPORTED_CHANGES]
    ]
    return _json({"text": result.text, "changes": changes})


# --- Input validation ---------------------------------------------------------------------


def parse_summarize(document: object) -> SummarizeInput:
    """Validate a summarize body; raises BadRequest with a fixed message."""
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    items = document.get("messages")
    if not isinstance(items, list) or not items:
        raise BadRequest("messages must be a non-empty array")
    if len(items) > MAX_MESSAGES:
        raise BadRequest("too many messages")
    messages = tuple(_parse_message(item) for item in items)
    if sum(len(m.text) for m in messages) > MAX_CONVERSATION_CHARS:
        raise BadRequest("conversation too long")
    max_sentences = document.get("max_sentences", DEFAULT_MAX_SENTENCES)
    # bool is an int subclass; "true" sentences is not a count.
    if type(max_sentences) is not int or not 1 <= max_sentences <= MAX_SENTENCES:
        raise BadRequest(f"max_sentences must be an integer from 1 to {MAX_SENTENCES}")
    return SummarizeInput(messages, max_sentences)


def _parse_message(item: object) -> _text.ChatMessage:
    if not isinstance(item, dict):
        raise BadRequest("each message must be an object")
    sender, text = item.get("sender"), item.get("text")
    if not isinstance(sender, str) or not isinstance(text, str):
        raise BadRequest("each message needs a string sender and a string text")
    if not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"sender must have 1 to {MAX_SENDER_CHARS} characters")
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadRequest("message text too long")
    return _text.ChatMessage(sender, text)


def parse_rewrite(document: object) -> RewriteInput:
    """Validate a rewrite body; raises BadRequest with a fixed message."""
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    text, style = document.get("text"), document.get("style")
    if not isinstance(text, str):
        raise BadRequest("text must be a string")
    if len(text) > MAX_REWRITE_CHARS:
        raise BadRequest("text too long")
    if not isinstance(style, str) or style not in _text.STYLES:
        raise BadRequest("style must be concise, formal or friendly")
    return RewriteInput(text, style)


async def _read_json(request: web.Request) -> object:
    # client_max_size makes read() raise 413 past MAX_BODY_BYTES; checking the declared
    # length first answers 413 without reading an oversized body at all.
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY_BYTES, actual_size=request.content_length
        )
    body = await request.read()
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON, NaN, deep nesting
        raise BadRequest("body must be valid JSON") from error


def _reject_constant(_name: str) -> object:
    raise ValueError("NaN and Infinity are not JSON")


# --- Responses ----------------------------------------------------------------------------


def _json_bytes(document: object) -> bytes:
    # Readable UTF-8 (déménage, not d\u00e9m\u00e9nage). A lone surrogate from the input
    # cannot be UTF-8: backslashreplace writes it as the JSON escape \udXXX, and since
    # surrogates only occur inside JSON strings, the output stays valid JSON.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _json(document: object, status: int = 200) -> web.Response:
    return web.Response(
        body=_json_bytes(document), status=status, content_type=JSON_TYPE, charset="utf-8"
    )


def _ndjson(document: object) -> bytes:
    return _json_bytes(document) + b"\n"


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


_HTTP_ERRORS: Final = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as a fixed JSON body: no input, no traceback, nothing logged."""
    try:
        return await handler(request)
    except BadRequest as error:
        return _error(400, str(error))
    except web.HTTPException as error:
        response = _error(error.status, _HTTP_ERRORS.get(error.status, "request failed"))
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:  # last resort; the tests show bad inputs never get here
        return _error(500, "internal error")


async def _no_store(_request: web.Request, response: web.StreamResponse) -> None:
    # Results are private to one request: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
