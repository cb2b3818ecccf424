"""The few primitives a coordinator makes per request, made natively for the running backend.

anyio's ``Event``, ``CancelScope``, ``move_on_at``, ``current_time`` and task
groups look up the running backend on every use (and on trio, each task an
anyio task group starts gets a cancel scope of its own), which costs more
than the rest of a request's bookkeeping together. A coordinator looks the
backend up once, when it opens, and from then on makes its task group, its
callers' waiters, its calls' cancel scopes and deadlines, and reads the
clock, with that backend's own classes and functions: trio's on trio (a
nursery, ``trio.CancelScope`` ...); on asyncio, the loop's clock, and
anyio's task group and cancel scopes, which give asyncio the cancel scopes
trio has. All of them behave as their anyio wrappers do: any cancel scope,
or an asyncio task's ``cancel()``, interrupts a wait.

A waiter is an event that one task at a time waits on, built on each
backend's own parking primitive (trio's ``wait_task_rescheduled``, an
asyncio future): a coordinator makes one per request and keeps it while the
request is pending, so it holds nothing more than that needs (no set or
queue of waiting tasks, no closure per wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import attrs
import sniffio

__all__ = ["SUPPORTED_BACKENDS", "Backend", "Scope", "TaskGroup", "Waiter", "current_backend"]

SUPPORTED_BACKENDS = ("trio", "asyncio")
"""The event loops a coordinator runs on."""


class Waiter(Protocol):
    """What a caller waits on: set once, by whoever delivers its outcome; one waiting task."""

    def set(self) -> None:
        """Wake the waiting caller."""

    def is_set(self) -> bool:
        """Tell whether :meth:`set` was called."""
        ...

    async def wait(self) -> object:
        """Wait until :meth:`set` is called."""


class TaskGroup(Protocol):
    """What a coordinator needs of its task group: trio's nursery and anyio's both have it."""

    @property
    def cancel_scope(self) -> Any:
        """The scope that cancels every task of the group."""
        ...

    def start_soon(self, fn: Callable[..., Awaitable[Any]], /, *args: Any) -> None:
        """Start ``fn(*args)`` as a task of the group."""


class Scope(Protocol):
    """A cancel scope, as trio's and anyio's both are."""

    def cancel(self) -> None:
        """Cancel everything inside the scope."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc_info: Any) -> Any: ...


@attrs.frozen
class Backend:
    """The running backend's own event, cancel scope and clock."""

    name: str
    event: Callable[[], Waiter]
    scope: Callable[[], Scope]
    clock: Callable[[], float]
    checkpoint: Callable[[], Awaitable[None]]
    """Lets every other ready task run first (and raises if cancelled)."""
    checkpoint_if_cancelled: Callable[[], Awaitable[None]]
    move_on_at: Callable[[float], Scope]
    task_group: Callable[[], AbstractAsyncContextManager[Any]]
    """Opens a task group that has what :class:`TaskGroup` describes."""


def current_backend() -> Backend:
    """Return the running backend's primitives.

    Raises:
        RuntimeError: Not running under trio or asyncio; the message names both.
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library == "trio":
        import trio  # noqa: PLC0415 - only the backend in use is needed

        return Backend(
            "trio",
            _trio_waiter(),
            trio.CancelScope,
            trio.current_time,
            trio.lowlevel.checkpoint,
            trio.lowlevel.checkpoint_if_cancelled,
            trio.move_on_at,
            trio.open_nursery,
        )
    if library == "asyncio":
        # anyio's asyncio backend, looked up once: what anyio's functions look up on every call.
        anyio_backend = anyio.lowlevel.current_token().backend_class
        scope_class = type(anyio_backend.create_cancel_scope())

        def move_on_at(deadline: float) -> Scope:
            return scope_class(deadline=deadline)

        return Backend(
            "asyncio",
            _AsyncioWaiter,
            scope_class,
            asyncio.get_running_loop().time,
            anyio_backend.checkpoint,
            anyio_backend.checkpoint_if_cancelled,
            move_on_at,
            anyio.create_task_group,
        )
    found = "no known event loop" if library is None else library
    raise RuntimeError(
        f"open_coordinator runs on {' or '.join(SUPPORTED_BACKENDS)}, but was called from {found}"
    )


class _AsyncioWaiter:
    """An ``asyncio.Event`` for one waiting task: a bare future, made only when it waits."""

    __slots__ = ("_flag", "_future")

    def __init__(self) -> None:
        self._flag = False
        self._future: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def is_set(self) -> bool:
        return self._flag

    async def wait(self) -> None:
        if self._flag:
            return
        self._future = future = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self._future = None


@cache
def _trio_waiter() -> Callable[[], Waiter]:
    """Return the class of trio waiters (trio is imported only when it runs)."""
    from trio.lowlevel import (  # noqa: PLC0415 - only the backend in use is needed
        Abort,
        checkpoint,
        current_task,
        reschedule,
        wait_task_rescheduled,
    )

    class TrioWaiter:
        """A ``trio.Event`` for one waiting task: no set of tasks, no closure per wait."""

        __slots__ = ("_flag", "_task")

        def __init__(self) -> None:
            self._flag = False
            self._task: Any = None

        def set(self) -> None:
            self._flag = True
            task = self._task
            if task is not None:
                self._task = None
                reschedule(task)

        def is_set(self) -> bool:
            return self._flag

        async def wait(self) -> None:
            if self._flag:
                await checkpoint()
                return
            self._task = current_task()
            await wait_task_rescheduled(self._abort)

        def _abort(self, raise_cancel: object) -> Abort:
            self._task = None
            return Abort.SUCCEEDED

    return TrioWaiter
