"""A host that coalesces the sampling requests its servers send: the client side of coalesce.

Run it with ``python examples/client_side.py --tasks 20``. The host connects
to an MCP server (in-process here; any transport works the same) whose
``translate`` tool asks the host's model for each translation with a
``Sample`` resolver. The host calls the tool for every sentence at once, so
the server sends many sampling requests together; the host's
:func:`coalesce.sampling_callback` answers them with ``ceil(N / max_batch)``
calls to its model instead of N.

``--mode`` picks the protocol: ``legacy`` (2025-11-25, a standalone request
per sample) or ``current`` (2026-07-28, the samples ride each call's
``InputRequiredResult``). The host's code is the same for both.
"""

from __future__ import annotations

import argparse
import math
from typing import Annotated

import trio
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer, Resolve, Sample
from mcp.types import CreateMessageResult, SamplingMessage, TextContent

from coalesce import open_coordinator, sampling_callback
from coalesce.testing import ScriptedClient, result_text

# -- the server: one sampling request per tool call, no coalescing of its own ----

server = MCPServer("translator")


async def ask_model(sentence: str) -> Sample:
    """Resolver: ask the client's model for the translation."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=sentence))
    return Sample([message], system_prompt="Translate into French.", max_tokens=200)


@server.tool()
async def translate(
    sentence: str, translation: Annotated[CreateMessageResult, Resolve(ask_model)]
) -> str:
    """Translate one sentence with the client's model."""
    return result_text(translation)


# -- the host ----------------------------------------------------------------


async def run(tasks: int, max_batch: int, window: float, mode: str) -> None:
    """Call ``translate`` for *tasks* sentences at once and report the model calls."""
    # Stands in for the host's own model (an adapter such as
    # coalesce.adapters.AnthropicClient in a real host).
    model = ScriptedClient(lambda text: f"[fr] {text}", latency=0.05)
    sentences = [f"sentence number {index}" for index in range(tasks)]
    translations: dict[str, str] = {}

    async with (
        open_coordinator(model, window=window, max_batch=max_batch) as coord,
        Client(
            server,
            sampling_callback=sampling_callback(coord),
            mode="legacy" if mode == "legacy" else "2026-07-28",
        ) as client,
    ):
        protocol = client.protocol_version

        async def translate_one(sentence: str) -> None:
            result = await client.call_tool("translate", {"sentence": sentence})
            if result.is_error or result.structured_content is None:
                raise SystemExit(f"translate failed: {result.content}")
            translations[sentence] = result.structured_content["result"]

        async with trio.open_nursery() as nursery:
            for sentence in sentences:
                nursery.start_soon(translate_one, sentence)

    ok = all(translations[sentence] == f"[fr] {sentence}" for sentence in sentences)
    print(
        f"{mode} ({protocol}): {tasks} sampling requests, "
        f"{coord.stats.model_calls} model calls (expected {math.ceil(tasks / max_batch)}), "
        f"every request its own answer: {ok}"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the host."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=20, help="sentences to translate at once")
    parser.add_argument("--max-batch", type=int, default=10, help="requests per model call")
    parser.add_argument(
        "--window", type=float, default=0.1, help="seconds a batch may gather (default 0.1)"
    )
    parser.add_argument("--mode", choices=["legacy", "current"], default="current")
    args = parser.parse_args(argv)
    trio.run(run, args.tasks, args.max_batch, args.window, args.mode)


if __name__ == "__main__":
    main()
