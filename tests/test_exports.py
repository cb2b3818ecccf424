"""The public surface is what was meant: ``coalesce.__all__`` and nothing private in it."""

from __future__ import annotations

import coalesce

EXPECTED = {
    "BatchAnswers",
    "GroupFn",
    "sample_batch",
    "sampling_callback",
    "session_client",
    "BatchCallError",
    "CoalesceError",
    "Coordinator",
    "CoordinatorClosed",
    "CoordinatorOptions",
    "CoordinatorStats",
    "FlushReason",
    "SamplingClient",
    "TaskError",
    "USAGE_META_KEY",
    "__version__",
    "build_batch_request",
    "demux_reply",
    "is_batchable",
    "open_coordinator",
    "usage_meta",
}


def test_the_public_surface_is_what_was_meant() -> None:
    assert set(coalesce.__all__) == EXPECTED
    assert len(coalesce.__all__) == len(set(coalesce.__all__))
    for name in coalesce.__all__:
        assert hasattr(coalesce, name), name


def test_nothing_else_public_is_exported_by_accident() -> None:
    public = {name for name in vars(coalesce) if not name.startswith("_")}
    # Subpackages show up once something imported them; they are public doors too.
    assert public - EXPECTED <= {"testing", "adapters"}


def test_errors_share_one_root_and_the_builtins_callers_catch() -> None:
    assert issubclass(coalesce.TaskError, coalesce.CoalesceError)
    assert issubclass(coalesce.TaskError, ValueError)
    assert issubclass(coalesce.BatchCallError, RuntimeError)
    assert issubclass(coalesce.CoordinatorClosed, RuntimeError)


def test_the_coordinator_is_a_sampling_client() -> None:
    assert hasattr(coalesce.Coordinator, "create_message")
    assert issubclass(coalesce.Coordinator, coalesce.SamplingClient)
