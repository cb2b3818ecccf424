"""coalesce with FastMCP 4, on both sides of the connection.

Server side: a FastMCP tool passes ``ctx.session`` to ``session_client`` and
fans out one sampling request per document through a coordinator. Client
side: a FastMCP ``Client`` whose ``sampling_handler`` is a coordinator on the
host's model, so the separate requests of a tool that does not coalesce
share model calls too. A stand-in model answers; any ``SamplingClient``
works (a model adapter, for one).
"""

import asyncio

from fastmcp import Client, Context, FastMCP
from mcp.types import CreateMessageRequestParams, CreateMessageResult

import coalesce
from coalesce.mcp import fastmcp_sampling_handler, session_client
from coalesce.testing import ScriptedClient

server = FastMCP("summariser")


def summary_request(document: str) -> CreateMessageRequestParams:
    return coalesce.text_request(document, system="Summarise in one sentence.", max_tokens=200)


@server.tool
async def summarise_all(documents: list[str], ctx: Context) -> list[str]:
    """Summarise every document: one coordinator, one sampling request per document."""
    client = session_client(ctx.session, related_request_id=ctx.request_id)
    async with coalesce.open_coordinator(client, window=0.05, max_batch=10) as coord:
        results = await asyncio.gather(
            *(coord.create_message(summary_request(document)) for document in documents)
        )
    return [coalesce.result_text(result) for result in results]


@server.tool
async def summarise_each(documents: list[str], ctx: Context) -> list[str]:
    """Summarise every document with its own sampling request, uncoalesced."""
    client = session_client(ctx.session, related_request_id=ctx.request_id)
    results = await asyncio.gather(
        *(client.create_message(summary_request(document)) for document in documents)
    )
    return [coalesce.result_text(result) for result in results]


async def main() -> None:
    documents = [f"document {index}" for index in range(20)]
    model = ScriptedClient(lambda text: f"summary of {text}")

    # The server coalesces; the client's handler is the model itself.
    async def answer(
        messages: object, params: CreateMessageRequestParams, context: object
    ) -> CreateMessageResult:
        return await model.create_message(params)

    # A tool can send its own sampling requests only in legacy mode (2025-11-25).
    async with Client(server, sampling_handler=answer, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": documents})
    print(f"server side: {len(result.data)} summaries, {model.calls} model calls")

    # The client coalesces what a tool sends one request at a time.
    before = model.calls
    async with coalesce.open_coordinator(model, window=0.5, max_batch=10) as coord:
        handler = fastmcp_sampling_handler(coord)
        async with Client(server, sampling_handler=handler, mode="legacy") as client:
            result = await client.call_tool("summarise_each", {"documents": documents})
    print(f"client side: {len(result.data)} summaries, {model.calls - before} model calls")
    print(f"document 7: {result.data[7]!r}")


if __name__ == "__main__":
    asyncio.run(main())
