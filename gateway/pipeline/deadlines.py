"""One timer for every backend call's deadline; one deadline for each request body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator
from types import CoroutineType
from typing import Any, Generic, TypeVar, cast

from gateway.errors import BodyTimeout

__all__ = ["BackendDeadlines", "BodyDeadline", "each_within"]

_T = TypeVar("_T")


class BackendDeadlines:
    """Bounds each backend call by one fixed timeout without a timer per call.

    ``asyncio.timeout`` schedules and cancels a timer handle per call (about 10 µs of the
    hot path). Here a call registers its task and deadline in a dict; with one timeout for
    all calls, insertion order is deadline order, so a single timer at the earliest pending
    deadline is enough. When it fires it cancels the tasks past their deadline and re-arms
    itself for the next one. A cancelled call raises ``TimeoutError``, as with
    ``asyncio.timeout`` (whose cancel/uncancel protocol this follows). A task runs one call
    at a time.
    """

    __slots__ = ("_due", "_expired", "_loop", "_timeout", "_timer")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, awaitable: Awaitable[_T]) -> _T:
        """``await awaitable``, or ``TimeoutError`` once the timeout elapsed."""
        pending: Awaitable[_T] = awaitable
        if type(awaitable) is CoroutineType:
            # Its first step runs at once: a call that never waits (the echo backend) cannot
            # be late and needs none of the bookkeeping below. The clock starts at its first
            # wait. (Other awaitables, whose __await__ may be any iterator, are awaited whole.)
            steps = awaitable.__await__()
            try:
                signal = steps.send(None)
            except StopIteration as done:
                return cast(_T, done.value)
            pending = _Resumed(steps, signal)
        task = asyncio.current_task()
        if task is None:  # as asyncio.timeout: without a task there is nothing to cancel
            if isinstance(pending, _Resumed):
                pending.close()
            raise RuntimeError("backend calls must run inside a task")
        loop = asyncio.get_running_loop()
        due = loop.time() + self._timeout
        cancelling = task.cancelling()
        if self._loop is not loop:  # a state reused by a new loop: forget the old one's calls
            self._due.clear()
            self._expired.clear()
            self._loop, self._timer = loop, None
        self._due[task] = due
        if self._timer is None:
            self._timer = loop.call_at(due, self._expire)
        try:
            return await pending
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                if task.uncancel() <= cancelling:  # our cancel, and nobody else's
                    raise TimeoutError() from None
            raise
        finally:
            self._due.pop(task, None)
            if task in self._expired:  # cancelled after the call ended its own way
                self._expired.discard(task)
                task.uncancel()

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for task, due in self._due.items():
            if due > now:
                self._timer = loop.call_at(due, self._expire)
                return
            if task not in self._expired:
                self._expired.add(task)
                task.cancel()


class _Resumed(Generic[_T]):
    """The rest of an awaitable whose first step ran and yielded ``signal`` (what its task
    waits on): awaiting this passes every later step through, as ``await`` itself would."""

    __slots__ = ("_signal", "_steps")

    def __init__(self, steps: Generator[Any, Any, _T], signal: Any) -> None:
        self._steps = steps
        self._signal = signal

    def close(self) -> None:
        self._steps.close()

    def __await__(self) -> Generator[Any, Any, _T]:
        steps, signal = self._steps, self._signal
        while True:
            thrown: BaseException | None = None
            try:
                sent = yield signal
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # a cancellation, for the call where it waits
                thrown = exc
            # Outside the except clause, so the call does not run with it as the exception
            # being handled (its own exceptions would get it as __context__).
            try:
                signal = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                return cast(_T, done.value)
            finally:
                thrown = None  # no cycle through a traceback that holds this frame


class BodyDeadline:
    """The whole request body must arrive by one deadline, set when its head was complete.

    A deadline for the whole body, not per read: a client trickling a byte a second is cut
    off as surely as one that sends nothing. Past it, reads raise ``BodyTimeout`` (a 408).
    """

    __slots__ = ("_due", "_timeout")

    def __init__(self, timeout: float) -> None:
        # The clock is read at the first read that must wait, in the loop iteration that made
        # this deadline (no await comes first); a body that came with its head never reads it.
        self._timeout = timeout
        self._due: float | None = None

    async def read(self, awaitable: Awaitable[_T]) -> _T:
        """``await awaitable`` (a body read), or ``BodyTimeout`` once the deadline passed."""
        if self._due is None:
            self._due = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(self._due):
                return await awaitable
        except TimeoutError:
            raise BodyTimeout() from None

    def chunks(self, body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``body``'s pieces, each read within the deadline."""
        return each_within(body, self.read)


async def each_within(
    body: AsyncIterable[bytes], within: Callable[[Awaitable[bytes]], Awaitable[bytes]]
) -> AsyncIterator[bytes]:
    """``body``'s pieces, each wait for the next one bounded by ``within`` (a deadline's
    ``read`` or ``run``)."""
    iterator = aiter(body)
    while True:
        try:
            piece = await within(anext(iterator))
        except StopAsyncIteration:
            return
        yield piece
