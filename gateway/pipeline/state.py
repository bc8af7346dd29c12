"""What the request handlers share, and the ``Answer`` they give."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import NamedTuple

from gateway.backends.base import Backend, backend_authority
from gateway.backends.origin import HttpOriginBackend
from gateway.config import GatewayConfig, TargetPolicy
from gateway.errors import Result, outer_reply
from gateway.metrics import GatewayMetrics
from gateway.pipeline.deadlines import BackendDeadlines
from gateway.pipeline.keydoc import KeyDocument
from gateway.pipeline.tokens import TokenGate
from gateway.replay import ReplayGuard
from ohttp import bhttp
from ohttp.aio.store import Store, open_store
from ohttp.keys import KeyRing

__all__ = ["INTERNAL_ERROR", "Answer", "GatewayState", "finish", "outer_answer", "refused"]


@dataclass(eq=False)
class GatewayState:
    """What the handlers share. ``keys`` is swapped whole on reload."""

    config: GatewayConfig
    keys: KeyDocument
    backend: Backend
    metrics: GatewayMetrics
    policy: TargetPolicy
    replay: ReplayGuard
    limits: bhttp.Limits
    deadlines: BackendDeadlines
    in_flight: int = 0
    tokens: TokenGate | None = None  # set with config.require_token

    @classmethod
    def from_config(
        cls,
        config: GatewayConfig,
        keys: KeyRing,
        backend: Backend,
        *,
        metrics: GatewayMetrics | None = None,
        policy: TargetPolicy | None = None,
        store: Store | None = None,
    ) -> GatewayState:
        """The state for ``config``. ``policy`` defaults to the backend's own authority (if
        it has one, ``backends.backend_authority``) plus ``config.allow_target``; a policy
        that allows nothing is a configuration error (every request would get a 403).
        ``store`` keeps replay records and spent tokens (share it between workers and
        replicas); it defaults to the one ``config.state`` names (``open_store``)."""
        if policy is None:
            policy = config.target_policy(backend_authority(backend))
        if not policy.allowed:
            raise ValueError("no target authority allowed: set allow_target")
        if metrics is None:
            metrics = GatewayMetrics()
        if isinstance(backend, HttpOriginBackend):
            metrics.pool_use = backend.pool_use
        if store is None:
            store = open_store(config.state, max_entries=config.replay_cache_size)
        store_errors = metrics.store_errors
        return cls(
            config=config,
            keys=KeyDocument(keys),
            backend=backend,
            metrics=metrics,
            policy=policy,
            replay=ReplayGuard(
                config.date_window,
                require_date=config.require_date,
                store=store,
                on_unavailable=lambda reason: store_errors.labels(reason).inc(),
            ),
            limits=bhttp.Limits(
                max_content_bytes=config.max_body, max_content_chunks=config.max_content_chunks
            ),
            deadlines=BackendDeadlines(config.backend_timeout),
            tokens=_token_gate(config, backend, store),
        )


def _token_gate(config: GatewayConfig, backend: Backend, store: Store) -> TokenGate | None:
    if config.require_token is None:
        return None
    origin = config.token_origin or backend_authority(backend) or config.backend
    return TokenGate(
        config.require_token, origin, store,
        issuer=config.token_issuer, spent_ttl=config.token_spent_ttl,
    )  # fmt: skip


class Answer(NamedTuple):
    """What to send back: status, header fields, body; ``result`` is for metrics only
    (None for key-configuration requests)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    result: Result | None


INTERNAL_ERROR = Answer(500, {}, b"", Result.BACKEND_ERROR)
_OUTER_ANSWERS: dict[type[BaseException], Answer] = {}


def outer_answer(exc: BaseException) -> Answer:
    # Each error class always gets the same precomputed answer: build it once.
    answer = _OUTER_ANSWERS.get(type(exc))
    if answer is None:
        reply = outer_reply(exc)
        if reply is None:  # not reachable for the errors passed here
            return INTERNAL_ERROR
        answer = Answer(reply.status, reply.headers, reply.body, reply.result)
        _OUTER_ANSWERS[type(exc)] = answer
    return answer


def refused(state: GatewayState, exc: BaseException) -> Answer:
    """The plain answer to a request refused before the pipeline (e.g. ``Unauthorized``),
    counted."""
    answer = outer_answer(exc)  # the one mapping, gateway.errors
    if answer.result is not None:
        state.metrics.count(answer.result)
    return answer


def finish(state: GatewayState, started: float, result: Result | None) -> None:
    state.in_flight -= 1
    state.metrics.in_flight -= 1
    if result is not None:
        state.metrics.count(result)
    state.metrics.total_seconds.observe(perf_counter() - started)
