"""The issuer as an aiohttp application (RFC 9578 §4, §5, §6.2).

- ``GET /.well-known/private-token-issuer-directory``: ``issuer-request-uri`` (relative to the
  directory) and ``token-keys`` (every key of the key file, the current one first);
- ``POST /token-request``: ``application/private-token-request`` in,
  ``application/private-token-response`` out, for an account authenticated with
  ``Authorization: Bearer <credential>`` and within its quota (joint attester and issuer,
  RFC 9576 §4.3);
- ``GET /healthz``.

The account never appears in a log line, a metric or the token: the quota counter in the shared
store is keyed by a digest of the credential, and the token is blind to the issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from issuer.config import IssuerConfig
from issuer.errors import (
    BadMediaType,
    IssuerError,
    Outcome,
    QuotaExceeded,
    RequestTooLarge,
    Unauthorized,
    reply_for,
)
from issuer.keys import IssuerKeys, account_digest, load_accounts, load_issuer_keys
from ohttp.aio.readiness import healthz
from ohttp.aio.serving import tracked
from ohttp.aio.store import Store, StoreUnavailable, open_store
from ohttp.errors import OHTTPError
from ohttp.privacypass import NK, TOKEN_TYPE_BLIND_RSA, TokenRequest, encode_token_key, issue

__all__ = [
    "DIRECTORY_MEDIA_TYPE",
    "DIRECTORY_PATH",
    "ISSUER_STATE",
    "REQUEST_MEDIA_TYPE",
    "REQUEST_PATH",
    "RESPONSE_MEDIA_TYPE",
    "IssuerState",
    "create_app",
    "reload_files",
]

DIRECTORY_PATH = "/.well-known/private-token-issuer-directory"  # RFC 9578 §4
REQUEST_PATH = "/token-request"
DIRECTORY_MEDIA_TYPE = "application/private-token-issuer-directory"  # RFC 9578 §8.3
REQUEST_MEDIA_TYPE = "application/private-token-request"
RESPONSE_MEDIA_TYPE = "application/private-token-response"
_REQUEST_LEN = 3 + NK  # RFC 9578 §6.1: token_type, truncated_token_key_id, blinded_msg
_QUOTA_PREFIX = b"issuer-quota:"

logger = logging.getLogger("ohttp.issuer")


@dataclass(eq=False)
class IssuerState:
    """What the handlers share; ``keys``, ``accounts`` and ``directory`` are swapped on reload."""

    config: IssuerConfig
    keys: IssuerKeys
    accounts: frozenset[bytes] | None  # None: no accounts file, issuance is open
    store: Store
    owns_store: bool = False  # a store passed in is the caller's to close
    directory: bytes = b""
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def __post_init__(self) -> None:
        self.directory = directory_document(self.keys)


ISSUER_STATE = web.AppKey("ohttp_issuer_state", IssuerState)


def directory_document(keys: IssuerKeys) -> bytes:
    """The RFC 9578 §4 directory: the same bytes for every client."""
    document = {
        "issuer-request-uri": REQUEST_PATH,  # relative to the directory URL (RFC 9578 §4)
        "token-keys": [
            {"token-type": TOKEN_TYPE_BLIND_RSA, "token-key": encode_token_key(pair.public_key)}
            for pair in keys.pairs
        ],
    }
    return json.dumps(document).encode()


def create_app(
    config: IssuerConfig,
    *,
    keys: IssuerKeys | None = None,
    accounts: frozenset[bytes] | None = None,
    store: Store | None = None,
) -> web.Application:
    """The issuer application. ``keys`` and ``accounts`` default to the configured files;
    ``store`` (where the quota counters live; share it between replicas) to the one
    ``config.state`` names (``ohttp.aio.store.open_store``)."""
    if keys is None:
        if config.key is None:
            raise ValueError("an issuer key or key file is required")
        keys = load_issuer_keys(config.key)
    if accounts is None and config.accounts is not None:
        accounts = load_accounts(config.accounts)
    state = IssuerState(
        config, keys, accounts, open_store(config.state) if store is None else store,
        owns_store=store is None,
    )
    app = web.Application(client_max_size=_REQUEST_LEN + 1)
    app[ISSUER_STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get(DIRECTORY_PATH, tracked(_directory))
    app.router.add_post(REQUEST_PATH, tracked(_token_request))
    app.router.add_get("/healthz", tracked(healthz))  # the gateway's and the relay's too
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[ISSUER_STATE]
    loop = asyncio.get_running_loop()
    if state.config.reload_on_sighup:
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_files(app)))
    if state.accounts is None:
        logger.warning("issuer_open", extra={"detail": "no accounts file: anyone gets tokens"})
    try:
        yield
    finally:
        if state.config.reload_on_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        if state.owns_store:
            await state.store.close()


async def reload_files(app: web.Application) -> bool:
    """Read the key and accounts files again; keeps the old ones if either is bad."""
    state = app[ISSUER_STATE]
    config = state.config
    try:
        keys = state.keys
        if config.key is not None:
            keys = await asyncio.to_thread(load_issuer_keys, config.key)
        accounts = state.accounts
        if config.accounts is not None:
            accounts = await asyncio.to_thread(load_accounts, config.accounts)
    except (OSError, OHTTPError) as exc:
        logger.warning("keys_reload_failed", extra={"error": type(exc).__name__})
        return False
    state.keys, state.accounts, state.directory = keys, accounts, directory_document(keys)
    logger.info("keys_reloaded", extra={"advertised": len(keys.pairs)})
    return True


async def _directory(request: web.Request) -> web.Response:
    state = request.app[ISSUER_STATE]
    headers = {
        "Content-Type": DIRECTORY_MEDIA_TYPE,
        # RFC 9578 §4: cacheable; the max-age bounds how long a rotation takes to reach clients.
        "Cache-Control": f"max-age={state.config.directory_max_age}",
    }
    return web.Response(body=state.directory, headers=headers)


async def _token_request(request: web.Request) -> web.Response:
    state = request.app[ISSUER_STATE]
    try:
        body = await _issue(state, request)
    except (IssuerError, OHTTPError, StoreUnavailable) as exc:
        reply = reply_for(exc, state.config.window)
        if reply is None:  # not reachable: every class caught has an entry
            raise
        state.outcomes[reply.outcome] += 1
        if reply.status >= 500:
            logger.warning("issuance_failed", extra={"error": reply.outcome.value})
        return web.Response(status=reply.status, headers=reply.headers)
    state.outcomes[Outcome.ISSUED] += 1
    headers = {"Content-Type": RESPONSE_MEDIA_TYPE, "Cache-Control": "no-store"}
    return web.Response(body=body, headers=headers)


async def _issue(state: IssuerState, request: web.Request) -> bytes:
    account = _account(state, request.headers.get(hdrs.AUTHORIZATION))
    if request.content_type != REQUEST_MEDIA_TYPE:  # RFC 9578 §5.1
        raise BadMediaType()
    if request.content_length is not None and request.content_length > _REQUEST_LEN:
        raise RequestTooLarge()
    # read(n) returns what has arrived, which may be part of the body: read to its end.
    try:
        body = await request.content.readexactly(_REQUEST_LEN + 1)
    except asyncio.IncompleteReadError as short:  # the usual case: the body ended first
        body = short.partial
    if len(body) != _REQUEST_LEN:
        raise RequestTooLarge()
    token_request = TokenRequest.decode(body)
    pair = state.keys.by_truncated_id(token_request.truncated_token_key_id)
    if pair is None:
        pair = state.keys.current  # issue() raises the RFC 9578 §6.2 key error
    if account is not None:
        # Only well-formed requests count against the quota; the counter's key is a digest.
        used = await state.store.incr(_QUOTA_PREFIX + account, state.config.window)
        if used > state.config.tokens_per_window:
            raise QuotaExceeded()
    return issue(pair, body)


def _account(state: IssuerState, authorization: str | None) -> bytes | None:
    """The account digest of a valid bearer credential (RFC 6750 §2.1); None if issuance is
    open; Unauthorized otherwise."""
    if state.accounts is None:
        return None
    scheme, _, credential = (authorization or "").strip().partition(" ")
    digest = account_digest(credential.strip().encode())
    if scheme.lower() != "bearer" or not credential or digest not in state.accounts:
        raise Unauthorized()
    return digest
