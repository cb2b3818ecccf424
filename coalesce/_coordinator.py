"""The structured-concurrency layer: a task-group-scoped coordinator that gathers, sends, answers.

Everything it decides comes from the pure core (:mod:`coalesce._policy`,
:mod:`coalesce._prompt`, :mod:`coalesce._demux`); this module only moves
requests and outcomes, one way::

    caller -> group queue -> gatherer -> call task -> demux -> caller

It is written on anyio, so the same code runs on trio and on asyncio.

- ``create_message`` checks the request, waits for room if ``max_pending`` is
  set (a FIFO semaphore), queues the request in its compatibility group, wakes
  the group's gatherer and waits for its outcome. If the caller leaves first,
  a queued request is taken out of the queue, and a call whose callers have
  all left is cancelled.
- One gatherer per group with waiting requests asks the policy whether to
  send now; if not, it waits for a wake-up until the window's deadline
  (``move_on_at(first_arrival + window)``). Then it takes a call slot, cuts a
  batch and starts a call task. The caller whose request opens an empty group
  gathers in its own task until its own batch is cut (a batch of its request
  alone it then sends itself); a gatherer task takes over whatever else is
  left queued. With ``max_concurrent_calls``, a gatherer task does it all.
- A call task sends its batch (alone, or coalesced and demuxed) and hands each
  caller its outcome through :meth:`Coordinator._deliver`, which gives each
  request exactly one; tasks the reply left unanswered go again alone, through
  the same path.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from inspect import iscoroutinefunction
from typing import Any, NoReturn, TypeVar, final

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
)

from ._adaptive import Adaptive, after_alone, after_probe, after_reply, batch_limit, start
from ._backend import Backend, Scope, TaskGroup, Waiter, current_backend
from ._client import SamplingClient
from ._demux import answer_result, demux_reply, reply_text
from ._errors import BatchCallError, CoordinatorClosed, TaskError
from ._policy import CoordinatorOptions, FlushReason, compatibility_key, fits, flush_reason
from ._prompt import compose_batch, response_schema
from ._reader import ReplyReader, max_reply_chars
from ._requests import check_request
from ._stats import CoordinatorStats
from ._telemetry import Observer, load_observer
from ._usage import read_usage

__all__ = ["Coordinator", "open_coordinator"]

logger = logging.getLogger("coalesce")

Result = CreateMessageResult | CreateMessageResultWithTools
"""What a call returns: a request that offers tools may be answered with tool uses."""

_T = TypeVar("_T")


class _NoPublicConstructor(type):
    """A metaclass for classes only a factory of the library may make (as trio does)."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "use `async with coalesce.open_coordinator(client) as coord:`"
        )

    def _create(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]


class _Request:
    """One caller's request: what it asks, where it is, and its one outcome."""

    __slots__ = (
        "arrival",
        "call",
        "done",
        "error",
        "group",
        "params",
        "queued",
        "result",
        "trace",
    )

    def __init__(
        self, params: CreateMessageRequestParams, group: _Group, arrival: float, done: Waiter
    ) -> None:
        self.params = params
        self.group = group
        self.arrival = arrival
        self.queued = False
        self.call: _Call | None = None
        # Set exactly once: by _deliver with an outcome, or when the caller leaves.
        self.done = done
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.trace: object = None  # the caller's trace context, for telemetry


class _Group:
    """The requests of one compatibility key: its queue, whether it gathers, its calls."""

    __slots__ = ("alone", "gathering", "in_flight", "key", "label", "queue", "tokens", "wakeup")

    def __init__(self, key: Hashable, label: Hashable, *, alone: bool, wakeup: Waiter) -> None:
        self.key = key
        self.label = label
        self.alone = alone
        self.queue: deque[_Request] = deque()
        self.tokens = 0  # the sum of the queued requests' max_tokens
        self.in_flight = 0
        self.gathering = False
        self.wakeup = wakeup


class _Call:
    """One call to the client: its requests, the scope that can cancel it, and its figures."""

    __slots__ = (
        "error",
        "input_tokens",
        "output_tokens",
        "reason",
        "requests",
        "scope",
        "unusable",
    )

    def __init__(self, requests: list[_Request], reason: FlushReason, scope: Scope) -> None:
        self.requests = requests
        self.reason = reason
        self.scope = scope
        self.input_tokens = 0
        self.output_tokens = 0
        self.unusable = 0
        self.error: BaseException | None = None


