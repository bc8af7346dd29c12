"""The relay's failure events: fixed names, closed reason codes, never a peer or content.

Written through ``ohttp.aio.logs.log_throttled``: at most one line a second per reason.
"""

from __future__ import annotations

import logging

from ohttp.aio.logs import log_throttled
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

_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (UpstreamTimeout, "timeout"),
    (GatewayUntrusted, "untrusted"),
    (UpstreamProtocolError, "protocol"),
    (GatewayRefused, "refused"),
    (UpstreamError, "unreachable"),
)


def upstream_reason(error: BaseException) -> str:
    """The closed reason code of a failed exchange with the gateway."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "unreachable"


def log_failure(error: RelayError) -> None:
    """Log ``upstream_failed`` for a forward the gateway hop failed; other errors are the
    client's and only counted in metrics."""
    if isinstance(error, UpstreamError | GatewayRefused):
        log_throttled(log, "upstream_failed", upstream_reason(error))
