"""The coordinator's promises, one focused test each, run once on trio and once on asyncio.

None of these depends on the clock: batches go because they are full, because
``flush_when_idle`` sends a tick's arrivals, or because the block ends. The
promises about time are in ``test_coordinator_timing.py``, in trio's virtual
time.
"""

from __future__ import annotations

import json
import logging
import math
from functools import partial
from typing import Any

import anyio
import pytest
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ImageContent,
    ModelPreferences,
    SamplingMessage,
    TextContent,
)

from coalesce import (
    BatchCallError,
    Coordinator,
    CoordinatorClosed,
    CoordinatorStats,
    TaskError,
    open_coordinator,
)
from coalesce.testing import (
    CannedClient,
    ScriptedClient,
    is_coalesced,
    result_text,
    tasks_of,
    text_request,
    text_result,
)

from .helpers import submit_all

pytestmark = pytest.mark.anyio

FOREVER = 3600.0
"""A window no test waits out: batches go when full, idle, or at the block's end."""


def texts(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def drop_task(index: int):  # type: ignore[no-untyped-def]
    def mangle(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [entry for entry in entries if entry["task_index"] != index]

    return mangle


def flush_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("flush ")]


# -- batching ----------------------------------------------------------------------


async def test_lone_request_passes_through_and_its_exception_is_unchanged() -> None:
    error = KeyError("boom")
    fake = CannedClient([error])
    async with open_coordinator(fake, flush_when_idle=True) as coord:
        with pytest.raises(KeyError) as info:
            await coord.create_message(text_request("alone"))
    assert info.value is error
    assert fake.requests == [text_request("alone")]


async def test_each_caller_gets_its_own_answer() -> None:
    model = ScriptedClient(lambda text: text[::-1])
    async with open_coordinator(model, window=FOREVER, max_batch=4) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(12, "task-")])
    assert outcomes == [t[::-1] for t in texts(12, "task-")]
    assert [tasks_of(params) for params in model.requests] == [
        texts(12, "task-")[i : i + 4] for i in (0, 4, 8)
    ]


async def test_a_tick_of_arrivals_is_one_call_with_flush_when_idle() -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, flush_when_idle=True) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(5)], stagger=False)
    assert outcomes == [f"answer to: {t}" for t in texts(5)]
    assert model.calls == 1


async def test_shared_system_prompt_is_stated_once() -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, max_batch=3) as coord:
        await submit_all(coord, [text_request(t, system_prompt="Be terse.") for t in texts(3)])
    [sent] = model.requests
    assert sent.system_prompt is not None
    assert sent.system_prompt.count("Be terse.") == 1


async def test_non_text_requests_go_alone_untouched() -> None:
    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    picture = text_request("x").model_copy(
        update={"messages": [SamplingMessage(role="user", content=[image])]}
    )
    fake = CannedClient(default=text_result("a picture"))
    async with open_coordinator(fake, window=FOREVER) as coord:
        outcomes = await submit_all(coord, [picture, picture])
    assert outcomes == ["a picture", "a picture"]
    assert fake.requests == [picture, picture]


async def test_a_coalesced_reply_with_tools_type_but_text_content_is_read() -> None:
    reply = CreateMessageResultWithTools(
        role="assistant",
        content=[
            TextContent(
                type="text",
                text=json.dumps(
                    [{"task_index": 0, "response": "A"}, {"task_index": 1, "response": "B"}]
                ),
            )
        ],
        model="m",
    )
    fake = CannedClient([reply])
    async with open_coordinator(fake, window=FOREVER, max_batch=2) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert outcomes == ["A", "B"]


# -- compatibility groups ---------------------------------------------------------


async def test_different_groups_never_share_a_call() -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, flush_when_idle=True) as coord:
        outcomes = await submit_all(
            coord,
            [text_request(t) for t in texts(6)],
            groups=["alice", "bob", "alice", "bob", 1, True],
            stagger=False,
        )
    assert outcomes == [f"answer to: {t}" for t in texts(6)]
    batches = sorted(sorted(tasks_of(params)) for params in model.requests)
    assert batches == [["t0", "t2"], ["t1", "t3"], ["t4"], ["t5"]]


