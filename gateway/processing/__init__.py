"""The embedded private-processing backend: chat summaries and writing help, keeping nothing.

Served by the gateway at the authority ``processing.internal``:

- ``POST /v1/summarize`` ``{"messages": [{"sender", "text"}, ...], "max_sentences": N}``
  -> ``{"summary", "highlights", "language"}``
- ``POST /v1/summarize/stream`` (same body) -> ``application/x-ndjson``: one
  ``{"sentence", "sender"}`` line per chosen sentence, then ``{"done": true, "language",
  "highlights"}``. A stream without the ``done`` line is incomplete.
- ``POST /v1/rewrite`` ``{"text", "style": "concise"|"formal"|"friendly"}``
  -> ``{"text", "changes": [{"rule", "before", "after"}, ...]}``

``service`` answers; the gateway calls it in-process (``ProcessingBackend``), and
``create_app`` serves it as an aiohttp app. ``text`` is the language processing,
``samples`` the demo conversations.
"""

from __future__ import annotations

from gateway.processing.app import create_app
from gateway.processing.backend import ProcessingBackend
from gateway.processing.service import (
    DEFAULT_MAX_SENTENCES,
    MAX_BODY_BYTES,
    BadRequest,
    parse_rewrite,
    parse_summarize,
)

__all__ = [
    "DEFAULT_MAX_SENTENCES",
    "MAX_BODY_BYTES",
    "BadRequest",
    "ProcessingBackend",
    "create_app",
    "parse_rewrite",
    "parse_summarize",
]
