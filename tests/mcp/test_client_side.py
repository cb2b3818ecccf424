"""The client side, end to end: a host coalesces what a real ``MCPServer`` asks of it.

The host passes :func:`coalesce.sampling_callback` to a real ``Client``; the
server does not coalesce: its tool sends one sampling request per task, all
at once (protocol 2025-11-25, ``mode="legacy"``), or asks for them with one
``Sample`` resolver each (2026-07-28, where the client receives them together
in an ``InputRequiredResult``). The host's model is a scripted fake that
speaks the batch format. Time is virtual (``autojump_clock``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Annotated, Any

import pytest
import trio
import trio.testing
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    SamplingMessage,
    TextContent,
    Tool,
    ToolUseContent,
)

from coalesce import (
    BatchAnswers,
    Coordinator,
    TaskError,
    open_coordinator,
    sample_batch,
    sampling_callback,
    session_client,
)
from coalesce.testing import (
    ScriptedClient,
    TaskReply,
    is_coalesced,
    result_text,
    tasks_of,
    text_request,
)

CURRENT = "2026-07-28"


def chatty_server() -> MCPServer:
    """A server whose tool sends one standalone sampling request per document, all at once."""
    server = MCPServer("chatty")

    @server.tool()
    async def summarise_all(documents: list[str], ctx: Context, max_tokens: int = 100) -> list[str]:
        client = session_client(ctx.session)
        answers = [""] * len(documents)

        async def summarise(index: int) -> None:
            params = text_request(documents[index], max_tokens=max_tokens)
            try:
                answers[index] = result_text(await client.create_message(params))
            except MCPError as error:
                answers[index] = f"MCPError {error.error.code}: {error.error.message}"

        async with trio.open_nursery() as nursery:
            for index in range(len(documents)):
                nursery.start_soon(summarise, index)
        return answers

    return server


# Five resolvers, one Sample each: in protocol 2026-07-28 the client receives
# the five requests together, in one InputRequiredResult. They are async: mcp
# runs a sync resolver in a worker thread, and while a thread runs, the
# autojump clock sees every task blocked and lets virtual time run out the
# window.
def _asker(index: int) -> Any:
    async def ask(topic: str) -> Sample:
        message = SamplingMessage(
            role="user", content=TextContent(type="text", text=f"{topic} {index}")
        )
        return Sample([message], max_tokens=100)

    ask.__qualname__ = f"ask_{index}"
    return ask


ask_0, ask_1, ask_2, ask_3, ask_4 = (_asker(index) for index in range(5))


def resolver_server() -> MCPServer:
    server = MCPServer("resolvers")

    @server.tool()
    async def five_questions(
        topic: str,
        *,
        a0: Annotated[CreateMessageResult, Resolve(ask_0)],
        a1: Annotated[CreateMessageResult, Resolve(ask_1)],
        a2: Annotated[CreateMessageResult, Resolve(ask_2)],
        a3: Annotated[CreateMessageResult, Resolve(ask_3)],
        a4: Annotated[CreateMessageResult, Resolve(ask_4)],
    ) -> list[str]:
        return [result_text(answer) for answer in (a0, a1, a2, a3, a4)]

    return server


def answers_of(result: Any) -> list[str]:
    assert not result.is_error, result.content
    answers: list[str] = result.structured_content["result"]
    return answers


def documents(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}-{index}" for index in range(n)]


@pytest.mark.parametrize(("n", "max_batch"), [(1, 10), (10, 10), (25, 10), (6, 4)])
async def test_legacy_a_servers_concurrent_requests_share_model_calls(
    autojump_clock: trio.testing.MockClock, n: int, max_batch: int
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=0.5, max_batch=max_batch) as coord:
        callback = sampling_callback(coord)
        async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
            result = await client.call_tool("summarise_all", {"documents": documents(n)})
    assert answers_of(result) == [f"answer to: {doc}" for doc in documents(n)]
    assert model.calls == math.ceil(n / max_batch)
    assert coord.stats.requests == n


async def test_current_the_sample_requests_of_one_round_share_a_model_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    async with (
        open_coordinator(model, window=0.5) as coord,
        Client(resolver_server(), sampling_callback=sampling_callback(coord)) as client,
    ):
        assert client.protocol_version == CURRENT
        result = await client.call_tool("five_questions", {"topic": "tea"})
    assert answers_of(result) == [f"answer to: tea {index}" for index in range(5)]
    assert model.calls == 1
    assert sorted(tasks_of(model.requests[0])) == [f"tea {index}" for index in range(5)]


async def test_current_concurrent_tool_calls_share_model_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient(latency=1.0)
    results: dict[str, list[str]] = {}
    async with (
        open_coordinator(model, window=0.5, max_batch=10) as coord,
        Client(resolver_server(), sampling_callback=sampling_callback(coord)) as client,
    ):

        async def call(topic: str) -> None:
            result = await client.call_tool("five_questions", {"topic": topic})
            results[topic] = answers_of(result)

        async with trio.open_nursery() as nursery:
            for topic in ("tea", "coffee", "cocoa", "mate"):
                nursery.start_soon(call, topic)
    for topic, answers in results.items():
        assert answers == [f"answer to: {topic} {index}" for index in range(5)]
    assert model.calls == 2  # 20 requests, 10 to a call


@pytest.mark.parametrize("mode", ["legacy", CURRENT])
async def test_a_failing_model_gives_a_clear_error_never_a_traceback(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    model = ScriptedClient(latency=1.0)
    model.fail_next(ConnectionError("https://api.example/v1?key=secret: connection reset"))
    async with open_coordinator(model, window=0.5) as coord:
        callback = sampling_callback(coord)
        if mode == "legacy":
            async with Client(chatty_server(), sampling_callback=callback, mode=mode) as client:
                result = await client.call_tool("summarise_all", {"documents": documents(3)})
            assert (
                answers_of(result)
                == [f"MCPError {INTERNAL_ERROR}: the host's model call failed (ConnectionError)"]
                * 3
            )
        else:
            async with Client(resolver_server(), sampling_callback=callback, mode=mode) as client:
                with pytest.raises(MCPError) as info:
                    await client.call_tool("five_questions", {"topic": "tea"})
            assert info.value.error.code == INTERNAL_ERROR
            assert info.value.error.message == "the host's model call failed (ConnectionError)"
    assert model.calls == 1


async def test_a_task_the_reply_missed_gets_a_clear_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def drop_task_1(entries: list[TaskReply]) -> list[TaskReply]:
        return [entry for entry in entries if entry["task_index"] != 1]

    model = ScriptedClient(latency=1.0, mangle=drop_task_1)
    async with open_coordinator(model, window=0.5, retry_alone=False) as coord:
        callback = sampling_callback(coord)
        async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
            result = await client.call_tool("summarise_all", {"documents": documents(3)})
    # Which document was task 1 depends on the order the requests arrived in.
    error = (
        f"MCPError {INTERNAL_ERROR}: the host's model gave no usable answer "
        "to this request (no entry answers task 1)"
    )
    answers = answers_of(result)
    assert answers.count(error) == 1
    for doc, answer in zip(documents(3), answers, strict=True):
        assert answer in (f"answer to: {doc}", error)


async def test_an_invalid_request_gets_invalid_params(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = ScriptedClient()
    async with open_coordinator(model, window=0.5) as coord:
        callback = sampling_callback(coord)
        async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
            result = await client.call_tool("summarise_all", {"documents": ["a"], "max_tokens": 0})
    assert answers_of(result) == [
        f"MCPError {INVALID_PARAMS}: invalid sampling request: max_tokens must be at least 1, got 0"
    ]
    assert model.calls == 0


@pytest.mark.parametrize("mode", ["legacy", CURRENT])
async def test_two_server_connections_never_share_a_call_by_default(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    model = ScriptedClient(latency=1.0)
    async with open_coordinator(model, window=0.5) as coord:
        await _two_connections(coord, mode)
    assert model.calls == 2
    for params in model.requests:
        assert is_coalesced(params)
        prefixes = {task.split("-")[0].split(" ")[0] for task in tasks_of(params)}
        assert len(prefixes) == 1, f"one call mixed two connections: {tasks_of(params)}"


async def test_a_host_may_choose_its_own_group(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedClient(latency=1.0)
    keys: list[Hashable] = []

    def one_group(context: ClientRequestContext) -> Hashable:
        keys.append(context.request_id)
        return "everyone"

    async with open_coordinator(model, window=0.5) as coord:
        await _two_connections(coord, "legacy", group=one_group)
    assert model.calls == 1
    assert len(keys) == 6


async def _two_connections(coord: Coordinator, mode: str, group: Any = None) -> None:
    callback = sampling_callback(coord, group=group)

    async def use(name: str) -> None:
        if mode == "legacy":
            async with Client(chatty_server(), sampling_callback=callback, mode=mode) as client:
                result = await client.call_tool("summarise_all", {"documents": documents(3, name)})
            assert answers_of(result) == [f"answer to: {doc}" for doc in documents(3, name)]
        else:
            async with Client(resolver_server(), sampling_callback=callback, mode=mode) as client:
                result = await client.call_tool("five_questions", {"topic": name})
            assert answers_of(result) == [f"answer to: {name} {index}" for index in range(5)]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, "alice")
        nursery.start_soon(use, "bob")


async def test_a_closed_coordinator_answers_with_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_coordinator(ScriptedClient(), window=0.5) as coord:
        callback = sampling_callback(coord)
    async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": ["a"]})
    assert answers_of(result) == [
        f"MCPError {INTERNAL_ERROR}: the host stopped answering sampling requests"
    ]


async def test_a_failing_group_function_answers_with_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def broken(context: ClientRequestContext) -> Hashable:
        raise KeyError(context.request_id)

    async with open_coordinator(ScriptedClient(), window=0.5) as coord:
        callback = sampling_callback(coord, group=broken)
        async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
            result = await client.call_tool("summarise_all", {"documents": ["a"]})
    assert answers_of(result) == [
        f"MCPError {INTERNAL_ERROR}: the host could not route this sampling request"
    ]


async def summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
    return [text_request(doc) for doc in documents]


async def test_a_coalescing_server_and_a_coalescing_host_do_not_nest_batches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = MCPServer("batching")

    @server.tool()
    async def summarise_all(
        documents: list[str], answers: Annotated[BatchAnswers, sample_batch(summary_requests)]
    ) -> list[str]:
        return [a.reason if isinstance(a, TaskError) else result_text(a) for a in answers]

    model = ScriptedClient(latency=1.0)
    results: list[list[str]] = []
    async with (
        open_coordinator(model, window=0.5) as coord,
        Client(server, sampling_callback=sampling_callback(coord)) as client,
    ):

        async def call(prefix: str) -> None:
            result = await client.call_tool("summarise_all", {"documents": documents(3, prefix)})
            results.append(answers_of(result))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "x")
            nursery.start_soon(call, "y")
    assert model.calls == 2
    assert all(is_coalesced(params) and len(tasks_of(params)) == 3 for params in model.requests)
    assert sorted(results) == [
        [f"answer to: {doc}" for doc in documents(3, prefix)] for prefix in ("x", "y")
    ]


async def test_sampling_callback_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"^sampling_callback takes a coalesce.Coordinator"):
        sampling_callback(ScriptedClient())  # type: ignore[arg-type]
    async with open_coordinator(ScriptedClient()) as coord:
        with pytest.raises(TypeError, match=r"^group must be a function of the request context"):
            sampling_callback(coord, group="session")  # type: ignore[arg-type]


class ToolUsingModel:
    """A host model that answers a request offering tools with a tool call."""

    async def create_message(self, params: CreateMessageRequestParams) -> CreateMessageResult:
        await trio.lowlevel.checkpoint()
        reply = CreateMessageResultWithTools(
            role="assistant",
            content=[ToolUseContent(type="tool_use", id="call-1", name="lookup", input={})],
            model="tool-model",
            stop_reason="toolUse",
        )
        return reply  # type: ignore[return-value]


async def test_a_request_offering_tools_gets_the_models_tool_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tool = Tool(name="lookup", input_schema={"type": "object"})
    async with open_coordinator(ToolUsingModel(), window=0.5) as coord:
        callback = sampling_callback(coord)
        async with Client(chatty_server(), sampling_callback=callback, mode="legacy") as client:
            reply = await callback(
                ClientRequestContext(session=client.session, request_id=1),
                text_request("look it up", tools=[tool]),
            )
    assert isinstance(reply, CreateMessageResultWithTools), reply
