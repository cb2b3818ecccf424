"""Real asyncio users, end to end: what people run on asyncio, with coalesce in it.

* ``examples/asyncio_server.py`` started with ``server.run()``: over stdio and
  over streamable HTTP (uvicorn on 127.0.0.1), each with an ``mcp`` ``Client``
  host whose sampling callback is a counting fake model; and served
  stateless, where no protocol has a back-channel and the SDK's own error
  reaches the tool unchanged.
* A host on asyncio whose ``sampling_callback`` is a coordinator, and a tool
  that asks with ``sample_batch`` (both protocols).
* An asyncio program calling the async OpenAI and Anthropic SDKs through
  coalesce's adapters, with HTTP mocked at the SDK's transport.

Every test here runs on asyncio only (that is the point). The subprocess and
HTTP tests run in real time: they count calls and check answers, never
durations; windows are long and task counts multiples of ``max_batch`` where
a count would otherwise depend on timing, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx2
import pytest
from anthropic import AsyncAnthropic
from fake_llm_server import FakeLLMServer, stream_of
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CreateMessageRequestParams, CreateMessageResult
from openai import AsyncOpenAI

import coalesce
from coalesce import (
    BatchAnswers,
    open_coordinator,
    sample_batch,
    sampling_callback,
    session_client,
)
from coalesce.adapters.anthropic import AnthropicClient
from coalesce.adapters.openai import OpenAIClient
from coalesce.testing import ScriptedClient, is_coalesced, tasks_of, text_request

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "asyncio_server.py"
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

# How long a subprocess server may live, at most, whatever happens to this test.
SERVE_FOR = 60


class CountingHost:
    """An ``mcp`` sampling callback that answers with a fake model and counts calls."""

    def __init__(self) -> None:
        self.model = ScriptedClient(lambda text: f"summary of {text}")

    async def __call__(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        return await self.model.create_message(params)


def documents(count: int) -> list[str]:
    return [f"document {index}" for index in range(count)]


def summaries(result: Any) -> list[str]:
    assert not result.is_error, result.content
    answers: list[str] = result.structured_content["result"]
    return answers


async def test_a_server_started_with_run_coalesces_over_stdio() -> None:
    host = CountingHost()
    command = StdioServerParameters(
        command=sys.executable,
        args=["-W", "error", str(SERVER), "--window", "10"],
        env={"PYTHONPATH": PYTHONPATH},
    )
    with anyio.fail_after(30):
        async with Client(command, sampling_callback=host, mode="legacy") as client:
            result = await client.call_tool(
                "summarise_all", {"documents": documents(20), "max_batch": 10}
            )
    assert summaries(result) == [f"summary of {doc}" for doc in documents(20)]
    assert host.model.calls == 2
    assert all(is_coalesced(params) for params in host.model.requests)
    seen = sorted(task for params in host.model.requests for task in tasks_of(params))
    assert seen == sorted(documents(20))


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# The example as its user starts it, with a timer that stops it after
# SERVE_FOR seconds should this test die without stopping it.
SELF_STOPPING = (
    "import os, runpy, signal, sys, threading\n"
    "timer = threading.Timer({seconds}, os.kill, (os.getpid(), signal.SIGTERM))\n"
    "timer.daemon = True\n"
    "timer.start()\n"
    "sys.argv = [{path!r}, *sys.argv[1:]]\n"
    "{run}\n"
)
AS_ITS_USER_RUNS_IT = "runpy.run_path({path!r}, run_name='__main__')"
# The example's server, stateless: each POST is answered on its own, with no
# channel for a tool's own requests even in the legacy protocol.
STATELESS = (
    "server = runpy.run_path({path!r})['build_server'](10.0)\n"
    "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
    "server.run('streamable-http', host='127.0.0.1', port=port, stateless_http=True)"
)


@contextmanager
def http_server(
    port: int, log: Path, run: str = AS_ITS_USER_RUNS_IT
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the example over HTTP on *port*, its output in *log*; stop it on exit."""
    path = str(SERVER)
    code = SELF_STOPPING.format(seconds=SERVE_FOR, path=path, run=run.format(path=path))
    argv = [sys.executable, "-W", "error", "-c", code, "--http", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*argv, "--window", "10"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": PYTHONPATH},
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    while True:
        assert process.poll() is None, log.read_text()
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            await anyio.sleep(0.05)
        else:
            await stream.aclose()
            return


async def test_the_same_server_over_streamable_http(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    host = CountingHost()
    with http_server(port, log) as process, anyio.fail_after(30):
        await wait_until_listening(port, process, log)
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url, sampling_callback=host, mode="legacy") as client:
            result = await client.call_tool(
                "summarise_all", {"documents": documents(20), "max_batch": 10}
            )
            assert summaries(result) == [f"summary of {doc}" for doc in documents(20)]
            assert host.model.calls == 2
            # A second call on the same connection coalesces on its own.
            result = await client.call_tool(
                "summarise_all", {"documents": documents(5), "max_batch": 5}
            )
    assert summaries(result) == [f"summary of {doc}" for doc in documents(5)]
    assert host.model.calls == 3
    assert all(is_coalesced(params) for params in host.model.requests)


async def test_without_a_back_channel_on_the_legacy_protocol_the_sdks_error_passes_unchanged(
    tmp_path: Path,
) -> None:
    # Legacy mode would not help here, so session_client adds no advice.
    port = free_port()
    log = tmp_path / "server.log"
    host = CountingHost()
    with http_server(port, log, run=STATELESS) as process, anyio.fail_after(30):
        await wait_until_listening(port, process, log)
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url, sampling_callback=host, mode="legacy") as client:
            result = await client.call_tool(
                "summarise_all", {"documents": documents(2), "max_batch": 2}
            )
    assert (
        summaries(result)
        == [
            "(no summary: BatchCallError: the coalesced call of 2 requests failed: "
            "NoBackChannelError: Cannot send 'sampling/createMessage': this transport context "
            "has no back-channel for server-initiated requests.)"
        ]
        * 2
    )
    assert host.model.calls == 0


