"""Test configuration: hypothesis settings profiles, chosen by ``HYPOTHESIS_PROFILE``.

``dev`` (the default) keeps the suite fast on a 2-core machine, ``ci`` runs a
little more and derandomised, ``fuzz`` runs many examples for ``nox -s fuzz``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile(
    "fuzz",
    # ``nox -s fuzz`` sets the count from its time budget.
    max_examples=int(os.environ.get("COALESCE_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend, trio first."""
    backend: str = request.param
    return backend


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave tests marked ``anyio`` to anyio's plugin, which runs them on both backends.

    ``trio_mode`` (pytest-trio) marks every async test as a trio test; a test
    that runs once per backend must not also be run by pytest-trio.
    """
    for item in items:
        if item.get_closest_marker("anyio") is not None:
            item.own_markers[:] = [mark for mark in item.own_markers if mark.name != "trio"]
