"""Importing coalesce, or its adapters package, never imports an LLM SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

SDKS = ("anthropic", "openai")


@pytest.mark.parametrize("module", ["coalesce", "coalesce.adapters"])
def test_importing_imports_no_sdk(module: str) -> None:
    # A fresh interpreter: this one has imported the SDKs for other tests.
    code = f"import sys, {module}; print(sorted(set({SDKS!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("sdk", SDKS)
def test_each_adapter_imports_only_its_own_sdk(sdk: str) -> None:
    other = next(name for name in SDKS if name != sdk)
    code = (
        f"import sys, coalesce.adapters.{sdk}; "
        f"print({sdk!r} in sys.modules, {other!r} in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout == "True False\n"
