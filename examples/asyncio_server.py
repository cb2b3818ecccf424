"""An MCP server on asyncio whose tool coalesces its samplings, started with ``server.run()``.

Its ``summarise_all`` tool asks the client for one summary per document, all
at once with ``asyncio.gather``, through a coordinator on
:func:`coalesce.mcp.session_client`: the client sees ``ceil(N / max_batch)``
sampling requests instead of N. Start it the usual ways::

    python examples/asyncio_server.py                      # stdio
    python examples/asyncio_server.py --http --port 8000   # streamable HTTP (uvicorn)

Over HTTP it serves ``http://127.0.0.1:8000/mcp``. Its clients must connect
in legacy mode (``mode="legacy"``, protocol 2025-11-25), where a tool can send
its own sampling requests; ``tests/mcp/test_asyncio_users.py`` runs it both
ways with an ``mcp`` ``Client`` as the host.
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CreateMessageResult, CreateMessageResultWithTools

import coalesce


def summary(outcome: CreateMessageResult | CreateMessageResultWithTools | BaseException) -> str:
    """A task's summary, or what went wrong for that task alone."""
    if isinstance(outcome, BaseException):
        return f"(no summary: {type(outcome).__name__}: {outcome})"
    return coalesce.result_text(outcome)


def build_server(window: float = 0.05) -> MCPServer:
    """The server: one tool that fans out a sampling request per document."""
    server = MCPServer("asyncio-summariser")

    @server.tool()
    async def summarise_all(documents: list[str], ctx: Context, max_batch: int = 10) -> list[str]:
        """Summarise every document, one sampling request each, coalesced."""
        # related_request_id: over streamable HTTP, the sampling requests ride
        # this tool call's own response stream.
        client = coalesce.session_client(ctx.session, related_request_id=ctx.request_id)
        async with coalesce.open_coordinator(client, window=window, max_batch=max_batch) as coord:
            outcomes = await asyncio.gather(
                *(
                    coord.create_message(
                        coalesce.text_request(document, system="Summarise in one sentence.")
                    )
                    for document in documents
                ),
                return_exceptions=True,
            )
        return [summary(outcome) for outcome in outcomes]

    return server


def main(argv: list[str] | None = None) -> None:
    """Serve over stdio, or over streamable HTTP on 127.0.0.1 with ``--http``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--http", action="store_true", help="serve over streamable HTTP")
    parser.add_argument("--port", type=int, default=8000, help="the HTTP port (default: 8000)")
    parser.add_argument("--window", type=float, default=0.05, help="the coordinator's window")
    args = parser.parse_args(argv)
    server = build_server(args.window)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
