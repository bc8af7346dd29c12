"""The request-head and keep-alive deadlines of one connection (the engine's and the aiohttp
shell's guard's: one rule for both)."""

from __future__ import annotations

import asyncio
from typing import cast

__all__ = ["ConnectionDeadline"]


class ConnectionDeadline:
    """The first head must be complete within ``header_timeout`` of the connection opening.
    After an answer the connection may idle for ``idle_timeout``; once a byte of the next
    request arrived, its head must be complete within ``header_timeout`` of that byte. While
    a request is handled (``busy``) the handler's own deadlines apply.

    Checked lazily: one timer that re-arms itself while the deadline lies ahead, so a request
    costs a few attribute writes; it is moved earlier only when a shorter limit starts to
    apply. Past the deadline the connection (``transport``) is ended.
    """

    __slots__ = ("_head_moves", "_head_since", "_header_timeout", "_idle_moves", "_idle_since",
                 "_idle_timeout", "_loop", "_served", "_timer", "_transport", "busy")

    def __init__(
        self, transport: asyncio.BaseTransport, header_timeout: float, idle_timeout: float
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._header_timeout = header_timeout
        self._idle_timeout = idle_timeout
        # The timer is always armed at most the longer limit ahead, so a limit that starts
        # now can come before it only when it is the shorter one: with equal limits the
        # timer never moves, and a request costs no timer check.
        self._head_moves = header_timeout < idle_timeout
        self._idle_moves = idle_timeout < header_timeout
        self.busy = False
        self._served = False  # an answer ended: the idle limit applies until the next byte
        self._idle_since = self._loop.time()  # opened, or the last answer ended
        self._head_since: float | None = None  # first byte of the next head after an answer
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(
            self._idle_since + header_timeout, self._check
        )

    def request_started(self) -> None:
        self.busy = True
        self._head_since = None

    def request_ended(self, *, idle: bool = True) -> None:
        """An answer ended; ``idle``: no other request is waiting for one."""
        self.busy = not idle
        self._served = True
        self._idle_since = self._loop.time()
        self._head_since = None
        if idle and self._idle_moves:
            self._check_by(self._idle_since + self._idle_timeout)

    def bytes_arrived(self) -> None:
        if self._served and not self.busy and self._head_since is None:
            self._head_since = self._loop.time()  # the next head's clock starts
            if self._head_moves:
                self._check_by(self._head_since + self._header_timeout)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self, now: float) -> float:
        if self.busy:  # look again later
            return now + min(self._header_timeout, self._idle_timeout)
        if not self._served:
            return self._idle_since + self._header_timeout
        if self._head_since is not None:
            return self._head_since + self._header_timeout
        return self._idle_since + self._idle_timeout

    def _check_by(self, due: float) -> None:
        # The timer may be armed for a longer limit (the first head's, the idle one) that no
        # longer applies: move it earlier.
        timer = self._timer
        if timer is not None and timer.when() > due:
            timer.cancel()
            self._timer = self._loop.call_at(due, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self._due(now)
        if due > now:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._timer = None
        # uvloop's transports are no asyncio.WriteTransport subclasses, but behave as one.
        transport = cast(asyncio.WriteTransport, self._transport)
        if transport.get_write_buffer_size():
            # An answer the client has not taken for this long: close() would keep it (and
            # the connection) until the client reads; abort drops both.
            transport.abort()
        else:
            transport.close()
