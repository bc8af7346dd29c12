"""A plain async function as the backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.backends.base import Stateless
from gateway.errors import BackendError, BackendTimeout
from ohttp import bhttp

__all__ = ["CallableBackend"]


class CallableBackend(Stateless):
    """Wraps ``async def fn(request: bhttp.Request) -> bhttp.Response``.

    ``TimeoutError`` (including ``timeout`` seconds elapsing) becomes ``BackendTimeout``;
    any other exception becomes ``BackendError``.
    """

    def __init__(
        self,
        fn: Callable[[bhttp.Request], Awaitable[bhttp.Response]],
        *,
        timeout: float | None = None,
    ) -> None:
        self._fn = fn
        self._timeout = timeout

    async def handle(self, request: bhttp.Request) -> bhttp.Response:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fn(request)
        except BackendError:
            raise
        except TimeoutError:
            raise BackendTimeout from None
        except Exception:
            raise BackendError from None