@pytest.mark.parametrize(
    "field",
    [
        {"temperature": 0.5},
        {"model_preferences": ModelPreferences(speed_priority=1.0)},
        {"stop_sequences": ["END"]},
        {"include_context": "none"},
        {"metadata": {"tenant": "x"}},
    ],
)
async def test_requests_that_differ_in_a_shared_setting_never_share_a_call(
    field: dict[str, Any],
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, flush_when_idle=True) as coord:
        await submit_all(
            coord, [text_request("a"), text_request("b", **field), text_request("c")], stagger=False
        )
    assert sorted(len(tasks_of(params)) for params in model.requests) == [1, 2]
    [lone] = [params for params in model.requests if not is_coalesced(params)]
    assert tasks_of(lone) == ["b"]


# -- per-task fallback ------------------------------------------------------------


async def test_retry_alone_sends_a_failed_task_again_on_its_own() -> None:
    model = ScriptedClient(mangle=drop_task(1))
    async with open_coordinator(model, window=FOREVER, max_batch=3) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(3)])
        stats = coord.stats
    assert outcomes == [f"answer to: {t}" for t in texts(3)]
    assert model.calls == 2
    assert not is_coalesced(model.requests[1])
    assert tasks_of(model.requests[1]) == ["t1"]
    assert (stats.retried_alone, stats.answered) == (1, 3)


async def test_a_retry_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    model = ScriptedClient(mangle=drop_task(1))
    async with open_coordinator(model, window=FOREVER, max_batch=2) as coord:
        await submit_all(coord, [text_request(t) for t in texts(2)], groups=["g"] * 2)
    assert flush_messages(caplog) == [
        "flush group='g' size=2 tokens=200 reason=full",
        "flush group='g' size=1 tokens=100 reason=retry alone",
    ]


async def test_without_retry_alone_the_caller_gets_the_task_error() -> None:
    model = ScriptedClient(mangle=drop_task(1))
    async with open_coordinator(model, window=FOREVER, max_batch=3, retry_alone=False) as coord:
        outcomes = await submit_all(coord, [text_request(t) for t in texts(3)])
    assert outcomes[0] == "answer to: t0"
    assert outcomes[2] == "answer to: t2"
    assert isinstance(outcomes[1], TaskError)
    assert outcomes[1].task_index == 1
    assert model.calls == 1


async def test_a_failed_retry_gives_the_clients_own_error() -> None:
    error = PermissionError("denied")
    fake = CannedClient([json.dumps([{"task_index": 0, "response": "ok"}]), error])
    async with open_coordinator(fake, window=FOREVER, max_batch=2) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert outcomes == ["ok", error]


async def test_a_failed_coalesced_call_is_not_retried_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = CannedClient([RecursionError("deep")], default="never")
    async with open_coordinator(fake, window=FOREVER, max_batch=2) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")], groups=["g"] * 2)
    assert all(isinstance(outcome, BatchCallError) for outcome in outcomes)
    assert fake.calls == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "coalesced call failed group='g' size=2 reason=RecursionError"


async def test_a_reply_with_unusable_tasks_is_logged_without_prompt_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = ScriptedClient(mangle=lambda entries: "no json here")
    async with open_coordinator(model, window=FOREVER, max_batch=2) as coord:
        await submit_all(coord, [text_request("secret-a"), text_request("secret-b")])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "coalesced reply left tasks unusable group=None size=2 unusable=2"
    )
    assert "secret" not in warnings[0]


async def test_a_client_returning_the_wrong_type_fails_its_callers() -> None:
    class Wrong:
        async def create_message(self, params: object) -> object:
            return {"not": "a result"}

    async with open_coordinator(Wrong(), window=FOREVER, max_batch=2) as coord:  # type: ignore[arg-type]
        batch = await submit_all(coord, [text_request("a"), text_request("b")])
    async with open_coordinator(Wrong(), flush_when_idle=True) as coord:  # type: ignore[arg-type]
        lone = await submit_all(coord, [text_request("c")])
    assert isinstance(batch[0], BatchCallError)
    assert isinstance(batch[0].__cause__, TypeError)
    assert isinstance(lone[0], TypeError)
    assert str(lone[0]) == "the client returned a dict, not a mcp.types.CreateMessageResult"


class Leaky(ScriptedClient):
    """A client that, for any task saying "leak", raises a BaseException that is not its own."""

    def __init__(self, leak: str) -> None:
        super().__init__()
        self.leak = leak

    async def create_message(
        self, params: CreateMessageRequestParams, *, response_schema: Any = None
    ) -> CreateMessageResult:
        if not any("leak" in text for text in tasks_of(params)):
            return await super().create_message(params, response_schema=response_schema)
        self.requests.append(params)
        if self.leak == "GeneratorExit":
            raise GeneratorExit
        with anyio.CancelScope() as scope:  # a cancellation caught in its own scope, raised later
            scope.cancel()
            try:
                await anyio.sleep(1)
            except anyio.get_cancelled_exc_class() as exc:
                leaked = exc
        raise leaked


