"""Privacy-safe logs for the servers: JSON lines with fixed events and whitelisted fields.

Never a record's arguments, never a traceback, so never a peer address or request content.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys
import time
from typing import Any

__all__ = [
    "REQUEST_ERROR_EVENT",
    "JsonLinesFormatter",
    "LOG_LEVELS",
    "configure_logging",
    "log_throttled",
    "loop_exception_handler",
    "set_worker",
]

log = logging.getLogger("ohttp.serving")


# Extra fields our own records may carry; all are operator data, counts or fixed names.
_LOG_FIELDS = (
    "error", "detail", "advertised", "host", "port", "worker", "workers", "tls", "code",
    "gateways", "suppressed", "checks", "key_id",
)  # fmt: skip
_OWN_LOGGERS = ("gateway", "relay", "ohttp")
# aiohttp logs "Error handling request from <peer>" with a traceback that can quote request
# bytes; such a record keeps only this event and the exception's class name.
REQUEST_ERROR_EVENT = "request error withheld"


def _is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and whitelisted fields.

    Privacy by construction: the event is the record's message template, never formatted
    with its arguments, and exception tracebacks are never written.
    """

    def format(self, record: logging.LogRecord) -> str:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        document: dict[str, object] = {
            "time": _iso8601(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": template.split("\n", 1)[0][:120],
        }
        if _is_own(record.name):
            for name in _LOG_FIELDS:
                value = record.__dict__.get(name)
                if isinstance(value, str | int | float | bool):
                    document[name] = value
        elif record.name.startswith("aiohttp") and record.exc_info:
            document["event"] = REQUEST_ERROR_EVENT
            document["error"] = type(record.exc_info[1]).__name__
        if _worker is not None:
            document.setdefault("worker", _worker)
        return json.dumps(document)


def _iso8601(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_worker: int | None = None  # this process's worker index, once it serves


def set_worker(index: int) -> None:
    """Name this process's worker index on every line it logs from now on."""
    global _worker  # noqa: PLW0603 - one value per process, set once when it starts serving
    _worker = index


LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str = "info") -> None:
    """Send every record of ``level`` and above to stderr as a JSON line (a process entry
    point calls this); ``level`` is one of ``LOG_LEVELS``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


_THROTTLE_SECONDS = 1.0
_last_logged: dict[tuple[str, str], float] = {}
_suppressed: dict[tuple[str, str], int] = {}


def log_throttled(logger: logging.Logger, event: str, reason: str) -> None:
    """Warn ``event`` with the closed reason code ``reason`` at most once a second per
    (event, reason) in this process: a failing dependency would otherwise write a line per
    request. ``suppressed`` counts the lines left out since the last one."""
    key = (event, reason)
    now = time.monotonic()
    if now - _last_logged.get(key, float("-inf")) < _THROTTLE_SECONDS:
        _suppressed[key] = _suppressed.get(key, 0) + 1
        return
    _last_logged[key] = now
    logger.warning(event, extra={"error": reason, "suppressed": _suppressed.pop(key, 0)})


def loop_exception_handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # The default handler writes transport and protocol reprs, which can name the peer.
    exc = context.get("exception")
    log.warning("event loop error withheld", extra={"error": type(exc).__name__})
