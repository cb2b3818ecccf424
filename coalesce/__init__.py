"""Coalesce concurrent LLM sampling requests into one call.

Many tasks each ask a model something (MCP ``sampling/createMessage``); a
coordinator gathers what arrives within a short window, sends one request that
lists every task as JSON, and hands each caller its own answer or its own
error. See https://coalesce.readthedocs.io (or ``docs/``) for the guide.

This module is the library's public door, with :mod:`coalesce.mcp` for the MCP
server and client integration, :mod:`coalesce.testing` for fakes and
:mod:`coalesce.adapters` for model SDKs: everything else is internal.
Importing it loads neither the MCP SDK's server and transport stack nor any
model SDK; the MCP integration loads on first use.
"""

import importlib as _importlib
import warnings as _warnings
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import _usage
from ._client import SamplingClient as SamplingClient
from ._coordinator import Coordinator as Coordinator
from ._coordinator import open_coordinator as open_coordinator
from ._demux import demux_reply as demux_reply
from ._errors import BatchCallError as BatchCallError
from ._errors import CoalesceError as CoalesceError
from ._errors import CoordinatorClosed as CoordinatorClosed
from ._errors import TaskError as TaskError
from ._prompt import build_batch_request as build_batch_request
from ._public import fixup_module_metadata as _fixup_module_metadata
from ._stats import CoordinatorStats as CoordinatorStats
from ._text import result_text as result_text
from ._text import text_request as text_request
from ._usage import usage_meta as usage_meta

if _TYPE_CHECKING:
    from .mcp import BatchAnswers as BatchAnswers
    from .mcp import sample_batch as sample_batch
    from .mcp import sampling_callback as sampling_callback
    from .mcp import session_client as session_client

__version__ = "0.1.0.dev0"

USAGE_META_KEY = _usage.USAGE_META_KEY
"""The ``_meta`` key under which a result reports its model call's token usage."""

__all__ = [
    "USAGE_META_KEY",
    "BatchAnswers",
    "BatchCallError",
    "CoalesceError",
    "Coordinator",
    "CoordinatorClosed",
    "CoordinatorStats",
    "SamplingClient",
    "TaskError",
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
]

# The MCP integration's everyday names, also at the top level without a
# warning; their home is coalesce.mcp, which loads the MCP SDK's server and
# client code, so it is imported only when one of them is first used.
_FROM_MCP = frozenset({"BatchAnswers", "sample_batch", "sampling_callback", "session_client"})

# Names that were public in 0.1 and are no longer, with where they went.
# They keep working, with a DeprecationWarning each time they are looked up.
_DEPRECATED: dict[str, tuple[str, str]] = {
    "GroupFn": ("coalesce.mcp", "coalesce.GroupFn moved: import it from coalesce.mcp"),
    "FlushReason": (
        "coalesce._policy",
        "coalesce.FlushReason is deprecated and will be removed: why a batch was sent "
        "is internal to the coordinator (the 'coalesce' logger's flush records say it)",
    ),
    "is_batchable": (
        "coalesce._prompt",
        "coalesce.is_batchable is deprecated and will be removed: the coordinator decides "
        "which requests can share a call, and coalesce.build_batch_request raises "
        "ValueError for one that cannot",
    ),
    "CoordinatorOptions": (
        "coalesce._policy",
        "coalesce.CoordinatorOptions is deprecated and will be removed: pass the options "
        "to coalesce.open_coordinator as keyword arguments (Coordinator.options reads them)",
    ),
}


def __getattr__(name: str) -> _Any:
    if name in _FROM_MCP:
        value = getattr(_importlib.import_module("coalesce.mcp"), name)
        globals()[name] = value
        return value
    if name in _DEPRECATED:
        module, message = _DEPRECATED[name]
        _warnings.warn(message, DeprecationWarning, stacklevel=2)
        return getattr(_importlib.import_module(module), name)
    raise AttributeError(f"module 'coalesce' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_fixup_module_metadata(__name__, globals(), __all__)