@pytest.mark.parametrize("leak", ["GeneratorExit", "Cancelled"])
async def test_a_client_raising_a_base_exception_fails_only_its_own_callers(leak: str) -> None:
    model = Leaky(leak)
    async with open_coordinator(model, window=FOREVER, flush_when_idle=True) as coord:
        outcomes = await submit_all(
            coord,
            [text_request("leak-a"), text_request("b"), text_request("leak-c"), text_request("d")],
            groups=["x", "y", "x", "y"],
            stagger=False,
        )
        lone = await submit_all(coord, [text_request("leak alone")])
        after = await submit_all(coord, [text_request("e"), text_request("f")], stagger=False)
    assert after == ["answer to: e", "answer to: f"], "the body went on and was served"
    assert outcomes[1::2] == ["answer to: b", "answer to: d"]
    for error in [*outcomes[0::2], *lone]:
        assert isinstance(error, BatchCallError)
        assert isinstance(error.__cause__, BaseException)
        assert not isinstance(error.__cause__, Exception)


# -- backpressure -----------------------------------------------------------------


async def test_a_caller_waiting_for_room_is_never_overtaken() -> None:
    model = ScriptedClient()
    outcomes: dict[str, object] = {}
    first = anyio.CancelScope()

    async def ask(coord: Coordinator, text: str) -> None:
        try:
            outcomes[text] = result_text(await coord.create_message(text_request(text)))
        except CoordinatorClosed as error:
            outcomes[text] = type(error)

    async def ask_first(coord: Coordinator) -> None:
        with first:
            await coord.create_message(text_request("first"))

    async with anyio.create_task_group() as outside:
        async with open_coordinator(model, window=FOREVER, max_pending=1) as coord:
            outside.start_soon(ask_first, coord)
            await anyio.wait_all_tasks_blocked()  # "first" is queued: no room left
            outside.start_soon(ask, coord, "waits")
            await anyio.wait_all_tasks_blocked()  # "waits" waits for room
            first.cancel()  # "first" leaves, making room for one ...
            outside.start_soon(ask, coord, "later")  # ... as "later" arrives
            await anyio.wait_all_tasks_blocked()
    # The block's normal exit sends what is queued and closes who still waits for room.
    assert outcomes == {"waits": "answer to: waits", "later": CoordinatorClosed}
    assert [tasks_of(params) for params in model.requests] == [["waits"]]


async def test_normal_exit_closes_callers_still_waiting_for_room() -> None:
    model = ScriptedClient()
    outcomes: list[object] = []

    async def ask(coord_: Coordinator, text: str) -> None:
        try:
            outcomes.append(result_text(await coord_.create_message(text_request(text))))
        except CoordinatorClosed as error:
            outcomes.append(error)

    async with anyio.create_task_group() as outside:
        async with open_coordinator(model, window=FOREVER, max_pending=1) as coord:
            for text in texts(3):
                outside.start_soon(ask, coord, text)
                await anyio.wait_all_tasks_blocked()
    assert outcomes[2:] == ["answer to: t0"]
    assert all(isinstance(outcome, CoordinatorClosed) for outcome in outcomes[:2])


# -- cancellation -----------------------------------------------------------------


async def test_a_cancelled_queued_caller_is_never_sent() -> None:
    model = ScriptedClient()
    async with anyio.create_task_group() as task_group:
        async with open_coordinator(model, window=FOREVER) as coord:
            task_group.start_soon(coord.create_message, text_request("keep-1"))
            with anyio.CancelScope() as scope:
                task_group.start_soon(_cancel_when_blocked, scope)
                await coord.create_message(text_request("gone"))
            task_group.start_soon(coord.create_message, text_request("keep-2"))
            await anyio.wait_all_tasks_blocked()
            assert coord.queued == 2
    stats = coord.stats
    assert [sorted(tasks_of(params)) for params in model.requests] == [["keep-1", "keep-2"]]
    assert (stats.requests, stats.cancelled, stats.answered, stats.pending) == (3, 1, 2, 0)


async def _cancel_when_blocked(scope: anyio.CancelScope) -> None:
    await anyio.wait_all_tasks_blocked()
    scope.cancel()


