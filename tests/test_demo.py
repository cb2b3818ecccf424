"""``python -m coalesce demo``: the README's first command.

The demo runs in real time; these tests shrink its model's latency and check
the table's counts, never its times.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from coalesce.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def table_rows(stdout: str) -> dict[str, tuple[int, int]]:
    """Map each table row's label to its (tasks, model calls)."""
    rows = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"(with(?:out)? coalescing)\s+(\d+)\s+(\d+)\s+\d+\.\d\d s", line)
        if match:
            rows[match[1]] = (int(match[2]), int(match[3]))
    return rows


async def test_the_demo_command_prints_the_table() -> None:
    result = await trio.run_process(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "coalesce",
            "demo",
            "--tasks",
            "7",
            "--max-batch",
            "3",
            "--window",
            "0.05",
            "--latency",
            "0.01",
            "--latency-per-task",
            "0.001",
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stdout = result.stdout.decode()
    assert result.returncode == 0, (stdout, result.stderr.decode())
    assert table_rows(stdout) == {"without coalescing": (7, 7), "with coalescing": (7, 3)}
    assert "[" + "#" * 30 + "] 7/7" in stdout
    assert re.search(r"^\s+tasks\s+model calls\s+wall time$", stdout, re.MULTILINE)


@pytest.mark.parametrize("slots", ["0", "1"])
def test_the_demo_counts_model_calls_whatever_the_models_slots(
    capsys: pytest.CaptureFixture[str], slots: str
) -> None:
    status = main(
        [
            "demo",
            "--tasks",
            "4",
            "--max-batch",
            "4",
            "--model-slots",
            slots,
            "--latency",
            "0",
            "--latency-per-task",
            "0",
        ]
    )
    assert status == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows == {"without coalescing": (4, 4), "with coalescing": (4, 1)}


def test_demo_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--tasks", "--window", "--max-batch", "--model-slots", "--latency"):
        assert option in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_the_demo_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--tasks", "0"])
    assert "must be at least 1, got 0" in capsys.readouterr().err


def test_the_demo_shows_a_few_tasks_beside_their_own_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--tasks", "5", "--latency", "0", "--latency-per-task", "0"]) == 0
    out = capsys.readouterr().out
    answers = out[out.index("Each task gets its own answer") :].splitlines()
    assert answers == [
        "Each task gets its own answer (with coalescing), for example:",
        "  document 0  ->  summary of document 0",
        "  document 2  ->  summary of document 2",
        "  document 4  ->  summary of document 4",
    ]


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_the_demo_runs_on_the_backend_it_is_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # Record the event loop the demo's tool runs on: the one --backend names.
    import sniffio

    from coalesce import _demo

    loops: list[str] = []
    summarise = _demo.summarise_documents

    async def recording(*args: Any, **kwargs: Any) -> list[str]:
        loops.append(sniffio.current_async_library())
        return await summarise(*args, **kwargs)

    monkeypatch.setattr(_demo, "summarise_documents", recording)
    argv = ["demo", "--tasks", "3", "--max-batch", "3", "--latency", "0", "--latency-per-task", "0"]
    assert main([*argv, "--backend", backend]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows == {"without coalescing": (3, 3), "with coalescing": (3, 1)}
    assert loops == [backend, backend]


def test_the_demo_offers_trio_and_asyncio() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).backend == "trio"
    assert parser.parse_args(["demo", "--backend", "asyncio"]).backend == "asyncio"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--backend", "curio"])