@final
class Coordinator(metaclass=_NoPublicConstructor):
    """Coalesces concurrent sampling requests into fewer calls to one client.

    Get one from :func:`open_coordinator`; it is only usable inside that
    block. It satisfies :class:`~coalesce.SamplingClient`, so code that takes
    a client can be given a coordinator instead.
    """

    def __init__(
        self,
        client: SamplingClient,
        task_group: TaskGroup,
        options: CoordinatorOptions,
        observer: Observer,
        backend: Backend,
    ) -> None:
        self._client = client
        self._backend = backend
        self._waiter = backend.event
        self._now = backend.clock
        self._task_group = task_group
        self._options = options
        self._groups: dict[Hashable, _Group] = {}
        self._closing = False
        self._aborted = False
        self._queued = 0
        self._room = None if options.max_pending is None else anyio.Semaphore(options.max_pending)
        self._room_waiters: set[anyio.CancelScope] = set()
        self._slots = (
            None
            if options.max_concurrent_calls is None
            else anyio.Semaphore(options.max_concurrent_calls)
        )
        self._counts: dict[str, Any] = CoordinatorStats().to_counts()
        self._observer = observer
        # What adaptive coalescing learned, by compatibility key: only groups
        # whose state differs from the start are kept.
        self._learned: dict[Hashable, Adaptive] = {}
        # Calls made from their caller's own task (see _send_now), which an
        # abort cancels; and how many callers are inside create_message (a
        # caller may gather or send in its own task, so a normal exit waits
        # until all have left), with the event the last one sets then.
        self._inline: set[_Call] = set()
        self._callers = 0
        self._callers_gone: anyio.Event | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        options = ", ".join(f"{name}={value!r}" for name, value in self._options.to_dict().items())
        return f"<coalesce.Coordinator {state} {options} queued={self._queued} stats={self.stats}>"

    @property
    def options(self) -> CoordinatorOptions:
        """The batching options this coordinator was opened with."""
        return self._options

    @property
    def stats(self) -> CoordinatorStats:
        """A snapshot of what this coordinator has done so far."""
        return CoordinatorStats(
            **self._counts,
            batch_sizes={
                repr(state_label)[:_LABEL_CHARS]: size for state_label, size in self._sizes()
            },
        )

    def _sizes(self) -> list[tuple[Hashable, int]]:
        """The current batch size of each group whose size adaptive coalescing changed."""
        return [(key[1], batch_limit(state)) for key, state in self._learned.items()]  # type: ignore[index]

    @property
    def queued(self) -> int:
        """How many requests wait to be sent now (what ``max_pending`` bounds)."""
        return self._queued

    @property
    def closed(self) -> bool:
        """Whether new requests are refused (the coordinator's block has ended)."""
        return self._closing

    async def create_message(
        self,
        params: CreateMessageRequestParams,
        *,
        group: Hashable = None,
    ) -> Result:
        """Send one sampling request, coalesced with others, and return its own answer.

        The caller waits while the request gathers with others of its
        compatibility group (see :func:`open_coordinator`), then gets exactly
        one outcome: its own answer, or one error.

        Args:
            params: The request, as a server would send it.
            group: A hashable key (a session, a tenant, a user): requests of
                different groups never share a call. ``None`` is a group too.

        Returns:
            The model's answer to this request alone: a
            ``CreateMessageResult``. A request that offers tools always goes
            alone and gets the client's reply unchanged, which may be a
            ``CreateMessageResultWithTools``.

        Raises:
            TypeError: *params* is not a valid ``CreateMessageRequestParams``
                (a field is missing, or a shared setting cannot be compared),
                or *group* is not hashable.
            ValueError: *params* has ``max_tokens`` below 1 or no messages.
            CoordinatorClosed: The coordinator has closed, or was closed by an
                error or cancellation while this request waited.
            TaskError: The coalesced reply had no usable answer for this task
                (only with ``retry_alone=False``).
            BatchCallError: The coalesced call failed; its cause is the
                client's exception.
            Exception: Whatever the client raised, unchanged, when this
                request was sent alone.
        """
        check_request(params, group)
        key = compatibility_key(params, group)
        if self._closing:
            raise CoordinatorClosed("the coordinator is closed; open a new one to send requests")
        if self._room is not None:
            await self._wait_for_room(self._room)
        self._counts["requests"] += 1
        group_of = self._group(key, group)
        reason = self._at_once(group_of, params)
        request: _Request | None = None
        self._callers += 1
        try:
            if reason is None:
                request = self._enqueue(group_of, params)
                call = None
                if not group_of.gathering:  # nobody gathers its group: this caller does
                    call = await self._gather_first(group_of, request)
                if call is None:
                    await request.done.wait()
                else:
                    await self._call_inline(group_of, call)
            else:
                if self._room is not None:
                    self._room.release()  # never queued: it takes no place among max_pending
                await self._backend.checkpoint_if_cancelled()  # a caller gone sends nothing
                request = self._new_request(group_of, params)
                await self._send_now(request, reason)
        except BaseException:
            # Cancelled: whatever reached the request is dropped.
            self._counts["cancelled"] += 1
            if request is not None and not request.done.is_set():
                self._leave(request)
            raise
        finally:
            self._callers -= 1
            if not self._callers and self._callers_gone is not None:
                self._callers_gone.set()
        if request.error is not None:
            self._counts["failed"] += 1
            raise request.error
        self._counts["answered"] += 1
        assert request.result is not None
        return request.result

    # -- queueing ---------------------------------------------------------------

    async def _wait_for_room(self, room: anyio.Semaphore) -> None:
        """Take one place among the ``max_pending``, first come, first served."""
        try:
            room.acquire_nowait()  # fails while anyone waits: nobody is overtaken
        except anyio.WouldBlock:
            scope = anyio.CancelScope()
            self._room_waiters.add(scope)
            try:
                with scope:
                    await room.acquire()
            finally:
                self._room_waiters.discard(scope)
            if scope.cancelled_caught:
                raise CoordinatorClosed(
                    "the coordinator closed while this request waited for room"
                ) from None
        if self._closing:
            room.release()
            raise CoordinatorClosed("the coordinator closed while this request waited for room")

    def _group(self, key: Hashable, label: Hashable) -> _Group:
        """The group of requests under *key* (a new one, never shared, if *key* is None)."""
        if key is None:
            return _Group(None, label, alone=True, wakeup=self._waiter())
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = _Group(key, label, alone=False, wakeup=self._waiter())
        return found

    def _at_once(self, group: _Group, params: CreateMessageRequestParams) -> FlushReason | None:
        """Why *params* goes at once, alone, from its caller's task; or None if it must queue.

        Only a request with nothing to wait for: its group holds no other,
        no call slot is to be waited for, and the policy would send a batch
        of it alone the moment it arrived (it cannot be batched, ``max_batch``
        is 1, adapting sends its group alone, or it is over the token cap).
        """
        if group.queue or self._slots is not None:
            return None
        now = self._now()
        reason = flush_reason(
            self._options,
            queued=1,
            queued_tokens=params.max_tokens,
            first_arrival=now,
            now=now,
            in_flight=group.in_flight,
            closing=self._closing,
            alone=group.alone,
            limit=self._limit(group),
        )
        return reason if reason in _AT_ONCE else None

    def _new_request(self, group: _Group, params: CreateMessageRequestParams) -> _Request:
        request = _Request(params, group, self._now(), self._waiter())
        request.trace = self._observer.caller_context()
        return request

    async def _send_now(self, request: _Request, reason: FlushReason) -> None:
        """Send a request that has nothing to wait for from its caller's own task.

        The same call as a call task makes (:meth:`_call`), without the
        gatherer and the call task: the cheap path for requests that go
        alone. The coordinator can still cancel it (when aborted), and a
        normal exit waits for it.
        """
        group = request.group
        self._note_cut(group, 1)
        await self._call_inline(group, self._new_call(group, [request], reason))

    async def _call_inline(self, group: _Group, call: _Call) -> None:
        """Make *call* from its caller's own task, where an abort can still cancel it."""
        self._inline.add(call)
        try:
            await self._call(group, call, holds_slot=False)
        finally:
            self._inline.discard(call)

    def _enqueue(self, group: _Group, params: CreateMessageRequestParams) -> _Request:
        request = self._new_request(group, params)
        request.queued = True
        group.queue.append(request)
        group.tokens += params.max_tokens
        self._queued += 1
        if group.gathering:
            group.wakeup.set()
        elif self._slots is not None:  # a batch may wait for a slot: a task gathers
            group.gathering = True
            self._task_group.start_soon(self._gather, group)
        return request

    def _unqueue(self, request: _Request) -> None:
        """Take *request* out of its group's queue: the one other place the queue changes."""
        group = request.group
        request.queued = False
        group.tokens -= request.params.max_tokens
        self._queued -= 1
        if self._room is not None:
            self._room.release()

    def _leave(self, request: _Request) -> None:
        """Forget a request whose caller has left before its outcome reached it."""
        request.done.set()  # no outcome: nobody waits for one any more
        if request.queued:
            request.group.queue.remove(request)
            self._unqueue(request)
            request.group.wakeup.set()  # the group's deadline or readiness may have changed
        elif request.call is not None and all(
            other.done.is_set() for other in request.call.requests
        ):
            request.call.scope.cancel()  # nobody waits for this call any more

    def _deliver(
        self, request: _Request, result: Result | None = None, error: BaseException | None = None
    ) -> None:
        """Hand *request*'s caller its one outcome, unless it already has one or has left."""
        if request.done.is_set():
            return
        request.result = result
        request.error = error
        request.done.set()

    # -- gathering --------------------------------------------------------------

    async def _ready(self, group: _Group) -> FlushReason | None:
        """Wait until the policy says *group* sends now, and say why; None once nothing waits."""
        options = self._options
        while group.queue and not self._aborted:
            reason = flush_reason(
                options,
                queued=len(group.queue),
                queued_tokens=group.tokens,
                first_arrival=group.queue[0].arrival,
                now=self._now(),
                in_flight=group.in_flight,
                closing=self._closing,
                alone=group.alone,
                limit=self._limit(group),
            )
            if reason is not None:
                return reason
            with self._backend.move_on_at(group.queue[0].arrival + options.window):
                await group.wakeup.wait()
            group.wakeup = self._waiter()
        return None

    async def _gather_first(self, group: _Group, request: _Request) -> _Call | None:
        """Gather *group* in the caller's own task, until the batch holding *request* is cut.

        *request* opened the group's queue, so the first batch holds it.
        Returns the call to make, if that batch is *request* alone (its
        caller makes it, as :meth:`_send_now` does); or None once a call
        task took the batch. The call is made here, before the group can be
        forgotten, so that it counts as in flight (``flush_when_idle`` waits
        for it). A gatherer task takes over whatever else is left queued.

        Like a gatherer task, which starts no sooner, it first lets the
        current scheduler tick end: every request arriving in the same tick
        joins the batch, and a window that ran out meanwhile needs no timer.
        """
        group.gathering = True
        try:
            await self._backend.checkpoint()
            reason = await self._ready(group)
            if reason is None:
                return None  # aborted: the request gets CoordinatorClosed below
            batch = self._cut(group, self._limit(group))
            self._note_cut(group, len(batch))
            if len(batch) == 1:  # the request alone: its caller sends it
                return self._new_call(group, batch, reason)
            self._start_call(group, batch, reason, holds_slot=False)
            return None
        finally:
            if request.queued and not self._aborted:
                self._leave(request)  # its caller was cancelled while it gathered
            if group.queue and not self._aborted:
                self._task_group.start_soon(self._gather, group)
            else:
                self._end_gathering(group)

    async def _gather(self, group: _Group) -> None:
        """Send *group*'s requests in batches until none is left waiting."""
        try:
            while (reason := await self._ready(group)) is not None:
                if self._slots is not None:
                    await self._slots.acquire()
                batch = self._cut(group, self._limit(group))
                if batch:
                    self._note_cut(group, len(batch))
                    self._start_call(group, batch, reason, holds_slot=True)
                elif self._slots is not None:
                    self._slots.release()
        finally:
            self._end_gathering(group)

    def _end_gathering(self, group: _Group) -> None:
        """No one gathers *group* any more: end whatever an abort left queued, forget it if idle."""
        group.gathering = False
        while group.queue:  # only when the coordinator was aborted
            request = group.queue.popleft()
            self._unqueue(request)
            self._deliver(request, error=_closed("while it was queued"))
        self._forget_if_idle(group)

    def _cut(self, group: _Group, limit: int | None) -> list[_Request]:
        """Take the next batch from the front of *group*'s queue, as the policy allows."""
        batch: list[_Request] = []
        tokens = 0
        now = self._now()
        queue = group.queue
        while queue and fits(
            self._options,
            taken=len(batch),
            taken_tokens=tokens,
            tokens=queue[0].params.max_tokens,
            limit=limit,
        ):
            request = queue.popleft()
            self._unqueue(request)
            batch.append(request)
            tokens += request.params.max_tokens
            wait = now - request.arrival
            self._counts["queue_wait_total"] += wait
            self._counts["queue_wait_max"] = max(self._counts["queue_wait_max"], wait)
            self._observer.queued(group.label, wait)
        return batch

    # -- adapting ---------------------------------------------------------------

    def _limit(self, group: _Group) -> int | None:
        """The batch size adaptive coalescing allows *group* now, if it learned one."""
        state = self._learned.get(group.key)
        return None if state is None else batch_limit(state)

    def _note_cut(self, group: _Group, size: int) -> None:
        """Tell the group's adaptive state that a batch of *size* was cut (alone, or a probe)."""
        state = self._learned.get(group.key)
        if state is None or not state.backed_off:
            return
        if size == 1:
            self._counts["adaptive_alone"] += 1
            state = self._learned[group.key] = after_alone(state)
            if state.alone % state.limit == 0:  # a whole batch's worth went alone
                self._counts["adaptive_calls_saved"] += 1
        else:
            logger.info("probing group=%r size=%d", group.label, size)
            self._learned[group.key] = after_probe(state)

    def _learn(self, group: _Group, size: int, unusable: int) -> None:
        """Update *group*'s batch size from a coalesced reply of *size* tasks."""
        if not self._options.adaptive or group.alone:
            return
        max_batch = self._options.max_batch
        before = self._learned.get(group.key, None)
        state = after_reply(
            before or start(max_batch), size=size, unusable=unusable, max_batch=max_batch
        )
        if state.backed_off and not (before and before.backed_off):
            logger.info(
                "backing off: sending alone group=%r size=%d unusable=%d",
                group.label,
                size,
                unusable,
            )
        elif before is not None and before.backed_off and not state.backed_off:
            logger.info("resuming coalescing group=%r size=%d", group.label, size)
        if state == start(max_batch):
            self._learned.pop(group.key, None)  # nothing learned worth keeping
        else:
            self._learned[group.key] = state

    def _forget_if_idle(self, group: _Group) -> None:
        idle = not group.gathering and group.in_flight == 0 and not group.queue
        if idle and self._groups.get(group.key) is group:
            del self._groups[group.key]

    # -- calling ----------------------------------------------------------------

    def _start_call(
        self, group: _Group, batch: list[_Request], reason: FlushReason, *, holds_slot: bool
    ) -> None:
        """Start the task that makes one call for *batch* (a slot taken already, or not)."""
        call = self._new_call(group, batch, reason)
        self._task_group.start_soon(self._call, group, call, holds_slot)

    def _new_call(self, group: _Group, batch: list[_Request], reason: FlushReason) -> _Call:
        call = _Call(batch, reason, self._backend.scope())
        for request in batch:
            request.call = call
        group.in_flight += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "flush group=%r size=%d tokens=%d reason=%s",
                group.label,
                len(batch),
                sum(request.params.max_tokens for request in batch),
                reason.value,
            )
        return call

    async def _call(self, group: _Group, call: _Call, holds_slot: bool) -> None:
        handle = self._observer.call_started(
            group.label,
            len(call.requests),
            call.reason.value,
            [request.trace for request in call.requests],
        )
        try:
            with call.scope:
                if not holds_slot and self._slots is not None:
                    await self._slots.acquire()
                    holds_slot = True
                if self._aborted or all(request.done.is_set() for request in call.requests):
                    return  # an aborted coordinator sends nothing more; or every caller left
                if len(call.requests) == 1:
                    await self._send_alone(call)
                else:
                    await self._send_batch(group, call)
        except BaseException as exc:
            if _must_propagate(exc):
                raise
            # A bug in the library: fail this call's callers, not the coordinator.
            logger.exception(
                "coalesce: internal error while sending a call group=%r size=%d",
                group.label,
                len(call.requests),
            )
            what = (
                f"coalesce failed internally while sending a call of {len(call.requests)} "
                "requests (please report this)"
            )
            call.error = exc
            for request in call.requests:
                self._deliver(request, error=_call_error(what, exc, len(call.requests)))
        finally:
            self._observer.call_ended(
                handle,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                unusable=call.unusable,
                error=call.error,
            )
            if holds_slot and self._slots is not None:
                self._slots.release()
            group.in_flight -= 1
            for request in call.requests:
                # Still waiting, and not handed on to a retry (the error is made only then).
                if request.call is call and not request.done.is_set():
                    self._deliver(request, error=_closed("while it was in flight"))
            if group.gathering:
                group.wakeup.set()  # flush_when_idle waits for the group's calls to end
            else:
                self._forget_if_idle(group)

    async def _send_alone(self, call: _Call) -> None:
        request = call.requests[0]
        params = request.params
        self._counts["model_calls"] += 1
        self._counts["tokens_requested"] += params.max_tokens
        try:
            reply: object = await self._client.create_message(params)
        except Exception as exc:
            call.error = exc
            self._deliver(request, error=exc)  # a lone request gets the client's own error
            return
        except BaseException as exc:
            if _must_propagate(exc):
                raise
            call.error = exc
            self._deliver(request, error=_call_failed(exc, 1))
            return
        if not isinstance(reply, CreateMessageResult | CreateMessageResultWithTools):
            call.error = _wrong_type(reply)
            self._deliver(request, error=call.error)
            return
        self._count_usage(call, reply)
        self._deliver(request, reply)

    async def _send_batch(self, group: _Group, call: _Call) -> None:
        requests = call.requests
        size = len(requests)
        client: Any = self._client
        keyed = getattr(client, "supports_response_schema", False) is True
        coalesced = compose_batch([request.params for request in requests], keyed=keyed)
        extra = {"response_schema": response_schema(size)} if keyed else {}
        limit = max_reply_chars(coalesced.max_tokens)
        counts = self._counts
        counts["model_calls"] += 1
        counts["coalesced_calls"] += 1
        counts["coalesced_requests"] += size
        counts["tokens_requested"] += coalesced.max_tokens
        answers: Sequence[Result | TaskError]
        try:
            if callable(getattr(client, "stream_message", None)):
                answers = await self._stream(call, client.stream_message(coalesced, **extra), limit)
            else:
                answers = await self._ask(call, coalesced, extra, limit)
        except BaseException as exc:
            if _must_propagate(exc):
                raise
            call.error = exc
            logger.warning(
                "coalesced call failed group=%r size=%d reason=%s",
                group.label,
                size,
                type(exc).__name__,
            )
            for request in requests:
                self._deliver(request, error=_call_failed(exc, size))
            return
        unusable = call.unusable = sum(isinstance(answer, TaskError) for answer in answers)
        if unusable:
            logger.warning(
                "coalesced reply left tasks unusable group=%r size=%d unusable=%d reason=%s",
                group.label,
                size,
                unusable,
                next(a.reason for a in answers if isinstance(a, TaskError))[:80],
            )
        self._learn(group, size, unusable)
        for request, answer in zip(requests, answers, strict=True):
            if request.done.is_set():
                continue  # released while streaming, or its caller left
            if not isinstance(answer, TaskError):
                self._deliver(request, answer)
            elif self._options.retry_alone:
                counts["retried_alone"] += 1
                self._observer.retried(group.label)
                self._start_call(group, [request], FlushReason.RETRY, holds_slot=False)
            else:
                self._deliver(request, error=answer)

    async def _ask(
        self, call: _Call, coalesced: CreateMessageRequestParams, extra: dict[str, Any], limit: int
    ) -> Sequence[Result | TaskError]:
        """Make a coalesced call and read its whole reply."""
        client: Any = self._client
        reply: object = await client.create_message(coalesced, **extra)
        if not isinstance(reply, CreateMessageResult | CreateMessageResultWithTools):
            raise _wrong_type(reply)
        self._count_usage(call, reply)
        return await _read(reply, len(call.requests), limit)

    async def _stream(
        self, call: _Call, chunks: AsyncIterator[str], limit: int
    ) -> list[Result | TaskError]:
        """Read a streamed reply, releasing each caller as soon as its own entry is complete.

        Returns the whole reply's verdict for every task. A released answer is
        final: a later entry that contradicts it is ignored (and logged).
        """
        requests = call.requests
        reader = ReplyReader(len(requests), limit=limit)
        async with _closing(chunks):  # closing the stream cancels the HTTP request
            async for chunk in chunks:
                if not isinstance(chunk, str):
                    raise TypeError(f"stream_message yielded a {type(chunk).__name__}, not a str")
                for index, text in reader.feed(chunk):
                    self._deliver(requests[index], answer_result(text, "", "endTurn"))
            final = getattr(self._client, "last_stream_result", None)
        model, stop_reason = "", "endTurn"
        if isinstance(final, CreateMessageResult):
            self._count_usage(call, final)
            model, stop_reason = final.model, final.stop_reason or stop_reason
        answers: list[Result | TaskError] = []
        for request, verdict in zip(requests, reader.close(), strict=True):
            if request.done.is_set() and request.result is not None:
                if reply_text(request.result) != verdict:
                    logger.info("ignored a later entry for a task already answered")
                answers.append(request.result)
            elif isinstance(verdict, TaskError):
                answers.append(verdict)
            else:
                answers.append(answer_result(verdict, model, stop_reason))
        return answers

    def _count_usage(self, call: _Call, reply: Result) -> None:
        call.input_tokens, call.output_tokens = read_usage(reply)
        self._counts["input_tokens"] += call.input_tokens
        self._counts["output_tokens"] += call.output_tokens

    # -- shutdown ---------------------------------------------------------------

    async def _close(self) -> None:
        """Refuse new requests, send everything pending at once, wait for every caller to leave.

        A normal exit: callers that gather or send in their own task finish
        that; the task group then waits for the tasks it runs.
        """
        self._closing = True
        for scope in self._room_waiters:
            scope.cancel()
        for group in self._groups.values():
            group.wakeup.set()
        if self._callers:
            self._callers_gone = anyio.Event()
            await self._callers_gone.wait()

    def _abort(self) -> None:
        """End every pending and in-flight request with CoordinatorClosed (an abnormal exit).

        Nothing more is sent. Cancelling the task group ends every gatherer and
        call task, and their ``finally`` blocks deliver CoordinatorClosed to
        whoever is still waiting.
        """
        self._closing = True
        self._aborted = True
        for scope in self._room_waiters:
            scope.cancel()
        for call in self._inline:
            call.scope.cancel()
        for group in self._groups.values():
            group.wakeup.set()  # a caller gathering in its own task stops
        self._task_group.cancel_scope.cancel()


