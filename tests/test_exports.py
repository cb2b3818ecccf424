"""The public surface is what was meant: ``coalesce.__all__`` and nothing private in it."""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
import subprocess
import sys
import warnings

import pytest

import coalesce
import coalesce.mcp

EXPECTED = {
    "BatchAnswers",
    "BatchCallError",
    "CoalesceError",
    "Coordinator",
    "CoordinatorClosed",
    "CoordinatorStats",
    "SamplingClient",
    "TaskError",
    "USAGE_META_KEY",
    "__version__",
    "build_batch_request",
    "demux_reply",
    "open_coordinator",
    "result_text",
    "sample_batch",
    "sampling_callback",
    "session_client",
    "text_request",
    "usage_meta",
}

EXPECTED_MCP = {
    "BatchAnswers",
    "GroupFn",
    "fastmcp_sampling_handler",
    "sample_batch",
    "sampling_callback",
    "session_client",
}

# Public in 0.1, no longer: each still works from `coalesce`, with a warning.
DEPRECATED = {
    "GroupFn": "coalesce.mcp",
    "FlushReason": "coalesce._policy",
    "is_batchable": "coalesce._prompt",
    "CoordinatorOptions": "coalesce._policy",
}

# The MCP integration's everyday names: importable from `coalesce` without a warning.
FROM_MCP = {"BatchAnswers", "sample_batch", "sampling_callback", "session_client"}


def test_the_public_surface_is_what_was_meant() -> None:
    assert set(coalesce.__all__) == EXPECTED
    assert len(coalesce.__all__) == len(set(coalesce.__all__))
    for name in coalesce.__all__:
        assert hasattr(coalesce, name), name


def test_the_mcp_module_holds_the_mcp_integration() -> None:
    assert set(coalesce.mcp.__all__) == EXPECTED_MCP
    for name in coalesce.mcp.__all__:
        assert hasattr(coalesce.mcp, name), name


def test_nothing_else_public_is_exported_by_accident() -> None:
    public = {name for name in vars(coalesce) if not name.startswith("_")}
    # Subpackages show up once something imported them; they are public doors too.
    assert public - EXPECTED <= {"testing", "adapters", "mcp"}
    mcp_public = {name for name in vars(coalesce.mcp) if not name.startswith("_")}
    assert mcp_public == EXPECTED_MCP


def test_the_everyday_mcp_names_work_from_coalesce_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in FROM_MCP:
            assert getattr(coalesce, name) is getattr(coalesce.mcp, name)
        from coalesce import sample_batch, sampling_callback, session_client

    assert session_client is coalesce.mcp.session_client
    assert sampling_callback is coalesce.mcp.sampling_callback
    assert sample_batch is coalesce.mcp.sample_batch


@pytest.mark.parametrize(("name", "home"), sorted(DEPRECATED.items()))
def test_a_name_that_left_the_surface_still_works_with_a_warning(name: str, home: str) -> None:
    expected = getattr(importlib.import_module(home), name)
    message = (
        rf"^coalesce\.{name} "
        r"(moved: import it from coalesce\.mcp|is deprecated and will be removed: .+)$"
    )
    with pytest.warns(DeprecationWarning, match=message) as caught:
        assert getattr(coalesce, name) is expected
    # The warning points at the code that looked the name up, not at coalesce.
    assert caught[0].filename == __file__
    assert name not in coalesce.__all__


def test_a_deprecated_name_warns_on_from_import_too() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"^coalesce\.GroupFn moved: import it from coalesce\.mcp$"
    ):
        from coalesce import GroupFn
    assert GroupFn is coalesce.mcp.GroupFn


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"^module 'coalesce' has no attribute 'nope'$"):
        _ = coalesce.nope


def test_dir_lists_the_public_names() -> None:
    assert set(coalesce.__all__) <= set(dir(coalesce))


@pytest.mark.parametrize(
    "name", sorted(name for name in coalesce.__all__ if inspect.isclass(getattr(coalesce, name)))
)
def test_public_classes_report_coalesce_as_their_module(name: str) -> None:
    cls = getattr(coalesce, name)
    assert cls.__module__ == "coalesce"
    assert cls.__qualname__ == name


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name in coalesce.__all__
        if inspect.isfunction(getattr(coalesce, name)) and name not in FROM_MCP
    ),
)
def test_public_functions_report_coalesce_as_their_module(name: str) -> None:
    assert getattr(coalesce, name).__module__ == "coalesce"


@pytest.mark.parametrize(
    "name", ["fastmcp_sampling_handler", "sample_batch", "sampling_callback", "session_client"]
)
def test_the_mcp_functions_report_coalesce_mcp_as_their_module(name: str) -> None:
    assert getattr(coalesce.mcp, name).__module__ == "coalesce.mcp"


def test_errors_pickle_through_their_public_name() -> None:
    error = coalesce.TaskError(3, "missing", "[]")
    assert pickle.loads(pickle.dumps(error)) == error
    assert re.fullmatch(r"<class 'coalesce\.TaskError'>", repr(type(error)))


def test_errors_share_one_root_and_the_builtins_callers_catch() -> None:
    assert issubclass(coalesce.TaskError, coalesce.CoalesceError)
    assert issubclass(coalesce.TaskError, ValueError)
    assert issubclass(coalesce.BatchCallError, RuntimeError)
    assert issubclass(coalesce.CoordinatorClosed, RuntimeError)


def test_the_coordinator_is_a_sampling_client() -> None:
    assert hasattr(coalesce.Coordinator, "create_message")
    assert issubclass(coalesce.Coordinator, coalesce.SamplingClient)


# What `import coalesce` must not load: the MCP SDK's server and its HTTP
# transport stack, and the CLI and crypto libraries they bring.
HEAVY = ("uvicorn", "starlette", "sse_starlette", "cryptography", "click", "mcp.server")


def loaded_by(code: str) -> set[str]:
    """Return the modules a fresh interpreter has loaded after running *code*."""
    result = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(result.stdout.split())


def test_import_coalesce_loads_no_server_or_transport_stack() -> None:
    modules = loaded_by("import coalesce")
    heavy = sorted(
        name for name in modules if any(name == h or name.startswith(h + ".") for h in HEAVY)
    )
    assert heavy == []
    # Nor any model SDK or OpenTelemetry (the `otel` extra).
    assert not {"anthropic", "openai", "opentelemetry"} & {name.split(".")[0] for name in modules}


def test_the_mcp_integration_loads_the_sdk_on_first_use() -> None:
    modules = loaded_by("import coalesce; coalesce.session_client")
    assert {"coalesce.mcp", "mcp.server"} <= modules


def test_the_fastmcp_handler_never_imports_fastmcp() -> None:
    modules = loaded_by("import coalesce.mcp; coalesce.mcp.fastmcp_sampling_handler")
    assert "coalesce._fastmcp" in modules
    assert "fastmcp" not in {name.split(".")[0] for name in modules}
