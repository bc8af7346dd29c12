"""The gateway's key transparency check: load a key file only if the log vouches for it.

With ``--log`` and ``--log-key``, :func:`load_logged_keys` loads the key file and reads the
whole log (``ohttp.aio.tlog.fetch_log``: signature, tiles, root), and refuses the file unless
every key in it has a key statement in the log; with ``--require-release``, a statement that
names this gateway's own release measurement. Used at startup, by each worker, and on each
SIGHUP reload, so an unlogged key is never served: clients that check the log would refuse it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from gateway.config import GatewayConfig
from ohttp.aio.keyfile import load_key_file
from ohttp.aio.release import ReleaseError, measure
from ohttp.aio.tlog import LogError, VerifiedLog, fetch_log, log_reader, log_verifier, with_session
from ohttp.keys import KeyRing

__all__ = ["KeyNotLoggedError", "installed_release", "load_logged_keys"]


class KeyNotLoggedError(ValueError):
    """The key file holds a key the log does not vouch for, or the log cannot be checked."""


def installed_release() -> str:
    """The measurement of the installed release (``ohttp release measure``)."""
    return measure()


def _measured(measure: Callable[[], str]) -> str:
    try:
        return measure()
    except (ReleaseError, OSError) as exc:  # the gateway must not start unchecked
        raise KeyNotLoggedError("the installed release could not be measured") from exc


async def load_logged_keys(
    config: GatewayConfig, measure: Callable[[], str] = installed_release
) -> KeyRing:
    """The key ring of ``config.keys``, checked against ``config.log`` when one is set."""
    if config.keys is None:
        raise ValueError("a key file is required")
    ring = await asyncio.to_thread(load_key_file, config.keys)
    if config.log is None or config.log_key is None:
        return ring
    release = None
    if config.require_release:
        release = config.release_measurement or await asyncio.to_thread(_measured, measure)
    try:
        log = await _read(config.log, config.log_key)
    except LogError as exc:
        raise KeyNotLoggedError(str(exc)) from None
    _check(ring, log, release)
    return ring


async def _read(location: str, vkey: str) -> VerifiedLog:
    log_key = log_verifier(vkey)

    async def read(http: Callable[[], aiohttp.ClientSession]) -> VerifiedLog:
        return await fetch_log(log_reader(location, http), log_key)

    return await with_session(read)


def _check(ring: KeyRing, log: VerifiedLog, release: str | None) -> None:
    for key in ring:
        statements = log.statements_of(key.config)
        if not statements:
            raise KeyNotLoggedError(f"key {key.key_id} is not in the transparency log")
        if release is not None and all(s.release != release for s in statements):
            raise KeyNotLoggedError(f"key {key.key_id} is logged for another release")