_AT_ONCE = frozenset(
    (FlushReason.ALONE, FlushReason.FULL, FlushReason.ADAPTED, FlushReason.TOKEN_CAP)
)
"""The reasons a request arriving to an empty queue is sent at once, alone."""

OFF_LOOP_CHARS = 64 * 1024
"""A whole reply longer than this is read in a worker thread, so the event loop keeps going."""

_LABEL_CHARS = 60
"""How much of a group label's ``repr`` the stats show."""


@asynccontextmanager
async def _closing(chunks: AsyncIterator[str]) -> AsyncIterator[None]:
    """Close a stream of chunks however its reading ends (an async generator has ``aclose``)."""
    try:
        yield
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _read(reply: Result, size: int, limit: int) -> Sequence[Result | TaskError]:
    """Demux a whole *reply*: a long one in a worker thread, so other deadlines fire on time."""
    if len(reply_text(reply)) <= OFF_LOOP_CHARS:
        return demux_reply(reply, size, max_chars=limit)
    return await anyio.to_thread.run_sync(
        partial(demux_reply, reply, size, max_chars=limit), abandon_on_cancel=True
    )


def _is_cancellation(exc: BaseException) -> bool:
    """Tell whether *exc* is a cancellation, or a group of nothing but cancellations."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(cancelled)[1] is None
    return isinstance(exc, cancelled)


def _must_propagate(exc: BaseException) -> bool:
    """Tell whether *exc* must leave a call task rather than fail the call's callers.

    ``KeyboardInterrupt`` and ``SystemExit`` abort the coordinator, and so does
    a cancellation that is really in effect for this task. Any other
    ``BaseException`` from a client (a ``Cancelled`` leaked from the client's
    own cancel scope, ``GeneratorExit``) fails only its own call.
    """
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return True
    cancelled = anyio.get_cancelled_exc_class()
    return isinstance(exc, cancelled) and anyio.current_effective_deadline() == -math.inf


def _closed(when: str) -> CoordinatorClosed:
    return CoordinatorClosed(f"the coordinator was closed {when}")


def _wrong_type(reply: object) -> TypeError:
    return TypeError(
        f"the client returned a {type(reply).__name__}, not a mcp.types.CreateMessageResult"
    )


def _call_error(what: str, exc: BaseException, size: int) -> BatchCallError:
    """Return a BatchCallError for a call of *size* requests that *what*, caused by *exc*."""
    error = BatchCallError(f"{what}: {type(exc).__name__}: {exc}", size)
    error.__cause__ = exc
    return error


def _call_failed(exc: BaseException, size: int) -> BatchCallError:
    if size == 1:
        return _call_error("the call failed", exc, size)
    return _call_error(f"the coalesced call of {size} requests failed", exc, size)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the lone exception of a group of one that the coordinator's task group made."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


def _check_client(client: object) -> None:
    create_message = getattr(client, "create_message", None)
    if not iscoroutinefunction(create_message):
        raise TypeError(
            "client must have an async create_message(params) method "
            f"(a SamplingClient), got {type(client).__name__}"
        )


@asynccontextmanager
async def open_coordinator(
    client: SamplingClient,
    *,
    window: float = 5.0,
    max_batch: int = 10,
    max_batch_tokens: int | None = None,
    max_concurrent_calls: int | None = None,
    flush_when_idle: bool = False,
    max_pending: int | None = None,
    retry_alone: bool = True,
    adaptive: bool = True,
) -> AsyncIterator[Coordinator]:
    """Open a coordinator that coalesces concurrent requests to *client*.

    The coordinator runs in its own task group, which lives exactly as long
    as the ``async with`` block: no task outlives it. It runs on trio and on
    asyncio.

    Leaving the block normally sends everything still pending at once and
    waits for every call in flight, so every queued caller gets its answer
    (callers still waiting for room under *max_pending* were never queued,
    and get :class:`CoordinatorClosed`). Leaving it by an exception or a
    cancellation ends every pending and in-flight caller with
    :class:`CoordinatorClosed`, and the exception leaves the block exactly as
    it was raised. Either way, later calls to ``create_message`` raise
    :class:`CoordinatorClosed`.

    Args:
        client: What sends the actual calls: an MCP session, a model adapter,
            a fake from :mod:`coalesce.testing`, or any
            :class:`SamplingClient`.
        window: Seconds a batch may gather, counted from the arrival of its
            first request. The latency a lone request pays, unless
            *flush_when_idle* is set.
        max_batch: At most this many requests share one call; a batch that
            fills goes at once. ``1`` turns coalescing off.
        max_batch_tokens: A batch goes before the sum of its ``max_tokens``
            would pass this; a request over it by itself goes alone.
        max_concurrent_calls: At most this many calls to *client* at once
            (``1`` for a client that serves one request at a time). A batch
            waiting for a free slot keeps taking arrivals up to *max_batch*.
        flush_when_idle: Latency first: a group with no call in flight sends
            what it has at the end of the current scheduler tick, and
            requests arriving while a call is in flight gather until it ends
            (or the batch fills, or the window runs out).
        max_pending: At most this many requests wait to be sent; further
            callers of ``create_message`` wait for room, first come, first
            served (backpressure).
        retry_alone: Send a task whose answer could not be taken from the
            coalesced reply again, on its own, once. With ``False`` its
            caller gets the :class:`TaskError`.
        adaptive: Learn each group's batch size from the model's replies:
            shrink it when replies drop tasks and grow it back when they come
            back clean; stop coalescing a group whose replies keep failing,
            and probe now and then to resume (see
            :doc:`/explanation/adaptive`).

    Yields:
        The :class:`Coordinator`.

    Raises:
        TypeError: An option has the wrong type, or *client* has no async
            ``create_message``.
        ValueError: An option is out of range.
        RuntimeError: Not running under trio or asyncio.

    Example::

        async with open_coordinator(client, window=0.5, max_batch=10) as coord:
            async with trio.open_nursery() as nursery:
                for params in requests:
                    nursery.start_soon(coord.create_message, params)
    """
    options = CoordinatorOptions(
        window=window,
        max_batch=max_batch,
        max_batch_tokens=max_batch_tokens,
        max_concurrent_calls=max_concurrent_calls,
        flush_when_idle=flush_when_idle,
        max_pending=max_pending,
        retry_alone=retry_alone,
        adaptive=adaptive,
    )
    _check_client(client)
    backend = current_backend()
    body_error: BaseException | None = None
    try:
        async with backend.task_group() as task_group:
            coordinator = Coordinator._create(client, task_group, options, load_observer(), backend)
            try:
                yield coordinator
            except BaseException as exc:
                # Kept out of the task group, so it leaves exactly as raised.
                body_error = exc
                if not _is_cancellation(exc):
                    logger.warning(
                        "coordinator closed by an error in its block: %s", type(exc).__name__
                    )
                coordinator._abort()
            else:
                await coordinator._close()
    except BaseExceptionGroup as group:
        # The body's own exception never enters the task group, so this group
        # holds only what the coordinator's tasks raised (KeyboardInterrupt,
        # SystemExit): unwrap a lone one, keeping its own cause and context.
        lone = _unwrap(group)
        if lone is group:
            raise
        cause, context, suppress = lone.__cause__, lone.__context__, lone.__suppress_context__
        try:
            raise lone
        finally:
            lone.__cause__, lone.__context__ = cause, context
            lone.__suppress_context__ = suppress
    if body_error is not None:
        raise body_error
