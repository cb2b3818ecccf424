"""A tool that asks its client for many samplings, coalesced: the server side of coalesce.

Run it with ``python examples/server_side.py --tasks 20``: it starts this same
file as an MCP server over stdio (``python examples/server_side.py serve``),
connects to it as a client whose model is a scripted stand-in, calls the
server's two tools and prints how many sampling requests the client saw.

The server has one tool per way a tool can sample:

* ``summarise_all`` fans out one request per document through a coordinator
  on :func:`coalesce.mcp.session_client`: the client sees ``ceil(N / max_batch)``
  requests; its body is the demo's (``summarise_documents`` in
  ``coalesce/_demo.py``). It needs a connection that carries standalone server-to-client
  requests (protocol 2025-11-25, ``mode="legacy"``).
* ``summarise_all_at_once`` asks for every summary with one
  :func:`coalesce.mcp.sample_batch` resolver: one request, in either protocol.
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
from mcp_types import CreateMessageRequestParams, CreateMessageResult

from coalesce import BatchAnswers, TaskError, result_text, sample_batch
from coalesce._demo import summarise_documents, summary_request
from coalesce.testing import ScriptedClient

server = MCPServer("summariser")


@server.tool()
async def summarise_all(documents: list[str], ctx: Context, max_batch: int = 10) -> list[str]:
    """Summarise every document, one sampling request each, coalesced by a coordinator."""
    # The same fan-out the demo (`python -m coalesce demo`) runs: one
    # coordinator on this call's session, one request per document, all at
    # once, and each document's summary or its own error back.
    return await summarise_documents(ctx.session, documents, max_batch=max_batch)


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
