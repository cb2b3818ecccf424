"""The server side, end to end: a real ``Client`` talks to a real ``MCPServer`` in-process.

A tool fans out its samplings through a coordinator on
:func:`coalesce.mcp.session_client` (protocol 2025-11-25, ``mode="legacy"``),
with the fan-out the demo and ``examples/server_side.py`` use, or asks for
them with :func:`coalesce.mcp.sample_batch` (both protocols). The
client's sampling callback is a scripted model that speaks the batch format,
so the tests count what the client sees and check that each task got its own
answer. Time is virtual (``autojump_clock``): the in-process transport has no
real I/O, so windows and model latency cost nothing.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import pytest
import trio
import trio.testing
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    CreateMessageRequestParams,
    CreateMessageResult,
    ErrorData,
    Tool,
)

from coalesce import (
    BatchAnswers,
    BatchCallError,
    Coordinator,
    TaskError,
    open_coordinator,
    sample_batch,
    session_client,
)
from coalesce._demo import summarise_documents
from coalesce.testing import (
    ScriptedClient,
    TaskReply,
    is_coalesced,
    result_text,
    tasks_of,
    text_request,
)

MODES = ["legacy", "2026-07-28"]


class Host:
    """The client's side: a sampling callback that asks a scripted model, or fails."""

    def __init__(self, model: ScriptedClient | None = None) -> None:
        self.model = model if model is not None else ScriptedClient(latency=1.0)
        self.refuse: str | None = None

    async def __call__(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | ErrorData:
        if self.refuse is not None:
            self.model.requests.append(params)
            return ErrorData(code=INTERNAL_ERROR, message=self.refuse)
        return await self.model.create_message(params)

    def tasks_seen(self) -> list[str]:
        from coalesce.testing import tasks_of

        return [task for params in self.model.requests for task in tasks_of(params)]


def fan_out_server(*, max_batch: int = 10, window: float = 0.5) -> MCPServer:
    """A server whose tool asks one sampling per document, through one coordinator."""
    server = MCPServer("fan-out")

    @server.tool()
    async def summarise_all(documents: list[str], ctx: Context) -> list[str]:
        # The demo's and the example's fan-out, with the tests' plain requests.
        return await summarise_documents(
            ctx.session, documents, window=window, max_batch=max_batch, request=text_request
        )

    @server.tool()
    async def sample_with_tools(ctx: Context) -> str:
        tool = Tool(name="lookup", input_schema={"type": "object"})
        try:
            await session_client(ctx.session).create_message(text_request("x", tools=[tool]))
        except MCPError as error:
            return f"MCPError {error.error.code}: {error.error.message}"
        return "sent"

    return server


def documents(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}-{index}" for index in range(n)]


def answers_of(result: Any) -> list[str]:
    assert not result.is_error, result.content
    answers: list[str] = result.structured_content["result"]
    return answers


@pytest.mark.parametrize(("n", "max_batch"), [(1, 10), (10, 10), (23, 10), (7, 3)])
async def test_a_fanned_out_tool_costs_the_client_ceil_n_over_max_batch_requests(
    autojump_clock: trio.testing.MockClock, n: int, max_batch: int
) -> None:
    host = Host()
    server = fan_out_server(max_batch=max_batch)
    async with Client(server, sampling_callback=host, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": documents(n)})
    assert answers_of(result) == [f"answer to: {doc}" for doc in documents(n)]
    assert host.model.calls == math.ceil(n / max_batch)
    assert sorted(host.tasks_seen()) == sorted(documents(n))


async def test_a_lone_request_reaches_the_client_untouched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = Host()
    async with Client(fan_out_server(), sampling_callback=host, mode="legacy") as client:
        await client.call_tool("summarise_all", {"documents": ["only"]})
    [params] = host.model.requests
    assert not is_coalesced(params)
    assert params == text_request("only")


async def test_a_failing_client_gives_each_task_a_clear_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = Host()
    host.refuse = "the user declined sampling"
    async with Client(fan_out_server(max_batch=3), sampling_callback=host, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": documents(4)})
    answers = answers_of(result)
    # Three tasks shared a call and the fourth went alone: the coalesced ones
    # get a BatchCallError whose cause is the MCPError, the lone one the
    # MCPError itself, as a direct call would raise it.
    coalesced = "(no summary: BatchCallError: the coalesced call of 3 requests failed: MCPError: "
    assert answers.count(coalesced + "the user declined sampling)") == 3
    assert answers.count("(no summary: MCPError: the user declined sampling)") == 1
    assert host.model.calls == 2


async def test_session_client_makes_the_checks_a_direct_call_makes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Client(fan_out_server(), sampling_callback=Host(), mode="legacy") as client:
        result = await client.call_tool("sample_with_tools", {})
    assert result.structured_content == {
        "result": "MCPError -32602: Client does not support sampling tools capability"
    }


async def test_session_client_in_the_current_protocol_raises_what_a_direct_call_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = MCPServer("no-back-channel")
    raised: list[BaseException] = []

    @server.tool()
    async def ask(ctx: Context) -> str:
        try:
            await session_client(ctx.session).create_message(text_request("x"))
        except MCPError as error:
            raised.append(error)
            return "refused"
        return "sent"

    host = Host()
    async with Client(server, sampling_callback=host) as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("ask", {})
    assert result.structured_content == {"result": "refused"}
    [error] = raised
    # Still the SDK's error type and code, with a message that says what to do.
    assert type(error) is NoBackChannelError
    assert error.code == INVALID_REQUEST
    assert re.fullmatch(NO_BACK_CHANNEL, str(error))
    assert type(error.__cause__) is NoBackChannelError
    assert host.model.calls == 0


NO_BACK_CHANNEL = (
    r"session_client cannot send a sampling request: the client negotiated protocol "
    r"2026-07-28, which has no back-channel for a tool's own requests\. Sample with "
    r"coalesce\.mcp\.sample_batch \(a Resolve resolver, which works in every protocol\), or "
    r'have the client connect in legacy mode \(mcp Client\(\.\.\., mode="legacy"\), '
    r"protocol 2025-11-25\)\."
)


async def test_a_coalesced_call_without_a_back_channel_says_what_to_do(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The fan-out's callers get BatchCallError, whose cause is that same error.
    server = MCPServer("no-back-channel")
    raised: list[BaseException] = []

    @server.tool()
    async def ask_three(ctx: Context) -> int:
        async def ask(coord: Coordinator, index: int) -> None:
            try:
                await coord.create_message(text_request(f"task {index}"))
            except BatchCallError as error:
                raised.append(error)

        async with (
            open_coordinator(session_client(ctx.session), window=1.0, max_batch=3) as coord,
            trio.open_nursery() as nursery,
        ):
            for index in range(3):
                nursery.start_soon(ask, coord, index)
        return len(raised)

    host = Host()
    async with Client(server, sampling_callback=host) as client:
        result = await client.call_tool("ask_three", {})
    assert result.structured_content == {"result": 3}
    assert len(raised) == 3
    for error in raised:
        assert type(error.__cause__) is NoBackChannelError
        assert re.fullmatch(NO_BACK_CHANNEL, str(error.__cause__))
        assert str(error).startswith(
            "the coalesced call of 3 requests failed: NoBackChannelError: session_client cannot"
        )
    assert host.model.calls == 0


async def test_two_client_sessions_never_share_a_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = fan_out_server()
    hosts = {"alice": Host(), "bob": Host()}
    results: dict[str, list[str]] = {}

    async def use(name: str) -> None:
        async with Client(server, sampling_callback=hosts[name], mode="legacy") as client:
            result = await client.call_tool("summarise_all", {"documents": documents(5, name)})
            results[name] = answers_of(result)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, "alice")
        nursery.start_soon(use, "bob")
    for name, host in hosts.items():
        assert host.model.calls == 1
        assert sorted(host.tasks_seen()) == documents(5, name)
        assert results[name] == [f"answer to: {doc}" for doc in documents(5, name)]


async def test_session_client_takes_only_a_server_session() -> None:
    with pytest.raises(
        TypeError, match=r"^session_client takes a mcp.server.session.ServerSession"
    ):
        session_client(object())  # type: ignore[arg-type]


# -- sample_batch: one Sample for many tasks, in either protocol ----------------


# Module level: with postponed annotations, the tool's annotation is
# evaluated in the module's namespace, so what it names must live there.
async def summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
    return [text_request(f"summarise {doc}", max_tokens=50) for doc in documents]


def batch_server() -> MCPServer:
    server = MCPServer("sample-batch")

    @server.tool()
    async def summarise_all(
        documents: list[str],
        answers: Annotated[BatchAnswers, sample_batch(summary_requests)],
    ) -> list[str]:
        return [
            f"TaskError: {answer.reason}" if isinstance(answer, TaskError) else result_text(answer)
            for answer in answers
        ]

    return server


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [0, 1, 2, 12])
async def test_sample_batch_costs_one_sampling_request(
    autojump_clock: trio.testing.MockClock, mode: str, n: int
) -> None:
    host = Host()
    async with Client(batch_server(), sampling_callback=host, mode=mode) as client:
        result = await client.call_tool("summarise_all", {"documents": documents(n)})
    assert answers_of(result) == [f"answer to: summarise {doc}" for doc in documents(n)]
    assert host.model.calls == min(n, 1)
    if n == 1:
        assert host.model.requests == [text_request("summarise doc-0", max_tokens=50)]
    elif n > 1:
        [params] = host.model.requests
        assert is_coalesced(params)
        assert params.max_tokens == 50 * n


@pytest.mark.parametrize("mode", MODES)
async def test_sample_batch_sends_a_task_without_an_answer_again_alone(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    def drop_task_1(entries: list[TaskReply]) -> list[TaskReply]:
        return [entry for entry in entries if entry["task_index"] != 1]

    host = Host(ScriptedClient(mangle=drop_task_1))
    async with Client(batch_server(), sampling_callback=host, mode=mode) as client:
        result = await client.call_tool("summarise_all", {"documents": documents(3)})
    assert answers_of(result) == [f"answer to: summarise doc-{i}" for i in range(3)]
    assert host.model.calls == 2
    assert not is_coalesced(host.model.requests[1])
    assert tasks_of(host.model.requests[1]) == ["summarise doc-1"]


@pytest.mark.parametrize("mode", MODES)
async def test_sample_batch_on_a_model_that_ignores_the_format_answers_every_task_alone(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    host = Host(ScriptedClient(mangle=lambda entries: "I don't do JSON."))
    async with Client(batch_server(), sampling_callback=host, mode=mode) as client:
        result = await client.call_tool("summarise_all", {"documents": documents(4)})
    assert answers_of(result) == [f"answer to: summarise doc-{i}" for i in range(4)]
    assert host.model.calls == 5, "one failed batch, then each task alone"


@pytest.mark.parametrize("mode", MODES)
async def test_sample_batch_with_a_failing_client_fails_the_call_with_its_error(
    autojump_clock: trio.testing.MockClock, mode: str
) -> None:
    host = Host()
    host.refuse = "the user declined sampling"
    async with Client(batch_server(), sampling_callback=host, mode=mode) as client:
        with pytest.raises(MCPError, match=r"^the user declined sampling$"):
            await client.call_tool("summarise_all", {"documents": documents(3)})
    assert host.model.calls == 1


async def test_sample_batch_rejects_what_is_not_a_resolver() -> None:
    with pytest.raises(TypeError, match=r"^sample_batch takes a resolver function, got list$"):
        sample_batch([text_request("x")])  # type: ignore[arg-type]


def sync_summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
    return [text_request(f"summarise {doc}", max_tokens=50) for doc in documents]


@pytest.mark.parametrize("mode", MODES)
async def test_sample_batch_takes_a_sync_resolver(mode: str) -> None:
    # Real time: mcp runs a sync resolver in a worker thread.
    server = MCPServer("sync-resolver")

    @server.tool()
    async def summarise_all(
        documents: list[str],
        answers: Annotated[BatchAnswers, sample_batch(sync_summary_requests)],
    ) -> list[str]:
        return [result_text(answer) for answer in answers if not isinstance(answer, TaskError)]

    host = Host(ScriptedClient())
    async with Client(server, sampling_callback=host, mode=mode) as client:
        result = await client.call_tool("summarise_all", {"documents": documents(3)})
    assert answers_of(result) == [f"answer to: summarise {doc}" for doc in documents(3)]
    assert host.model.calls == 1


async def test_session_client_can_send_on_the_tool_calls_own_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = MCPServer("related")

    @server.tool()
    async def ask(ctx: Context) -> str:
        client = session_client(ctx.session, related_request_id=ctx.request_id)
        return result_text(await client.create_message(text_request("x")))

    host = Host()
    async with Client(server, sampling_callback=host, mode="legacy") as client:
        result = await client.call_tool("ask", {})
    assert result.structured_content == {"result": "answer to: x"}
