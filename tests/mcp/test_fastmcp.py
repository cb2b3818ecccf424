"""FastMCP 4, end to end: a FastMCP server's tool and a FastMCP client's handler coalesce.

FastMCP 4 has no ``ctx.sample``; its ``ctx.session`` is the ``mcp`` server
session, so a tool samples through :func:`coalesce.mcp.session_client`
(protocol 2025-11-25, ``mode="legacy"``). Its ``Client`` calls a sampling
handler as ``(messages, params, context)``:
:func:`coalesce.mcp.fastmcp_sampling_handler` is the coordinator in that
shape. FastMCP runs on asyncio; so do these tests, in real time, with short
windows and counts that do not depend on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest
from fastmcp import Client, Context, FastMCP
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageRequestParams, CreateMessageResult, SamplingMessage

import coalesce
from coalesce import open_coordinator
from coalesce.mcp import GroupFn, fastmcp_sampling_handler, session_client
from coalesce.testing import ScriptedClient, is_coalesced, tasks_of, text_request

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


def fastmcp_server() -> FastMCP:
    server = FastMCP("summariser")

    @server.tool
    async def summarise_all(documents: list[str], ctx: Context, max_batch: int = 10) -> list[str]:
        """One coordinator on ctx.session, one sampling request per document."""
        client = session_client(ctx.session, related_request_id=ctx.request_id)
        async with open_coordinator(client, window=10.0, max_batch=max_batch) as coord:
            results = await asyncio.gather(
                *(coord.create_message(text_request(document)) for document in documents)
            )
        return [coalesce.result_text(result) for result in results]

    @server.tool
    async def summarise_each(documents: list[str], ctx: Context) -> list[str]:
        """One sampling request per document, uncoalesced; a failed one says why."""
        client = session_client(ctx.session, related_request_id=ctx.request_id)

        async def summarise(document: str) -> str:
            try:
                return coalesce.result_text(await client.create_message(text_request(document)))
            except MCPError as error:
                return f"MCPError {error.code}: {error.message}"

        return list(await asyncio.gather(*(summarise(document) for document in documents)))

    return server


def documents(count: int, prefix: str = "document") -> list[str]:
    return [f"{prefix} {index}" for index in range(count)]


async def test_a_fastmcp_tool_passes_ctx_session_to_session_client() -> None:
    model = ScriptedClient(lambda text: f"summary of {text}")

    async def answer(
        messages: list[SamplingMessage],
        params: CreateMessageRequestParams,
        context: ClientRequestContext,
    ) -> CreateMessageResult:
        return await model.create_message(params)

    async with Client(fastmcp_server(), sampling_handler=answer, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": documents(20)})
    assert result.data == [f"summary of {doc}" for doc in documents(20)]
    assert model.calls == 2
    assert all(is_coalesced(params) for params in model.requests)
    assert sorted(task for params in model.requests for task in tasks_of(params)) == sorted(
        documents(20)
    )


# Full batches go at once: with a long window no count depends on timing.
@pytest.mark.parametrize(("tasks", "max_batch"), [(20, 10), (6, 3)])
async def test_a_fastmcp_client_coalesces_through_the_handler(tasks: int, max_batch: int) -> None:
    model = ScriptedClient(lambda text: f"summary of {text}")
    async with open_coordinator(model, window=10.0, max_batch=max_batch) as coord:
        handler = fastmcp_sampling_handler(coord)
        async with Client(fastmcp_server(), sampling_handler=handler, mode="legacy") as client:
            result = await client.call_tool("summarise_each", {"documents": documents(tasks)})
    assert result.data == [f"summary of {doc}" for doc in documents(tasks)]
    assert model.calls == -(-tasks // max_batch)


async def test_the_handler_fails_a_request_with_the_sampling_callbacks_message() -> None:
    # FastMCP sends str() of what the handler raises: the one sentence
    # sampling_callback would send, never the host's own exception text.
    model = ScriptedClient(lambda text: f"summary of {text}")
    model.fail_next(ConnectionError("no route to secret.internal:443"))
    async with open_coordinator(model, window=0.2, max_batch=2) as coord:
        handler = fastmcp_sampling_handler(coord)
        async with Client(fastmcp_server(), sampling_handler=handler, mode="legacy") as client:
            result = await client.call_tool("summarise_each", {"documents": documents(2)})
            assert (
                result.data
                == ["MCPError -32603: the host's model call failed (ConnectionError)"] * 2
            )
            result = await client.call_tool("summarise_each", {"documents": documents(2)})
    assert result.data == [f"summary of {doc}" for doc in documents(2)]


async def test_the_handler_groups_by_connection_unless_told_otherwise() -> None:
    server = fastmcp_server()

    async def both_clients(group: GroupFn | None, window: float) -> int:
        model = ScriptedClient(lambda text: f"summary of {text}")
        async with open_coordinator(model, window=window, max_batch=6) as coord:
            handler = fastmcp_sampling_handler(coord, group=group)

            async def use(name: str) -> None:
                async with Client(server, sampling_handler=handler, mode="legacy") as client:
                    result = await client.call_tool(
                        "summarise_each", {"documents": documents(3, name)}
                    )
                assert result.data == [f"summary of {doc}" for doc in documents(3, name)]

            await asyncio.gather(use("alice"), use("bob"))
        return model.calls

    def everyone(context: ClientRequestContext) -> Hashable:
        return "everyone"

    # Apart, each connection's three wait out the window; together they fill a batch.
    assert await both_clients(None, window=1.0) == 2
    assert await both_clients(everyone, window=10.0) == 1


async def test_the_handler_takes_only_a_coordinator() -> None:
    with pytest.raises(
        TypeError, match=r"^fastmcp_sampling_handler takes a coalesce\.Coordinator, got NoneType$"
    ):
        fastmcp_sampling_handler(None)  # type: ignore[arg-type]
    model = ScriptedClient()
    async with open_coordinator(model) as coord:
        with pytest.raises(
            TypeError, match=r"^group must be a function of the request context, got 'x'$"
        ):
            fastmcp_sampling_handler(coord, group="x")  # type: ignore[arg-type]
