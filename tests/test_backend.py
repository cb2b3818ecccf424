"""The per-backend primitives keep the promises of the anyio ones they stand for.

Run once on trio and once on asyncio; none of these depends on the clock.
"""

from __future__ import annotations

import anyio
import pytest

from coalesce._backend import Waiter, current_backend

pytestmark = pytest.mark.anyio


async def test_a_waiter_set_before_its_wait_does_not_block() -> None:
    waiter = current_backend().event()
    assert not waiter.is_set()
    waiter.set()
    waiter.set()  # setting twice is harmless
    assert waiter.is_set()
    await waiter.wait()


async def test_a_waiter_wakes_the_task_waiting_on_it() -> None:
    waiter = current_backend().event()
    woken: list[bool] = []

    async def wait() -> None:
        await waiter.wait()
        woken.append(waiter.is_set())

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert woken == []
        waiter.set()
    assert woken == [True]


async def test_a_cancelled_wait_leaves_the_waiter_unset_and_usable() -> None:
    waiter: Waiter = current_backend().event()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_cancel_when_blocked, scope)
            await waiter.wait()
    assert scope.cancelled_caught
    assert not waiter.is_set()
    waiter.set()  # nobody waits any more: nothing to wake, no error
    assert waiter.is_set()
    await waiter.wait()


async def test_a_deadline_interrupts_a_wait() -> None:
    backend = current_backend()
    waiter = backend.event()
    waited = False
    with backend.move_on_at(backend.clock() - 1.0):
        await waiter.wait()
        waited = True
    assert not waited, "the deadline had passed"
    assert not waiter.is_set()


async def test_checkpoint_if_cancelled_raises_only_when_cancelled() -> None:
    backend = current_backend()
    await backend.checkpoint_if_cancelled()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await backend.checkpoint_if_cancelled()
        pytest.fail("the scope was cancelled")
    assert scope.cancelled_caught


async def _cancel_when_blocked(scope: anyio.CancelScope) -> None:
    await anyio.wait_all_tasks_blocked()
    scope.cancel()
