"""Every example script in ``docs/examples`` runs and does what the docs say it prints.

A program runs on the event loop its ``__main__`` block starts: trio ones in
virtual time (``MockClock``), asyncio ones (``asyncio.run(main())``) in real
time, with windows short enough not to matter.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path

import pytest
import trio
import trio.testing

EXAMPLES = sorted(
    path
    for path in (Path(__file__).parent.parent / "docs" / "examples").glob("*.py")
    if not path.name.startswith("test_")
)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if "asyncio.run(main())" in path.read_text():
        asyncio.run(module.main())
    else:
        trio.run(module.main, clock=trio.testing.MockClock(autojump_threshold=0))
    expected = EXPECTED_OUTPUT.get(path.stem)
    if expected is not None:
        assert capsys.readouterr().out == expected


EXPECTED_OUTPUT = {
    "quickstart": "20 tasks answered with 2 model calls\ntask 7 got 'TASK 7'\n",
    "tutorial": "20 summaries from 2 sampling requests\nIn short: document 7.\n",
    "asyncio_gather": "20 tasks answered with 2 model calls\ntask 7 got 'TASK 7'\n",
    "asyncio_host": "30 sampling requests, 3 model calls\nquestion 7: 'answer to question 7'\n",
    "fastmcp_both_sides": (
        "server side: 20 summaries, 2 model calls\n"
        "client side: 20 summaries, 2 model calls\n"
        "document 7: 'summary of document 7'\n"
    ),
}


def test_every_example_says_what_it_prints() -> None:
    assert {path.stem for path in EXAMPLES} <= set(EXPECTED_OUTPUT)


def test_there_are_examples() -> None:
    assert EXAMPLES


def test_the_readme_shows_the_quickstart_program_whole() -> None:
    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    assert blocks == [(root / "docs" / "examples" / "quickstart.py").read_text()]
    assert "docs/examples/quickstart.py" in readme
    assert "pip install coalesce-llm" in readme
