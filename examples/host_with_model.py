"""An MCP host whose sampling requests share model calls, answered by a real LLM SDK.

An in-process MCP server offers a ``quiz`` tool that asks the client to sample
one answer per question, all at once. The host answers those sampling
requests through a coalescing coordinator in front of a model adapter, so the
questions reach the model as one call.

Run from the repository root (``--help`` for the options)::

    python examples/host_with_model.py            # Anthropic
    python examples/host_with_model.py openai     # OpenAI

With ``ANTHROPIC_API_KEY`` (or ``OPENAI_API_KEY``) set, it calls the real API
with the adapter's default model; without a key, it starts the local fake API
server from ``fake_llm_server.py`` and points the SDK at it, so it runs
offline and free.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from anthropic import AsyncAnthropic
from fake_llm_server import serve_fake_llm
from mcp.client.client import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import SamplingMessage, TextContent
from openai import AsyncOpenAI

import coalesce
from coalesce.adapters.anthropic import AnthropicClient
from coalesce.adapters.openai import OpenAIClient

# MCP's 2026-07-28 revision deprecates sampling; the legacy-mode session used
# here still speaks it, and saying so on every request is noise in a demo.
warnings.filterwarnings(
    "ignore", message="The sampling capability is deprecated", category=MCPDeprecationWarning
)

QUESTIONS = [
    "What is 2 + 2?",
    "What is the capital of France?",
    "Name a prime number greater than 10.",
    "What colour is a clear daytime sky?",
]

server = MCPServer("quiz")


@server.tool()
async def quiz(questions: list[str], ctx: Context) -> list[str]:
    """Answer every question by asking the client's model, all questions at once."""
    answers = [""] * len(questions)

    async def ask(index: int, question: str) -> None:
        message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
        result = await ctx.session.create_message(
            [message], max_tokens=200, system_prompt="Answer in one short sentence."
        )
        if isinstance(result.content, TextContent):
            answers[index] = result.content.text

    async with trio.open_nursery() as nursery:
        for index, question in enumerate(questions):
            nursery.start_soon(ask, index, question)
    return answers


@asynccontextmanager
async def model_client(api: str) -> AsyncIterator[coalesce.SamplingClient]:
    """Yield the adapter for *api*: the real API if its key is set, else the local fake."""
    key_name = "OPENAI_API_KEY" if api == "openai" else "ANTHROPIC_API_KEY"
    api_key = os.environ.get(key_name)
    async with AsyncExitStack() as stack:
        base_url = None
        if api_key:
            print(f"{key_name} is set: calling the real {api} API")
        else:
            fake = await stack.enter_async_context(serve_fake_llm())
            print(f"{key_name} is not set: calling a fake {api} API on port {fake.port}")
            base_url = fake.openai_base_url if api == "openai" else fake.anthropic_base_url
        if api == "openai":
            openai_sdk = AsyncOpenAI(api_key=api_key or "fake", base_url=base_url)
            yield OpenAIClient(await stack.enter_async_context(openai_sdk))
        else:
            anthropic_sdk = AsyncAnthropic(api_key=api_key or "fake", base_url=base_url)
            yield AnthropicClient(await stack.enter_async_context(anthropic_sdk))


async def main(api: str) -> None:
    """Call the quiz tool once and show the answers and what coalescing saved."""
    async with (
        model_client(api) as model,
        coalesce.open_coordinator(model, window=0.05, max_batch=16) as coord,
        Client(
            server, sampling_callback=coalesce.sampling_callback(coord), mode="legacy"
        ) as client,
    ):
        result = await client.call_tool("quiz", {"questions": QUESTIONS})
        for block in result.content:
            if isinstance(block, TextContent):
                print(block.text)
        stats = coord.stats
    print(
        f"{stats.requests} sampling requests, {stats.model_calls} model call(s), "
        f"{stats.input_tokens} input and {stats.output_tokens} output tokens"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(
        description="Answer a quiz through an MCP host whose sampling requests share model "
        "calls. With the API's key in the environment it calls the real API; without, a "
        "local fake API server, offline and free.",
    )
    parser.add_argument(
        "api",
        nargs="?",
        choices=["anthropic", "openai"],
        default="anthropic",
        help="the model API to answer with: anthropic (key: ANTHROPIC_API_KEY) or openai "
        "(key: OPENAI_API_KEY) (default: %(default)s)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse_args().api)
