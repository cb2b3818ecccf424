"""The trio layer: a nursery-scoped coordinator that gathers, sends and answers.

Everything it decides comes from the pure core (:mod:`coalesce._policy`,
:mod:`coalesce._prompt`, :mod:`coalesce._demux`); this module only moves
requests between callers, deadlines and the client.

How a request travels: ``create_message`` queues it in its compatibility
group and parks the caller (``wait_task_rescheduled``, as trio's own channels
park theirs). One gatherer task per group with waiting requests sleeps until
the policy says the group should be sent (``move_on_at`` the window's
deadline, or an arrival that fills it), takes a call slot, cuts a batch and
starts a call task in the coordinator's nursery. The call task sends the batch
and reschedules each caller with its own outcome. Every path that ends a task
(answer, error, cancellation, shutdown) goes through ``_deliver``, which
hands out exactly one outcome per request.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import outcome
import trio
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
)

from ._client import SamplingClient
from ._demux import demux_reply
from ._errors import BatchCallError, CoordinatorClosed, TaskError
from ._policy import CoordinatorOptions, FlushReason, compatibility_key, fits, flush_reason
from ._prompt import compose_batch
from ._requests import check_request
from ._stats import CoordinatorStats
from ._usage import read_usage

__all__ = ["Coordinator", "open_coordinator"]

logger = logging.getLogger("coalesce")


class _State(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    DONE = "done"


class _Request:
    """One caller's request and where it stands; the only per-request object."""

    __slots__ = ("arrival", "call", "group", "params", "state", "task", "tokens")

    def __init__(
        self,
        params: CreateMessageRequestParams,
        group: _Group,
        arrival: float,
        task: trio.lowlevel.Task,
    ) -> None:
        self.params = params
        self.group = group
        self.arrival = arrival
        self.task = task
        self.tokens = params.max_tokens
        self.state = _State.QUEUED
        self.call: _Call | None = None

    def __call__(self, _: Any) -> trio.lowlevel.Abort:
        """Trio's abort callback while the caller waits: being the request, it costs nothing."""
        self.group.coordinator._forget(self)
        return trio.lowlevel.Abort.SUCCEEDED


class _Group:
    """The requests of one compatibility key: its queue, its gatherer, its calls."""

    __slots__ = (
        "alone",
        "coordinator",
        "gathering",
        "in_flight",
        "key",
        "label",
        "live",
        "lot",
        "queue",
        "tokens",
    )

    def __init__(
        self, key: Hashable, label: Hashable, *, alone: bool, coordinator: Coordinator
    ) -> None:
        self.coordinator = coordinator
        self.key = key
        self.label = label
        self.alone = alone
        # Cancelled requests stay in the queue until they reach its front; `live`
        # and `tokens` count only the ones still queued.
        self.queue: deque[_Request] = deque()
        self.live = 0
        self.tokens = 0
        self.in_flight = 0
        self.gathering = False
        self.lot = trio.lowlevel.ParkingLot()

    def first_live(self) -> _Request | None:
        queue = self.queue
        while queue and queue[0].state is not _State.QUEUED:
            queue.popleft()
        return queue[0] if queue else None


class _Call:
    """One call to the client and the requests it answers."""

    __slots__ = ("live", "requests", "scope")

    def __init__(self, requests: list[_Request]) -> None:
        self.requests = requests
        self.live = len(requests)
        self.scope = trio.CancelScope()


