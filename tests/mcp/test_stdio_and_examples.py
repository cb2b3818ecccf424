"""Over a real stdio subprocess, and the examples as a user runs them.

These run in real time (subprocesses do real I/O), so they check counts and
answers, never durations. Windows are long and task counts are multiples of
``max_batch``: full batches go at once, so no count depends on timing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from coalesce import open_coordinator, sampling_callback
from coalesce.testing import ScriptedClient, is_coalesced, tasks_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def environment() -> dict[str, str]:
    """The test's environment, with the worktree importable."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


async def run_script(*args: str) -> str:
    result = await trio.run_process(
        [sys.executable, "-W", "error", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=environment(),
    )
    stdout = result.stdout.decode()
    assert result.returncode == 0, (stdout, result.stderr.decode())
    return stdout


async def test_both_sides_coalesce_over_stdio() -> None:
    # The example's server, as a subprocess; this process is a host that
    # coalesces too. The server's batches reach the model unnested.
    env = {"PYTHONPATH": environment()["PYTHONPATH"]}
    command = StdioServerParameters(
        command=sys.executable, args=[str(EXAMPLES / "server_side.py"), "serve"], env=env
    )
    model = ScriptedClient(lambda text: f"summary of {text}")
    documents = [f"document {index}" for index in range(20)]
    async with (
        open_coordinator(model, window=10.0, max_batch=10) as coord,
        Client(command, sampling_callback=sampling_callback(coord), mode="legacy") as client,
    ):
        result = await client.call_tool("summarise_all", {"documents": documents, "max_batch": 10})
        assert not result.is_error, result.content
        assert result.structured_content == {
            "result": [f"summary of {document}" for document in documents]
        }
        assert model.calls == 2
        assert all(is_coalesced(params) for params in model.requests)
        assert sorted(task for params in model.requests for task in tasks_of(params)) == sorted(
            documents
        )

        model.fail_next(ConnectionError("no route to host"), times=2)
        result = await client.call_tool("summarise_all", {"documents": documents, "max_batch": 10})
    assert result.structured_content is not None
    assert (
        result.structured_content["result"]
        == [
            "(no summary: BatchCallError: the coalesced call of 10 requests failed: "
            "MCPError: the host's model call failed (ConnectionError))"
        ]
        * 20
    )
    assert model.calls == 4


async def test_the_server_side_example() -> None:
    stdout = await run_script(str(EXAMPLES / "server_side.py"), "--tasks", "20")
    assert stdout.splitlines() == [
        "summarise_all: 20 tasks, 2 sampling requests (expected 2), "
        "every task its own answer: True",
        "summarise_all_at_once: 20 tasks, 1 sampling requests (expected 1), "
        "every task its own answer: True",
    ]


async def test_the_client_side_example() -> None:
    for mode, version in [("legacy", "2025-11-25"), ("current", "2026-07-28")]:
        stdout = await run_script(
            str(EXAMPLES / "client_side.py"), "--tasks", "20", "--window", "10", "--mode", mode
        )
        assert stdout.splitlines() == [
            f"{mode} ({version}): 20 sampling requests, 2 model calls (expected 2), "
            "every request its own answer: True"
        ]


def test_the_host_with_model_example_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    import host_with_model

    with pytest.raises(SystemExit) as exit_info:
        host_with_model.parse_args(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: ")
    assert "[{anthropic,openai}]" in usage
    assert "ANTHROPIC_API_KEY" in usage
    assert "OPENAI_API_KEY" in usage
    assert host_with_model.parse_args([]).api == "anthropic"
    assert host_with_model.parse_args(["openai"]).api == "openai"


async def test_the_host_with_model_example_answers_offline() -> None:
    # Without an API key it starts the local fake API server; the adapters'
    # own tests cover both SDKs, so one run of the whole program is enough.
    env = environment()
    env.pop("ANTHROPIC_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(EXAMPLES)])
    result = await trio.run_process(
        [sys.executable, "-W", "error", str(EXAMPLES / "host_with_model.py")],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )
    stdout = result.stdout.decode()
    assert result.returncode == 0, (stdout, result.stderr.decode())
    assert stdout.splitlines()[-1].startswith("4 sampling requests, 1 model call(s), ")
