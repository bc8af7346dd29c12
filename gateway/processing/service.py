"""The private-processing service itself, independent of any HTTP server.

``answer(method, path, body)`` routes one request and returns a :class:`Reply`; the aiohttp app
(``processing.app``) and the gateway's in-process backend (``processing.backend``) both serve
these replies, so they give the same answers.

Stateless by construction: handlers read the body, compute, answer. Nothing is logged, written
to disk or kept between requests; error bodies are fixed strings that never echo the input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from gateway.processing import text

__all__ = [
    "DEFAULT_MAX_SENTENCES",
    "INTERNAL_ERROR",
    "MAX_BODY_BYTES",
    "ROUTES",
    "BadRequest",
    "Reply",
    "RewriteInput",
    "SummarizeInput",
    "answer",
    "error_reply",
    "parse_rewrite",
    "parse_summarize",
    "respond",
]

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
ALLOWED_METHOD: Final = "POST"


class BadRequest(Exception):
    """Invalid input; the message is a fixed string, safe to return (never echoes input)."""


@dataclass(frozen=True, slots=True)
class SummarizeInput:
    messages: tuple[text.ChatMessage, ...]
    max_sentences: int


@dataclass(frozen=True, slots=True)
class RewriteInput:
    text: str
    style: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: a whole JSON body, or (``lines``) NDJSON lines sent as they are made."""

    status: int
    body: bytes = b""
    lines: AsyncIterator[bytes] | None = None
    allow: str | None = None

    @property
    def content_type(self) -> str:
        return NDJSON_TYPE if self.lines is not None else JSON_TYPE


Handler = Callable[[object], Awaitable[Reply]]


# --- Handlers -----------------------------------------------------------------------------


async def summarize(document: object) -> Reply:
    """``POST /v1/summarize``: the whole summary as one JSON object."""
    query = parse_summarize(document)
    # In a worker thread: a maximal conversation takes a fraction of a second of CPU, which
    # must not stall the event loop the gateway shares with this service.
    summary = await asyncio.to_thread(text.summarize_chat, query.messages, query.max_sentences)
    return _json(
        {
            "summary": summary.render(),
            "highlights": list(summary.highlights),
            "language": summary.language,
        }
    )


async def summarize_stream(document: object) -> Reply:
    """``POST /v1/summarize/stream``: NDJSON, one line per chosen sentence, then ``done``."""
    query = parse_summarize(document)  # errors before the stream starts
    analysis = await asyncio.to_thread(text.ChatAnalysis, query.messages)
    return Reply(200, lines=_summary_lines(analysis, query.max_sentences))


async def _summary_lines(analysis: text.ChatAnalysis, max_sentences: int) -> AsyncIterator[bytes]:
    picked: list[text.Picked] = []
    for pick in analysis.selected(max_sentences):
        picked.append(pick)
        yield _ndjson({"sentence": pick.sentence, "sender": pick.sender})
    done = {"done": True, "language": analysis.language,
            "highlights": analysis.highlights(picked)}
    yield _ndjson(done)


async def rewrite(document: object) -> Reply:
    """``POST /v1/rewrite``: the rewritten text and the list of changes."""
    query = parse_rewrite(document)
    result = await asyncio.to_thread(text.rewrite, query.text, query.style)
    changes = [
        {"rule": c.rule, "before": c.before, "after": c.after}
        for c in result.changes[:MAX_REPORTED_CHANGES]
    ]
    return _json({"text": result.text, "changes": changes})


ROUTES: Final[dict[str, Handler]] = {
    "/v1/summarize": summarize,
    "/v1/summarize/stream": summarize_stream,
    "/v1/rewrite": rewrite,
}


async def answer(method: str, path: str, body: bytes) -> Reply:
    """Route one request (``path`` without the query) and answer it."""
    handler = ROUTES.get(path)
    if handler is None:
        return error_reply(404)
    if method != ALLOWED_METHOD:
        return error_reply(405)
    if len(body) > MAX_BODY_BYTES:
        return error_reply(413)
    return await respond(handler, body)


async def respond(handler: Handler, body: bytes) -> Reply:
    """``handler``'s answer for a request body; every failure as a fixed JSON error."""
    try:
        return await handler(_parse_json(body))
    except BadRequest as error:
        return _error(400, str(error))
    except Exception:  # last resort; the tests show bad inputs never get here
        return INTERNAL_ERROR


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


def _parse_message(item: object) -> text.ChatMessage:
    if not isinstance(item, dict):
        raise BadRequest("each message must be an object")
    sender, content = item.get("sender"), item.get("text")
    if not isinstance(sender, str) or not isinstance(content, str):
        raise BadRequest("each message needs a string sender and a string text")
    if not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"sender must have 1 to {MAX_SENDER_CHARS} characters")
    if len(content) > MAX_MESSAGE_CHARS:
        raise BadRequest("message text too long")
    return text.ChatMessage(sender, content)


def parse_rewrite(document: object) -> RewriteInput:
    """Validate a rewrite body; raises BadRequest with a fixed message."""
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    content, style = document.get("text"), document.get("style")
    if not isinstance(content, str):
        raise BadRequest("text must be a string")
    if len(content) > MAX_REWRITE_CHARS:
        raise BadRequest("text too long")
    if not isinstance(style, str) or style not in text.STYLES:
        raise BadRequest("style must be concise, formal or friendly")
    return RewriteInput(content, style)


def _parse_json(body: bytes) -> object:
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


def _json(document: object, status: int = 200) -> Reply:
    return Reply(status, body=_json_bytes(document))


def _ndjson(document: object) -> bytes:
    return _json_bytes(document) + b"\n"


def _error(status: int, message: str) -> Reply:
    return _json({"error": message}, status=status)


INTERNAL_ERROR: Final = _error(500, "internal error")
_HTTP_ERRORS: Final = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


def error_reply(status: int) -> Reply:
    """The fixed JSON answer for an HTTP-level error (no route, wrong method, too large)."""
    reply = _error(status, _HTTP_ERRORS.get(status, "request failed"))
    if status == 405:
        return Reply(reply.status, reply.body, allow=ALLOWED_METHOD)
    return reply
