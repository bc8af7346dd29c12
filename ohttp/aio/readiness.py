"""Liveness (``/healthz``) and readiness (``/readyz``), the same for the gateway and the relay.

``/healthz`` says the process serves. ``/readyz`` says whether what it depends on is usable:
each app registers named async checks on its ``READINESS`` (one line per dependency)::

    app[READINESS].add("store", store.ping)

A check returns True when its dependency is usable; False, an exception or no answer within
``CHECK_TIMEOUT`` makes ``/readyz`` answer 503 naming the failed checks (fixed names chosen by
the operator's own code, never a peer address). Both routes answer GET and HEAD with the same
bodies on both servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = [
    "CHECK_TIMEOUT",
    "LIVENESS_ANSWER",
    "READINESS",
    "Check",
    "Readiness",
    "healthz",
    "readiness_answer",
    "readiness_of",
    "readyz",
    "remembered",
]

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT = 2.0  # under a kubelet probe's default 1 s period x failure threshold
_HEADERS = {"Cache-Control": "no-store"}


class Readiness:
    """Named readiness checks, run concurrently on every ``/readyz``."""

    def __init__(self, timeout: float = CHECK_TIMEOUT) -> None:
        self._checks: dict[str, Check] = {}
        self._timeout = timeout

    def add(self, name: str, check: Check) -> None:
        """Register ``check`` under ``name`` (a fixed string; replaces one of the same name)."""
        self._checks[name] = check

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    async def failing(self) -> list[str]:
        """The names of the checks that are not ready now, in registration order."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        return [name for name, ready in zip(names, results, strict=True) if not ready]

    async def _run(self, check: Check) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await check())
        except Exception:  # any failure of a dependency means "not ready"
            return False


READINESS = web.AppKey("ohttp_readiness", Readiness)


def readiness_of(app: web.Application) -> Readiness:
    """The app's ``READINESS``, created on first use (before the app is frozen)."""
    if READINESS not in app:
        app[READINESS] = Readiness()
    return app[READINESS]


def remembered(check: Check, seconds: float = 1.0) -> Check:
    """``check`` whose answer is reused for ``seconds``: probes that touch another server
    then cost it at most one request a second, however often ``/readyz`` is polled."""
    return _Remembered(check, seconds).run


class _Remembered:
    def __init__(self, check: Check, seconds: float) -> None:
        self._check = check
        self._seconds = seconds
        self._lock = asyncio.Lock()  # concurrent probes share one call
        self._at = float("-inf")
        self._ready = False

    async def run(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._at >= self._seconds:
                try:
                    self._ready = bool(await self._check())
                except Exception:  # as in Readiness: any failure means "not ready"
                    self._ready = False
                self._at = time.monotonic()
            return self._ready


LIVENESS_ANSWER = (200, "ok\n", _HEADERS)
"""(status, text, header fields) of ``/healthz``."""


async def readiness_answer(checks: Readiness | None) -> tuple[int, str, dict[str, str]]:
    """(status, text, header fields) of ``/readyz`` for ``checks`` (None: no checks), the
    same on every transport."""
    failed = [] if checks is None else await checks.failing()
    if not failed:
        return 200, "ready\n", _HEADERS
    return 503, f"not ready: {' '.join(failed)}\n", _HEADERS


async def healthz(_: web.Request) -> web.Response:
    """Liveness: 200 while the process serves."""
    status, text, headers = LIVENESS_ANSWER
    return web.Response(status=status, text=text, headers=headers)


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200, or 503 naming the checks that failed."""
    status, text, headers = await readiness_answer(request.app.get(READINESS))
    return web.Response(status=status, text=text, headers=headers)
