"""The docs show code the test suite runs, and say where the whole of it is.

Every code sample on these pages is a ``literalinclude`` of a file the suite
runs: ``docs/examples/*.py`` (``tests/test_docs_examples.py`` runs the
programs, and the ``test_*.py`` files are collected as tests), the examples in
``examples/`` (``tests/mcp/test_stdio_and_examples.py``), and the fan-out in
``coalesce/_demo.py`` that the server-side example, the demo and
``tests/mcp/test_server_side.py`` share. This checks that every include names
a file and a function that exist, that the page names that file so a reader
can find the whole program, that the tutorial's parts add up to its whole
program, and that the testing how-to's tests pass when copied out of the
repository with only what the page shows.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [
    DOCS / "quickstart.rst",
    DOCS / "tutorial.rst",
    DOCS / "howto" / "server-side.rst",
    DOCS / "howto" / "client-side.rst",
    DOCS / "howto" / "asyncio.rst",
    DOCS / "howto" / "groups.rst",
    DOCS / "howto" / "testing.rst",
]
INCLUDE = re.compile(r"^\.\. literalinclude:: (\S+)\n((?:   :[\w-]+:.*\n)*)", re.MULTILINE)
OPTION = re.compile(r"^   :([\w-]+):(?: (.*))?$", re.MULTILINE)


def includes(page: Path) -> list[tuple[Path, dict[str, str]]]:
    """Return each ``literalinclude`` of *page*: the file and its options."""
    return [
        ((page.parent / target).resolve(), dict(OPTION.findall(options)))
        for target, options in INCLUDE.findall(page.read_text())
    ]


def included_text(path: Path, options: dict[str, str]) -> str:
    """Return what Sphinx shows of *path* with *options* (the options these pages use)."""
    lines = path.read_text().splitlines(keepends=True)
    if "pyobject" in options:
        [node] = [
            node
            for node in ast.parse(path.read_text()).body
            if getattr(node, "name", None) == options["pyobject"]
        ]
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        assert node.end_lineno is not None
        lines = lines[first - 1 : node.end_lineno]
    if "start-at" in options:
        start = next(i for i, line in enumerate(lines) if options["start-at"] in line)
        lines = lines[start:]
    if "start-after" in options:
        start = next(i for i, line in enumerate(lines) if options["start-after"] in line)
        lines = lines[start + 1 :]
    if "end-before" in options:
        end = next(i for i, line in enumerate(lines) if options["end-before"] in line)
        lines = lines[:end]
    return "".join(lines)


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_every_included_example_exists_and_the_page_names_its_file(page: Path) -> None:
    found = includes(page)
    assert found, f"{page.name} includes no example"
    text = page.read_text()
    for path, options in found:
        relative = path.relative_to(ROOT).as_posix()
        assert path.parent in {ROOT / "examples", DOCS / "examples"} or relative == (
            "coalesce/_demo.py"
        ), relative
        assert relative in text, f"{page.name} shows part of {relative} but never names it"
        defined = {
            node.name
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        if "pyobject" in options:
            assert options["pyobject"] in defined, f"{page.name}: {options} not in {relative}"
        assert included_text(path, options).strip(), f"{page.name}: {options} shows nothing"


def test_the_tutorial_shows_its_whole_program_in_order() -> None:
    page = DOCS / "tutorial.rst"
    parts = includes(page)
    [program] = {path for path, _ in parts}
    assert program == DOCS / "examples" / "tutorial.py"
    shown = "".join(included_text(path, options) for path, options in parts)
    assert shown == program.read_text()


def test_the_testing_howto_passes_copied_out_of_the_repository(tmp_path: Path) -> None:
    page = (DOCS / "howto" / "testing.rst").read_text()
    [config] = re.findall(r"^\.\. code-block:: toml\n\n((?:   .*\n|\n)+)", page, re.MULTILINE)
    (tmp_path / "pyproject.toml").write_text(
        "\n".join(line.removeprefix("   ") for line in config.splitlines())
    )
    [(test_file, options)] = includes(DOCS / "howto" / "testing.rst")
    assert options == {"language": "python"}  # the whole file, as the page says
    shutil.copy(test_file, tmp_path / test_file.name)
    # The worktree's coalesce, as if installed; nothing else of the repository.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^2 passed in ", result.stdout, re.MULTILINE), result.stdout
