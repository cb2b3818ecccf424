"""The MCP how-to pages show code the test suite runs.

Their examples are ``literalinclude`` s of ``examples/server_side.py`` and
``examples/client_side.py``, which ``tests/mcp/test_stdio_and_examples.py``
runs, and of the fan-out in ``coalesce/_demo.py`` that the server-side example,
the demo and ``tests/mcp/test_server_side.py`` share; this checks that every
include names a file and a function that exist, so a page cannot quietly show
code that is no longer there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "docs" / "howto" / "server-side.rst", ROOT / "docs" / "howto" / "client-side.rst"]
INCLUDE = re.compile(r"^\.\. literalinclude:: (\S+)\n(?:   :pyobject: (\S+)\n)?", re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_every_included_example_exists(page: Path) -> None:
    includes = INCLUDE.findall(page.read_text())
    assert includes, f"{page.name} includes no example"
    for target, name in includes:
        path = (page.parent / target).resolve()
        assert path.parent == ROOT / "examples" or path == ROOT / "coalesce" / "_demo.py", target
        tree = ast.parse(path.read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        if name:
            assert name in defined, f"{page.name} includes {name!r}, not in {path.name}"
