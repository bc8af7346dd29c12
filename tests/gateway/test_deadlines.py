"""BackendDeadlines: one lazily re-armed timer bounds every backend call (gateway.pipeline)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from gateway.pipeline import BackendDeadlines


async def _never() -> None:
    await asyncio.get_running_loop().create_future()


async def _value(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def test_a_call_in_time_returns_its_value() -> None:
    deadlines = BackendDeadlines(10.0)
    assert await deadlines.run(_value(7)) == 7


async def test_a_call_past_its_deadline_raises_timeout_error() -> None:
    deadlines = BackendDeadlines(0.02)
    with pytest.raises(TimeoutError):
        await deadlines.run(_never())
    # The task is usable afterwards: the cancel was taken back.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert await deadlines.run(_value(3)) == 3


async def test_every_overdue_call_times_out_and_later_calls_still_run() -> None:
    deadlines = BackendDeadlines(0.02)
    calls = [asyncio.ensure_future(deadlines.run(_never())) for _ in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(result, TimeoutError) for result in results)
    # The timer re-arms for calls made after it fired.
    with pytest.raises(TimeoutError):
        await deadlines.run(_never())


async def test_a_call_in_time_between_overdue_ones_is_not_cancelled() -> None:
    deadlines = BackendDeadlines(0.2)
    hanging = asyncio.ensure_future(deadlines.run(_never()))
    release = asyncio.get_running_loop().create_future()

    async def released() -> str:
        await release
        return "done"

    await asyncio.sleep(0.15)  # so ``quick`` is due well after ``hanging``
    quick = asyncio.ensure_future(deadlines.run(released()))
    with pytest.raises(TimeoutError):
        await hanging
    release.set_result(None)  # before ``quick``'s own deadline, which is later
    assert await quick == "done"


async def test_a_cancel_from_elsewhere_stays_a_cancel() -> None:
    deadlines = BackendDeadlines(10.0)
    call = asyncio.ensure_future(deadlines.run(_never()))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_other_exceptions_pass_through() -> None:
    async def fails() -> None:
        raise ValueError("backend bug")

    with pytest.raises(ValueError, match="backend bug"):
        await BackendDeadlines(10.0).run(fails())


async def test_an_exception_after_waits_passes_through() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        raise ValueError("late backend bug")

    with pytest.raises(ValueError, match="late backend bug"):
        await BackendDeadlines(10.0).run(fails_later())


async def test_a_call_that_never_waits_is_not_cut_off() -> None:
    # It runs at once to its end: nothing could have interrupted it, so it is never late.
    async def busy() -> str:
        time.sleep(0.05)
        return "answered"

    deadlines = BackendDeadlines(0.01)
    assert await deadlines.run(busy()) == "answered"
    with pytest.raises(TimeoutError):  # and a waiting call still has its deadline
        await deadlines.run(_never())


async def test_a_swallowed_cancel_is_not_the_context_of_later_errors() -> None:
    # As with a plain await: the cancel thrown into the call is not an exception being handled
    # once the call has caught it.
    async def swallows_then_fails() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.get_running_loop().create_future()
        raise ValueError("after the cancel")

    call = asyncio.ensure_future(BackendDeadlines(10.0).run(swallows_then_fails()))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(ValueError) as raised:
        await call
    assert raised.value.__context__ is None


async def test_an_awaitable_that_is_no_coroutine_is_awaited_whole() -> None:
    class Ready:
        def __await__(self):  # type: ignore[no-untyped-def]
            return iter(())  # any iterator will do for await: it ends at once, with None

    assert await BackendDeadlines(10.0).run(Ready()) is None


def test_a_state_reused_by_a_new_event_loop_still_times_out() -> None:
    deadlines = BackendDeadlines(0.02)

    async def abandon_a_call() -> None:
        # Still pending when the loop ends (asyncio.run cancels it); the timer armed for it
        # belongs to a loop that is gone.
        pending = asyncio.ensure_future(deadlines.run(_never()))
        await asyncio.sleep(0)
        assert not pending.done()

    async def time_out() -> None:
        with pytest.raises(TimeoutError):
            await deadlines.run(_never())

    asyncio.run(abandon_a_call())
    asyncio.run(time_out())