class Coordinator:
    """Coalesces concurrent sampling requests into fewer calls to one client.

    Get one from :func:`open_coordinator`; it is only usable inside that
    block. It satisfies :class:`~coalesce.SamplingClient`, so code that takes
    a client can be given a coordinator instead.
    """

    def __init__(
        self,
        client: SamplingClient,
        nursery: trio.Nursery,
        options: CoordinatorOptions,
    ) -> None:
        self._client = client
        self._nursery = nursery
        self._options = options
        self._groups: dict[Hashable, _Group] = {}
        self._closing = False
        self._aborted = False
        self._queued = 0
        self._room = trio.lowlevel.ParkingLot()
        self._slots = (
            None
            if options.max_concurrent_calls is None
            else trio.Semaphore(options.max_concurrent_calls)
        )
        self._counts: dict[str, int] = dict.fromkeys(
            (field.name for field in attrs.fields(CoordinatorStats)), 0
        )

    @property
    def options(self) -> CoordinatorOptions:
        """The batching options this coordinator was opened with."""
        return self._options

    @property
    def stats(self) -> CoordinatorStats:
        """A snapshot of what this coordinator has done so far."""
        return CoordinatorStats(**self._counts)

    @property
    def closed(self) -> bool:
        """Whether new requests are refused (the coordinator's block has ended)."""
        return self._closing

    async def create_message(
        self,
        params: CreateMessageRequestParams,
        *,
        group: Hashable = None,
    ) -> CreateMessageResult:
        """Send one sampling request, coalesced with others, and return its own answer.

        The caller waits while the request gathers with others of its
        compatibility group (see :func:`open_coordinator`), then gets exactly
        one outcome: its own answer, or one error.

        Args:
            params: The request, as a server would send it.
            group: A hashable key (a session, a tenant, a user): requests of
                different groups never share a call. ``None`` is a group too.

        Returns:
            The model's answer to this request alone. (A request that offers
            tools always goes alone, and gets the client's reply unchanged: a
            ``CreateMessageResultWithTools`` where the client gives one.)

        Raises:
            TypeError: *params* is not a ``CreateMessageRequestParams``, or
                *group* is not hashable.
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
        if self._closing:
            raise CoordinatorClosed("the coordinator is closed; open a new one to send requests")
        limit = self._options.max_pending
        if limit is not None:
            while self._queued >= limit:
                await self._room.park()
                if self._closing:
                    raise CoordinatorClosed(
                        "the coordinator closed while this request waited for room"
                    )
        self._counts["requests"] += 1
        request = self._enqueue(params, group)
        result: CreateMessageResult = await trio.lowlevel.wait_task_rescheduled(request)
        return result

    # -- queueing ---------------------------------------------------------------

    def _enqueue(self, params: CreateMessageRequestParams, label: Hashable) -> _Request:
        key = compatibility_key(params, label)
        if key is None:
            group = _Group(object(), label, alone=True, coordinator=self)
        else:
            found = self._groups.get(key)
            if found is None:
                group = self._groups[key] = _Group(key, label, alone=False, coordinator=self)
            else:
                group = found
        request = _Request(params, group, trio.current_time(), trio.lowlevel.current_task())
        group.live += 1
        group.tokens += request.tokens
        self._queued += 1
        if group.gathering:
            group.queue.append(request)
            cap = self._options.max_batch_tokens
            full = group.live >= self._options.max_batch or (cap is not None and group.tokens > cap)
            if full and group.lot:  # the gatherer is parked
                group.lot.unpark_all()
        elif self._slots is None and (group.alone or self._options.max_batch == 1):
            # Its batch is full on arrival and no call slot is to be waited for:
            # nothing to gather, so one task does what a gatherer would, and calls.
            self._nursery.start_soon(self._send_at_once, group, request)
        else:
            group.queue.append(request)
            group.gathering = True
            self._nursery.start_soon(self._gather, group)
        return request

    def _dequeue(self, request: _Request) -> None:
        group = request.group
        group.live -= 1
        group.tokens -= request.tokens
        self._queued -= 1
        if self._room:  # someone waits for room (max_pending)
            self._room.unpark()

    def _forget(self, request: _Request) -> None:
        """Drop a request whose caller was cancelled (trio's abort callback)."""
        state = request.state
        request.state = _State.DONE
        self._counts["cancelled"] += 1
        if state is _State.QUEUED:
            self._dequeue(request)
            # The group's deadline or readiness may have changed.
            request.group.lot.unpark_all()
        elif state is _State.SENT:
            call = request.call
            if call is not None:
                call.live -= 1
                if call.live == 0:
                    call.scope.cancel()

    def _deliver(self, request: _Request, result: outcome.Outcome[CreateMessageResult]) -> None:
        """Hand *request*'s caller its one outcome, unless it already has one."""
        if request.state is _State.DONE:
            return
        request.state = _State.DONE
        self._counts["answered" if isinstance(result, outcome.Value) else "failed"] += 1
        trio.lowlevel.reschedule(request.task, result)

    # -- gathering --------------------------------------------------------------

    async def _gather(self, group: _Group) -> None:
        """Send *group*'s requests in batches until none is left waiting."""
        try:
            while True:
                reason = await self._wait_until_ready(group)
                if reason is None or self._aborted:
                    return
                if self._slots is not None:
                    await self._slots.acquire()
                batch = self._cut(group)
                if not batch:
                    if self._slots is not None:
                        self._slots.release()
                    continue
                self._start_call(group, batch, reason, slot_held=True)
        finally:
            group.gathering = False
            for request in group.queue:
                if request.state is _State.QUEUED:
                    self._dequeue(request)
                    self._deliver(request, _closed("while it was queued"))
            self._maybe_drop(group)

    async def _wait_until_ready(self, group: _Group) -> FlushReason | None:
        options = self._options
        while True:
            first = group.first_live()
            if first is None:
                return None
            reason = flush_reason(
                options,
                queued=group.live,
                queued_tokens=group.tokens,
                first_arrival=first.arrival,
                now=trio.current_time(),
                in_flight=group.in_flight,
                closing=self._closing,
                alone=group.alone,
            )
            if reason is not None:
                return reason
            with trio.move_on_at(first.arrival + options.window):
                await group.lot.park()

    def _cut(self, group: _Group) -> list[_Request]:
        batch: list[_Request] = []
        tokens = 0
        queue = group.queue
        while queue:
            request = queue[0]
            if request.state is not _State.QUEUED:
                queue.popleft()
                continue
            if not fits(
                self._options, taken=len(batch), taken_tokens=tokens, tokens=request.tokens
            ):
                break
            queue.popleft()
            self._dequeue(request)
            request.state = _State.SENT
            batch.append(request)
            tokens += request.tokens
        return batch

    async def _send_at_once(self, group: _Group, request: _Request) -> None:
        """Send *request*, whose batch was full on arrival, as its gatherer would have.

        The request stays queued until this task runs, exactly as if a gatherer
        were to cut it; then this task makes the call itself, rather than
        starting a call task as a gatherer does.
        """
        if request.state is not _State.QUEUED:  # its caller was cancelled meanwhile
            self._maybe_drop(group)
            return
        self._dequeue(request)
        if self._aborted:
            self._deliver(request, _closed("while it was queued"))
            self._maybe_drop(group)
            return
        request.state = _State.SENT
        reason = FlushReason.ALONE if group.alone else FlushReason.FULL
        call = self._new_call(group, [request], reason)
        await self._run_call(group, call, slot_held=False)

    def _maybe_drop(self, group: _Group) -> None:
        idle = not group.gathering and group.in_flight == 0 and not group.live
        if idle and self._groups.get(group.key) is group:
            del self._groups[group.key]

    # -- calling ----------------------------------------------------------------

    def _start_call(
        self,
        group: _Group,
        batch: list[_Request],
        reason: FlushReason,
        *,
        slot_held: bool,
    ) -> None:
        call = self._new_call(group, batch, reason)
        self._nursery.start_soon(self._run_call, group, call, slot_held)

    def _new_call(self, group: _Group, batch: list[_Request], reason: FlushReason) -> _Call:
        call = _Call(batch)
        for request in batch:
            request.call = call
        group.in_flight += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "flush group=%r size=%d tokens=%d reason=%s",
                group.label,
                len(batch),
                sum(request.tokens for request in batch),
                reason.value,
            )
        return call

    async def _run_call(self, group: _Group, call: _Call, slot_held: bool) -> None:
        try:
            with call.scope:
                if not slot_held and self._slots is not None:
                    await self._slots.acquire()
                    slot_held = True
                # If the coordinator was aborted before this call was sent, nothing
                # is sent and `finally` tells its callers.
                if not self._aborted:
                    await self._send(group, call)
        except Exception as exc:  # a bug in the library: fail its callers, not the coordinator
            logger.exception("coalesce: internal error while sending a call")
            for request in call.requests:
                if request.call is call:
                    self._deliver(request, outcome.Error(_internal_error(exc, len(call.requests))))
        finally:
            if slot_held and self._slots is not None:
                self._slots.release()
            group.in_flight -= 1
            for request in call.requests:
                # Most were answered: build the error only for those that were not.
                if request.call is call and request.state is not _State.DONE:
                    self._deliver(request, _closed("while it was in flight"))
            if group.gathering:
                group.lot.unpark_all()
            else:
                self._maybe_drop(group)

    async def _send(self, group: _Group, call: _Call) -> None:
        if len(call.requests) == 1:
            await self._send_alone(call.requests[0])
        else:
            await self._send_batch(group, call)

    async def _send_alone(self, request: _Request) -> None:
        params = request.params
        self._counts["model_calls"] += 1
        self._counts["tokens_requested"] += params.max_tokens
        try:
            reply: object = await self._client.create_message(params)
        except Exception as exc:
            self._deliver(request, outcome.Error(exc))
            return
        # A request that offers tools is answered with a CreateMessageResultWithTools
        # (content may be a list, with tool uses); it goes alone, so it passes through.
        if not isinstance(reply, CreateMessageResult | CreateMessageResultWithTools):
            self._deliver(request, outcome.Error(_wrong_type(reply)))
            return
        self._count_usage(reply)
        self._deliver(request, outcome.Value(reply))  # type: ignore[arg-type]

    async def _send_batch(self, group: _Group, call: _Call) -> None:
        requests = call.requests
        size = len(requests)
        coalesced = compose_batch([request.params for request in requests])
        counts = self._counts
        counts["model_calls"] += 1
        counts["coalesced_calls"] += 1
        counts["coalesced_requests"] += size
        counts["tokens_requested"] += coalesced.max_tokens
        try:
            reply: object = await self._client.create_message(coalesced)
        except Exception as exc:
            reply = exc
        if not isinstance(reply, CreateMessageResult):
            cause = reply if isinstance(reply, Exception) else _wrong_type(reply)
            for request in requests:
                self._deliver(request, outcome.Error(_batch_failed(cause, size)))
            return
        self._count_usage(reply)
        retry = self._options.retry_alone
        for request, answer in zip(requests, demux_reply(reply, size), strict=True):
            if not isinstance(answer, TaskError):
                self._deliver(request, outcome.Value(answer))
            elif retry and request.state is _State.SENT:
                counts["retried_alone"] += 1
                call.live -= 1
                self._start_call(group, [request], FlushReason.RETRY, slot_held=False)
            else:
                self._deliver(request, outcome.Error(answer))

    def _count_usage(self, reply: CreateMessageResult | CreateMessageResultWithTools) -> None:
        input_tokens, output_tokens = read_usage(reply)
        self._counts["input_tokens"] += input_tokens
        self._counts["output_tokens"] += output_tokens

    # -- shutdown ---------------------------------------------------------------

    def _close(self) -> None:
        """Refuse new requests and send everything pending at once (a normal exit)."""
        self._closing = True
        self._room.unpark_all()
        for group in list(self._groups.values()):
            group.lot.unpark_all()

    def _abort(self) -> None:
        """End every pending and in-flight request with CoordinatorClosed (an abnormal exit).

        Nothing more is sent: gatherers are not woken to flush (as a normal
        exit does), and one that is already awake sends nothing. Cancelling
        the nursery ends every gatherer and call task, and their ``finally``
        blocks deliver CoordinatorClosed to whoever is still waiting.
        """
        self._closing = True
        self._aborted = True
        self._room.unpark_all()
        self._nursery.cancel_scope.cancel()


