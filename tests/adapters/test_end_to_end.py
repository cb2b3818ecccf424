"""A coordinator in front of each adapter, the real SDK and a loopback HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from anthropic import AsyncAnthropic
from fake_llm_server import FakeLLMServer, serve_fake_llm
from mcp.types import CreateMessageRequestParams, SamplingMessage, TextContent
from openai import AsyncOpenAI

import coalesce
from coalesce import open_coordinator
from coalesce.adapters.anthropic import AnthropicClient
from coalesce.adapters.openai import OpenAIClient

from .test_adapters import SDK_GENERATORS_LEFT_TO_TRIO

# Through the adapters, coalesced calls stream (stream_message) and are
# schema-constrained (supports_response_schema), as in production.
pytestmark = pytest.mark.filterwarnings(SDK_GENERATORS_LEFT_TO_TRIO)


@asynccontextmanager
async def adapter_for(api: str, server: FakeLLMServer) -> AsyncIterator[coalesce.SamplingClient]:
    if api == "anthropic":
        async with AsyncAnthropic(
            api_key="unused", base_url=server.anthropic_base_url, max_retries=0
        ) as anthropic_sdk:
            yield AnthropicClient(anthropic_sdk)
    else:
        async with AsyncOpenAI(
            api_key="unused", base_url=server.openai_base_url, max_retries=0
        ) as openai_sdk:
            yield OpenAIClient(openai_sdk)


def question(index: int) -> CreateMessageRequestParams:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=f"Q{index}"))
    return CreateMessageRequestParams(messages=[message], max_tokens=50)


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_concurrent_requests_share_one_api_call(api: str) -> None:
    answers: dict[int, Any] = {}
    async with (
        serve_fake_llm() as server,
        adapter_for(api, server) as adapter,
        open_coordinator(adapter, window=0.05, max_batch=8) as coord,
    ):

        async def ask(index: int) -> None:
            answers[index] = await coord.create_message(question(index))

        async with trio.open_nursery() as nursery:
            for index in range(5):
                nursery.start_soon(ask, index)
        stats = coord.stats
    assert {i: a.content.text for i, a in answers.items()} == {
        i: f"You said: Q{i}" for i in range(5)
    }
    assert len(server.requests) == 1
    assert stats.model_calls == 1
    assert stats.coalesced_requests == 5
    assert stats.output_tokens > 0
    assert stats.input_tokens > 0