async def test_a_cancelled_in_flight_caller_leaves_the_others_unaffected() -> None:
    model = ScriptedClient(latency=0.01)
    got: list[str] = []
    async with open_coordinator(model, window=FOREVER, max_batch=2) as coord:

        async def keep() -> None:
            got.append(result_text(await coord.create_message(text_request("keep"))))

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(keep)
            await anyio.wait_all_tasks_blocked()
            with anyio.CancelScope() as scope:
                task_group.start_soon(_cancel_when_in_flight, scope, model)
                await coord.create_message(text_request("gone"))
        stats = coord.stats
    assert got == ["answer to: keep"]
    assert model.calls == 1
    assert (stats.answered, stats.cancelled) == (1, 1)


async def _cancel_when_in_flight(scope: anyio.CancelScope, model: ScriptedClient) -> None:
    while not model.in_flight:
        await anyio.sleep(0)
    scope.cancel()


async def test_an_in_flight_call_is_cancelled_when_all_its_callers_are() -> None:
    model = ScriptedClient(latency=math.inf)
    async with open_coordinator(model, window=FOREVER, max_batch=3) as coord:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(_cancel_when_blocked, scope)
                await submit_all(coord, [text_request(t) for t in texts(3)], stagger=False)
                pytest.fail("the callers were not cancelled")
        await anyio.wait_all_tasks_blocked()
        assert model.in_flight == 0
        assert coord.stats.cancelled == 3


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_task_cancel_removes_a_queued_request() -> None:
    import asyncio

    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, max_batch=2) as coord:
        gone = asyncio.ensure_future(coord.create_message(text_request("gone")))
        await anyio.wait_all_tasks_blocked()
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")])
    assert outcomes == ["answer to: a", "answer to: b"]
    assert [tasks_of(params) for params in model.requests] == [["a", "b"]]


# -- shutdown ---------------------------------------------------------------------


async def test_normal_exit_sends_everything_pending() -> None:
    model = ScriptedClient()
    results: list[str] = []

    async def ask(coord_: Coordinator, text: str) -> None:
        results.append(result_text(await coord_.create_message(text_request(text))))

    async with anyio.create_task_group() as outside:
        async with open_coordinator(model, window=FOREVER) as coord:
            for text in texts(3):
                outside.start_soon(ask, coord, text)
            await anyio.wait_all_tasks_blocked()
    assert sorted(results) == [f"answer to: {t}" for t in texts(3)]
    with pytest.raises(CoordinatorClosed, match=r"^the coordinator is closed"):
        await coord.create_message(text_request("late"))


async def test_exit_by_exception_closes_every_pending_and_in_flight_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = ScriptedClient(latency=math.inf)
    outcomes: list[BaseException] = []

    async def ask(coord_: Coordinator, text: str) -> None:
        try:
            await coord_.create_message(text_request(text))
        except CoordinatorClosed as error:
            outcomes.append(error)

    async with anyio.create_task_group() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, window=FOREVER, max_batch=2) as coord:
                for text in texts(3):
                    outside.start_soon(ask, coord, text)
                await anyio.wait_all_tasks_blocked()  # two in flight, one queued
                raise ZeroDivisionError
    assert sorted(map(str, outcomes)) == [
        "the coordinator was closed while it was in flight",
        "the coordinator was closed while it was in flight",
        "the coordinator was closed while it was queued",
    ]
    assert model.in_flight == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "coordinator closed by an error in its block: ZeroDivisionError"
    ]


async def test_exit_by_exception_sends_nothing_that_was_pending() -> None:
    model = ScriptedClient()
    closed: list[CoordinatorClosed] = []

    async def ask(coord_: Coordinator) -> None:
        with pytest.raises(
            CoordinatorClosed, match=r"^the coordinator was closed while it was queued$"
        ) as info:
            await coord_.create_message(text_request("pending"))
        closed.append(info.value)

    async with anyio.create_task_group() as outside:
        with pytest.raises(ZeroDivisionError):
            async with open_coordinator(model, window=FOREVER) as coord:
                for _ in range(3):
                    outside.start_soon(ask, coord)
                await anyio.wait_all_tasks_blocked()
                raise ZeroDivisionError
    assert len(closed) == 3
    assert model.calls == 0, "an aborted coordinator sends no shutdown batch"


