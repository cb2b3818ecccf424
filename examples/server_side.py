"""A tool that asks its client for many samplings, coalesced: the server side of coalesce.

Run it with ``python examples/server_side.py --tasks 20``: it starts this same
file as an MCP server over stdio (``python examples/server_side.py serve``),
connects to it as a client whose model is a scripted stand-in, calls the
server's two tools and prints how many sampling requests the client saw.

The server has one tool per way a tool can sample:

* ``summarise_all`` fans out one request per document through a coordinator
  on :func:`coalesce.session_client`: the client sees ``ceil(N / max_batch)``
  requests. It needs a connection that carries standalone server-to-client
  requests (protocol 2025-11-25, ``mode="legacy"``).
* ``summarise_all_at_once`` asks for every summary with one
  :func:`coalesce.sample_batch` resolver: one request, in either protocol.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Annotated

import trio
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    SamplingMessage,
    TextContent,
)

from coalesce import (
    BatchAnswers,
    TaskError,
    open_coordinator,
    sample_batch,
    session_client,
)
from coalesce.testing import ScriptedClient, result_text

server = MCPServer("summariser")


def summary_request(document: str) -> CreateMessageRequestParams:
    """The sampling request that asks for one document's summary."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=document))
    return CreateMessageRequestParams(
        messages=[message],
        system_prompt="Summarise the document in one sentence.",
        max_tokens=200,
    )


@server.tool()
async def summarise_all(documents: list[str], ctx: Context, max_batch: int = 10) -> list[str]:
    """Summarise every document, one sampling request each, coalesced by a coordinator."""
    summaries = [""] * len(documents)
    # One coordinator per tool call: its client sends to this call's session
    # only, so two client sessions never share a batch.
    client = session_client(ctx.session)
    async with open_coordinator(client, window=0.05, max_batch=max_batch) as coord:

        async def summarise(index: int) -> None:
            try:
                result = await coord.create_message(summary_request(documents[index]))
            # This task's own error (the others go on): a CoalesceError, or the
            # client's own exception (e.g. MCPError) when the request went alone.
            except Exception as error:
                summaries[index] = f"(no summary: {error})"
            else:
                summaries[index] = result_text(result)

        async with trio.open_nursery() as nursery:
            for index in range(len(documents)):
                nursery.start_soon(summarise, index)
    return summaries


async def summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
    """The resolver behind ``summarise_all_at_once``: one request per document."""
    return [summary_request(document) for document in documents]


@server.tool()
async def summarise_all_at_once(
    documents: list[str],
    answers: Annotated[BatchAnswers, sample_batch(summary_requests)],
) -> list[str]:
    """Summarise every document with one sampling request, in either protocol."""
    return [
        f"(no summary: {answer})" if isinstance(answer, TaskError) else result_text(answer)
        for answer in answers
    ]


def serve() -> None:
    """Run the server over stdio."""
    trio.run(server.run_stdio_async)


async def run(tasks: int, max_batch: int) -> None:
    """Start the server as a subprocess, call both tools and report what the client saw."""
    model = ScriptedClient(lambda text: f"summary of {text}", latency=0.01)

    async def sampling_callback(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        return await model.create_message(params)

    documents = [f"document {index}" for index in range(tasks)]
    # mcp gives a stdio server only a few safe environment variables; pass
    # PYTHONPATH on too, for a coalesce that is not installed.
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else None
    command = StdioServerParameters(command=sys.executable, args=[__file__, "serve"], env=env)
    async with Client(command, sampling_callback=sampling_callback, mode="legacy") as client:
        for tool, expected in [
            ("summarise_all", math.ceil(tasks / max_batch)),
            ("summarise_all_at_once", min(tasks, 1)),
        ]:
            before = model.calls
            arguments: dict[str, object] = {"documents": documents}
            if tool == "summarise_all":
                arguments["max_batch"] = max_batch
            result = await client.call_tool(tool, arguments)
            if result.is_error or result.structured_content is None:
                raise SystemExit(f"{tool} failed: {result.content}")
            summaries = result.structured_content["result"]
            ok = summaries == [f"summary of {document}" for document in documents]
            seen = model.calls - before
            print(
                f"{tool}: {tasks} tasks, {seen} sampling requests "
                f"(expected {expected}), every task its own answer: {ok}"
            )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the demo, or the server with ``serve``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", nargs="?", choices=["serve"], help="run as the stdio server")
    parser.add_argument("--tasks", type=int, default=20, help="documents to summarise")
    parser.add_argument("--max-batch", type=int, default=10, help="tasks per sampling request")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
    else:
        trio.run(run, args.tasks, args.max_batch)


if __name__ == "__main__":
    main()
