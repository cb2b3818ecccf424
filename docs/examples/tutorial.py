"""The tutorial's program: an MCP tool whose 20 samplings cost two model calls.

Run it with ``python docs/examples/tutorial.py``; the test suite runs it too.
"""

from __future__ import annotations

import trio
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CreateMessageRequestParams, CreateMessageResult

from coalesce import open_coordinator, result_text, session_client, text_request
from coalesce.testing import ScriptedClient

# -- step 1: the server and its tool ------------------------------------------------

server = MCPServer("summariser")


@server.tool()
async def summarise_all(documents: list[str], ctx: Context) -> list[str]:
    """Summarise every document; the client sees one request per ten documents."""
    summaries = [""] * len(documents)
    async with open_coordinator(session_client(ctx.session), window=0.1, max_batch=10) as coord:

        async def summarise(index: int) -> None:
            request = text_request(
                documents[index], system="Summarise the document in one sentence.", max_tokens=200
            )
            result = await coord.create_message(request)
            summaries[index] = result_text(result)

        async with trio.open_nursery() as nursery:
            for index in range(len(documents)):
                nursery.start_soon(summarise, index)
    return summaries


# -- step 2: a client with a (stand-in) model ---------------------------------------

model = ScriptedClient(lambda document: f"In short: {document}.", latency=2.0)


async def answer_sampling(
    context: ClientRequestContext, params: CreateMessageRequestParams
) -> CreateMessageResult:
    """The host's sampling callback: here, our scripted model answers."""
    return await model.create_message(params)


# -- step 3: call the tool ----------------------------------------------------------


async def main() -> None:
    documents = [f"document {index}" for index in range(20)]
    async with Client(server, sampling_callback=answer_sampling, mode="legacy") as client:
        result = await client.call_tool("summarise_all", {"documents": documents})
    assert result.structured_content is not None
    summaries = result.structured_content["result"]
    print(f"{len(summaries)} summaries from {model.calls} sampling requests")
    print(summaries[7])


if __name__ == "__main__":
    trio.run(main)