async def test_cancelling_the_block_closes_callers() -> None:
    model = ScriptedClient(latency=math.inf)
    outcomes: list[BaseException] = []

    async def ask(coord_: Coordinator) -> None:
        with pytest.raises(CoordinatorClosed) as info:
            await coord_.create_message(text_request("x"))
        outcomes.append(info.value)

    async with anyio.create_task_group() as outside:
        with anyio.CancelScope() as scope:
            async with open_coordinator(model, flush_when_idle=True) as coord:
                outside.start_soon(ask, coord)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
                await anyio.sleep_forever()
    assert len(outcomes) == 1


async def test_a_body_exception_is_not_wrapped_in_a_group() -> None:
    with pytest.raises(LookupError, match=r"^plain$"):
        async with open_coordinator(ScriptedClient()):
            raise LookupError("plain")


async def test_a_body_exception_group_of_one_leaves_exactly_as_raised() -> None:
    mine = ExceptionGroup("mine", [ValueError("inner")])
    with pytest.raises(ExceptionGroup) as info:
        async with open_coordinator(ScriptedClient()):
            raise mine
    assert info.value is mine


async def test_a_body_exception_keeps_its_own_cause_and_context() -> None:
    cause = KeyError("the cause")
    with pytest.raises(RuntimeError, match=r"^wrapped$") as info:
        async with open_coordinator(ScriptedClient()):
            try:
                raise cause
            except KeyError as error:
                raise RuntimeError("wrapped") from error
    assert info.value.__cause__ is cause
    assert info.value.__context__ is cause


# -- bad input --------------------------------------------------------------------


async def test_bad_input_raises_at_once_and_disturbs_nothing() -> None:
    model = ScriptedClient()
    unsortable = text_request("x").model_copy(update={"metadata": {"m": {1: "a", "b": 2}}})
    no_messages = CreateMessageRequestParams.model_construct(max_tokens=5)
    async with anyio.create_task_group() as task_group:
        async with open_coordinator(model, window=FOREVER) as coord:
            task_group.start_soon(coord.create_message, text_request("fine"))
            with pytest.raises(TypeError, match=r"^create_message takes a mcp\.types\."):
                await coord.create_message({"messages": []})  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"^max_tokens must be at least 1, got 0$"):
                await coord.create_message(text_request("x", max_tokens=0))
            with pytest.raises(TypeError, match=r"^group must be hashable, got list$"):
                await coord.create_message(text_request("x"), group=[1])  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"^the request's 'metadata' cannot be compared"):
                await coord.create_message(unsortable)
            with pytest.raises(TypeError, match=r"^the request has no 'messages' field"):
                await coord.create_message(no_messages)
            await anyio.wait_all_tasks_blocked()
            assert coord.stats.requests == 1, "a refused request is never counted"
    assert coord.stats == CoordinatorStats(
        requests=1,
        answered=1,
        model_calls=1,
        tokens_requested=100,
        queue_wait_total=coord.stats.queue_wait_total,
        queue_wait_max=coord.stats.queue_wait_max,
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": -1}, ValueError, r"^window must be a finite number of seconds >= 0, got -1$"),
        ({"window": 10**400}, ValueError, r"^window must be a finite number of seconds >= 0"),
        ({"window": math.nan}, ValueError, r"^window must be a finite number of seconds >= 0"),
        ({"window": "5"}, TypeError, r"^window must be a number of seconds, got str$"),
        ({"max_batch": 0}, ValueError, r"^max_batch must be at least 1, got 0$"),
        ({"max_pending": 0}, ValueError, r"^max_pending must be at least 1, got 0$"),
        ({"max_concurrent_calls": 1.5}, TypeError, r"^max_concurrent_calls must be an int"),
        ({"retry_alone": "false"}, TypeError, r"^retry_alone must be True or False, got str"),
        ({"flush_when_idle": 1}, TypeError, r"^flush_when_idle must be True or False, got int"),
    ],
)
async def test_bad_options_are_refused(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with open_coordinator(ScriptedClient(), **options):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("client", [None, object(), "text"])
async def test_a_client_without_async_create_message_is_refused(client: object) -> None:
    with pytest.raises(TypeError, match=r"^client must have an async create_message"):
        async with open_coordinator(client):  # type: ignore[arg-type]
            pass


async def test_a_coordinator_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match=r"has no public constructor; use `async with"):
        Coordinator(ScriptedClient(), None, None, None, "trio")  # type: ignore[arg-type]


def test_outside_an_event_loop_the_error_names_the_backends() -> None:
    opening = open_coordinator(ScriptedClient()).__aenter__()
    with pytest.raises(RuntimeError, match=r"^open_coordinator runs on trio or asyncio"):
        opening.send(None)
    opening.close()


