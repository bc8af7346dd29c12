"""The relay's failure events: fixed names, closed reason codes, never a peer or content.

A failing gateway would otherwise write one line per client request: each (event, reason)
is written at most once a second per worker; ``suppressed`` counts the lines left out.
"""

from __future__ import annotations

import logging
import time

from relay.errors import (
    GatewayRefused,
    GatewayUntrusted,
    RelayError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)

__all__ = ["log_failure", "upstream_reason"]

log = logging.getLogger("relay")
_INTERVAL = 1.0
_last: dict[tuple[str, str], float] = {}
_suppressed: dict[tuple[str, str], int] = {}


def upstream_reason(error: BaseException) -> str:
    """The closed reason code of a failed exchange with the gateway."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "unreachable"


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (UpstreamTimeout, "timeout"),
    (GatewayUntrusted, "untrusted"),
    (UpstreamProtocolError, "protocol"),
    (GatewayRefused, "refused"),
    (UpstreamError, "unreachable"),
)


def log_failure(error: RelayError) -> None:
    """Log ``upstream_failed`` for a forward the gateway hop failed; other errors are the
    client's and only counted in metrics."""
    if not isinstance(error, UpstreamError | GatewayRefused):
        return
    key = ("upstream_failed", upstream_reason(error))
    now = time.monotonic()
    if now - _last.get(key, float("-inf")) < _INTERVAL:
        _suppressed[key] = _suppressed.get(key, 0) + 1
        return
    _last[key] = now
    extra: dict[str, object] = {"error": key[1], "suppressed": _suppressed.pop(key, 0)}
    log.warning(key[0], extra=extra)
