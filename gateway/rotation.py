"""Scheduled key rotation (``--key-rotation``): one worker adds a key to the key file, then
every worker reloads it.

The schedule is read from the key file itself: the next key is due ``every`` seconds after the
newest key's ``not_before`` (at once for a key without one), so a restart neither rotates early
nor late. Each new key decrypts for ``every + overlap`` seconds: it is advertised until the
next rotation and still accepted for ``overlap`` seconds after (``ohttp.aio.keyfile``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from aiohttp import web

from gateway.app import GATEWAY_STATE, reload_keys
from ohttp.aio.keyfile import add_next_key
from ohttp.errors import OHTTPError
from ohttp.keys import KeyRing

__all__ = ["next_rotation", "rotate_forever"]

logger = logging.getLogger("gateway")
_RETRY = 60.0  # after a failed rotation (e.g. a read-only file), try again this much later


def next_rotation(ring: KeyRing, every: int) -> float:
    """When the next key is due: ``every`` seconds after the newest key was first advertised."""
    starts = [key.not_before for key in ring if key.not_before is not None]
    return max(starts) + every if starts else 0.0


async def rotate_forever(app: web.Application, path: Path, every: int, overlap: int, *,
                         tell_parent: bool) -> None:
    """Rotate on schedule until cancelled; ``tell_parent``: SIGHUP the supervisor, which
    passes it to every worker so all of them load the new key."""
    while True:
        due = next_rotation(app[GATEWAY_STATE].keys.ring, every)
        await asyncio.sleep(max(0.0, due - time.time()))
        try:
            key = await asyncio.to_thread(
                add_next_key, path, valid_for=every + overlap, overlap=overlap
            )
        except (OSError, OHTTPError, ValueError) as exc:
            logger.error("key_rotation_failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(_RETRY)
            continue
        logger.info("key_rotated", extra={"key_id": key.key_id})
        if not await reload_keys(app):  # the ring still has the old schedule: not again now
            await asyncio.sleep(_RETRY)
        if tell_parent:
            os.kill(os.getppid(), signal.SIGHUP)