# -- stats and logging ------------------------------------------------------------


async def test_stats_show_what_coalescing_saved() -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, max_batch=4) as coord:
        await submit_all(coord, [text_request(t, max_tokens=10) for t in texts(12)], stagger=False)
        stats = coord.stats
    assert (stats.requests, stats.answered, stats.model_calls) == (12, 12, 3)
    assert (stats.coalesced_calls, stats.coalesced_requests, stats.tokens_requested) == (3, 12, 120)
    assert stats.requests_per_call == 4.0
    assert stats.calls_saved == 9
    data = stats.to_dict()
    assert (data["calls_saved"], data["pending"]) == (9, 0)
    assert data["queue_wait_mean"] == stats.queue_wait_total / 12
    assert json.loads(json.dumps(data)) == data


async def test_repr_shows_options_and_stats() -> None:
    async with open_coordinator(ScriptedClient(), window=2.0, max_batch=3) as coord:
        text = repr(coord)
    assert text.startswith("<coalesce.Coordinator open window=2.0, max_batch=3, ")
    assert "stats=CoordinatorStats(requests=0" in text
    assert repr(coord).startswith("<coalesce.Coordinator closed ")


async def test_each_flush_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    async with anyio.create_task_group() as outside:
        async with open_coordinator(ScriptedClient(), window=FOREVER, max_batch=2) as coord:
            for text in texts(3):
                outside.start_soon(partial(coord.create_message, text_request(text), group="g"))
                await anyio.wait_all_tasks_blocked()
    assert flush_messages(caplog) == [
        "flush group='g' size=2 tokens=200 reason=full",
        "flush group='g' size=1 tokens=100 reason=shutdown",
    ]
    assert {record.levelno for record in caplog.records} == {logging.DEBUG}
    assert {record.name for record in caplog.records} == {"coalesce"}


async def test_idle_and_token_cap_flushes_are_logged_with_their_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce")
    async with open_coordinator(ScriptedClient(), flush_when_idle=True) as coord:
        await coord.create_message(text_request("alone"), group="idle")
    async with anyio.create_task_group() as outside:
        async with open_coordinator(
            ScriptedClient(), window=FOREVER, max_batch_tokens=250
        ) as coord:
            for text in texts(3):
                outside.start_soon(partial(coord.create_message, text_request(text), group="cap"))
                await anyio.wait_all_tasks_blocked()
    assert flush_messages(caplog) == [
        "flush group='idle' size=1 tokens=100 reason=idle",
        "flush group='cap' size=2 tokens=200 reason=token cap",
        "flush group='cap' size=1 tokens=100 reason=shutdown",
    ]


async def test_calls_saved_counts_the_retries_calls() -> None:
    model = ScriptedClient(mangle=lambda entries: entries[:1])
    async with open_coordinator(model, window=FOREVER, max_batch=4) as coord:
        await submit_all(coord, [text_request(t) for t in texts(4)])
        stats = coord.stats
    assert (stats.model_calls, stats.retried_alone) == (4, 3)
    assert stats.calls_saved == 0


async def test_an_internal_error_fails_its_callers_not_the_coordinator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coalesce._coordinator as coordinator_module

    def broken(requests: object, *, keyed: bool) -> object:
        raise AttributeError("a bug")

    monkeypatch.setattr(coordinator_module, "compose_batch", broken)
    model = ScriptedClient()
    async with open_coordinator(model, window=FOREVER, flush_when_idle=True) as coord:
        outcomes = await submit_all(coord, [text_request("a"), text_request("b")], stagger=False)
        lone = await coord.create_message(text_request("still serving"))
    assert isinstance(outcomes[0], BatchCallError)
    assert str(outcomes[0]).startswith("coalesce failed internally while sending a call of 2")
    assert isinstance(outcomes[0].__cause__, AttributeError)
    assert result_text(lone) == "answer to: still serving"


async def test_a_normal_exit_returns_once_every_caller_has_its_outcome() -> None:
    # The callers run outside the block: when it ends, each already has its answer.
    model = ScriptedClient()
    got: list[str] = []
    async with anyio.create_task_group() as outer:
        async with open_coordinator(model, window=FOREVER) as coord:

            async def ask(text: str) -> None:
                got.append(result_text(await coord.create_message(text_request(text))))

            for text in texts(3):
                outer.start_soon(ask, text)
            await anyio.wait_all_tasks_blocked()
        assert sorted(got) == [f"answer to: {text}" for text in texts(3)]
    assert model.calls == 1