def _closed(when: str) -> outcome.Error:
    return outcome.Error(CoordinatorClosed(f"the coordinator was closed {when}"))


def _wrong_type(reply: object) -> TypeError:
    return TypeError(
        f"the client returned a {type(reply).__name__}, not a mcp.types.CreateMessageResult"
    )


def _call_error(what: str, exc: Exception, size: int) -> BatchCallError:
    """Return a BatchCallError for a call of *size* requests that *what*, caused by *exc*."""
    error = BatchCallError(f"{what}: {type(exc).__name__}: {exc}", size)
    error.__cause__ = exc
    return error


def _batch_failed(exc: Exception, size: int) -> BatchCallError:
    return _call_error(f"the coalesced call of {size} requests failed", exc, size)


def _internal_error(exc: Exception, size: int) -> BatchCallError:
    what = (
        f"coalesce failed internally while sending a call of {size} requests (please report this)"
    )
    return _call_error(what, exc, size)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the lone exception of a group of one, so users see the real error."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


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
) -> AsyncIterator[Coordinator]:
    """Open a coordinator that coalesces concurrent requests to *client*.

    The coordinator runs in its own nursery, which lives exactly as long as
    the ``async with`` block: no task outlives it.

    Leaving the block normally sends everything still pending at once and
    waits for every call in flight, so every queued caller gets its answer
    (callers still waiting for room under *max_pending* were never queued,
    and get :class:`CoordinatorClosed`). Leaving
    it by an exception or a cancellation ends every pending and in-flight
    caller with :class:`CoordinatorClosed`. Either way, later calls to
    ``create_message`` raise :class:`CoordinatorClosed`.

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
            callers of ``create_message`` wait for room (backpressure).
        retry_alone: Send a task whose answer could not be taken from the
            coalesced reply again, on its own, once. With ``False`` its
            caller gets the :class:`TaskError`.

    Yields:
        The :class:`Coordinator`.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option is out of range.

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
    )
    try:
        async with trio.open_nursery() as nursery:
            coordinator = Coordinator(client, nursery, options)
            try:
                yield coordinator
            except BaseException:
                coordinator._abort()
                raise
            else:
                coordinator._close()
    except BaseExceptionGroup as group:
        lone = _unwrap(group)
        if lone is group:
            raise
        # Re-raise the lone exception as the block raised it: keep its own
        # cause and context rather than chaining it to the nursery's group.
        cause, context, suppress = lone.__cause__, lone.__context__, lone.__suppress_context__
        try:
            raise lone
        finally:
            lone.__cause__, lone.__context__ = cause, context
            lone.__suppress_context__ = suppress
