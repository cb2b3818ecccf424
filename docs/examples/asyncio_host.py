"""An MCP host on asyncio whose sampling callback is a coordinator.

The server's tool sends one sampling request per question, all at once, and
does not coalesce; the host passes ``sampling_callback(coord)`` to its
``Client``, so the requests share calls to the host's model. A stand-in model
answers; any ``SamplingClient`` works (a model adapter, for one).
"""

import asyncio

from mcp.client.client import Client
from mcp.server.mcpserver import Context, MCPServer

import coalesce
from coalesce.testing import ScriptedClient

server = MCPServer("quiz")


@server.tool()
async def quiz(questions: list[str], ctx: Context) -> list[str]:
    """Ask the client's model every question, one sampling request each."""
    client = coalesce.session_client(ctx.session)
    results = await asyncio.gather(
        *(client.create_message(coalesce.text_request(question)) for question in questions)
    )
    return [coalesce.result_text(result) for result in results]


async def main() -> None:
    model = ScriptedClient(lambda text: f"answer to {text}")
    questions = [f"question {index}" for index in range(30)]
    async with (
        coalesce.open_coordinator(model, window=0.5, max_batch=10) as coord,
        # A tool can send its own sampling requests only in legacy mode (2025-11-25).
        Client(
            server, sampling_callback=coalesce.sampling_callback(coord), mode="legacy"
        ) as client,
    ):
        result = await client.call_tool("quiz", {"questions": questions})
    assert result.structured_content is not None
    answers = result.structured_content["result"]
    print(f"{len(answers)} sampling requests, {model.calls} model calls")
    print(f"question 7: {answers[7]!r}")


if __name__ == "__main__":
    asyncio.run(main())