def one_request_each_server() -> MCPServer:
    """A server whose tool sends one sampling request per document, at once, uncoalesced."""
    server = MCPServer("one-each")

    @server.tool()
    async def summarise_each(documents: list[str], ctx: Context) -> list[str]:
        client = session_client(ctx.session)
        results = await asyncio.gather(
            *(client.create_message(text_request(document)) for document in documents)
        )
        return [coalesce.result_text(result) for result in results]

    return server


# Full batches go at once, so a long window costs nothing; a part batch
# waits out its window, long enough for the requests of one tool call.
@pytest.mark.parametrize(
    ("tasks", "max_batch", "window"), [(20, 10, 10.0), (7, 7, 10.0), (25, 10, 1.0), (1, 10, 0.1)]
)
async def test_an_asyncio_host_whose_sampling_callback_is_a_coordinator(
    tasks: int, max_batch: int, window: float
) -> None:
    model = ScriptedClient(lambda text: f"summary of {text}")
    async with (
        open_coordinator(model, window=window, max_batch=max_batch) as coord,
        Client(
            one_request_each_server(), sampling_callback=sampling_callback(coord), mode="legacy"
        ) as client,
    ):
        result = await client.call_tool("summarise_each", {"documents": documents(tasks)})
        stats = coord.stats
    assert summaries(result) == [f"summary of {doc}" for doc in documents(tasks)]
    assert model.calls == math.ceil(tasks / max_batch)
    assert stats.requests == tasks
    assert stats.answered == tasks


async def summary_requests(documents: list[str]) -> list[CreateMessageRequestParams]:
    return [text_request(document) for document in documents]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sample_batch_on_asyncio_asks_once(mode: str) -> None:
    server = MCPServer("at-once")

    @server.tool()
    async def summarise_all_at_once(
        documents: list[str],
        answers: Annotated[BatchAnswers, sample_batch(summary_requests)],
    ) -> list[str]:
        return [
            str(answer) if isinstance(answer, coalesce.TaskError) else coalesce.result_text(answer)
            for answer in answers
        ]

    host = CountingHost()
    async with Client(server, sampling_callback=host, mode=mode) as client:
        result = await client.call_tool("summarise_all_at_once", {"documents": documents(8)})
    assert summaries(result) == [f"summary of {doc}" for doc in documents(8)]
    assert host.model.calls == 1


# An SDK's HTTP, answered at its transport by the fake API server's pure
# `respond` (the same replies it gives over a socket): no network at all.
@asynccontextmanager
async def mocked_sdk(api: str, fake: FakeLLMServer) -> AsyncIterator[coalesce.SamplingClient]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content)
        status, body = fake.respond(request.url.path, sent)
        if status == 200 and sent.get("stream"):  # coalesced calls stream through the adapters
            events = stream_of(request.url.path, sent, body)
            return httpx2.Response(200, text=events, headers={"content-type": "text/event-stream"})
        return httpx2.Response(status, json=body)

    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    if api == "openai":
        async with AsyncOpenAI(api_key="test-key", http_client=http_client) as openai_sdk:
            yield OpenAIClient(openai_sdk)
    else:
        async with AsyncAnthropic(api_key="test-key", http_client=http_client) as anthropic_sdk:
            yield AnthropicClient(anthropic_sdk)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_an_asyncio_program_on_an_sdk_makes_fewer_api_calls(api: str) -> None:
    fake = FakeLLMServer(port=0)
    questions = [f"Q{index}" for index in range(15)]
    async with (
        mocked_sdk(api, fake) as model,
        open_coordinator(model, window=10.0, max_batch=5) as coord,
    ):
        results = await asyncio.gather(
            *(coord.create_message(text_request(question)) for question in questions)
        )
        stats = coord.stats
    assert [coalesce.result_text(result) for result in results] == [
        f"You said: {question}" for question in questions
    ]
    assert len(fake.requests) == 3
    assert stats.model_calls == 3
    assert stats.input_tokens > 0
