"""Coalesce concurrent LLM sampling requests into one call.

Many tasks each ask a model something (MCP ``sampling/createMessage``); a
coordinator gathers what arrives within a short window, sends one request that
lists every task as JSON, and hands each caller its own answer or its own
error. See https://coalesce.readthedocs.io (or ``docs/``) for the guide.

This module is the library's only public door: everything it does not export
is internal.
"""

from ._client import SamplingClient as SamplingClient
from ._coordinator import Coordinator as Coordinator
from ._coordinator import open_coordinator as open_coordinator
from ._demux import demux_reply as demux_reply
from ._errors import BatchCallError as BatchCallError
from ._errors import CoalesceError as CoalesceError
from ._errors import CoordinatorClosed as CoordinatorClosed
from ._errors import TaskError as TaskError
from ._mcp_client import GroupFn as GroupFn
from ._mcp_client import sampling_callback as sampling_callback
from ._mcp_server import BatchAnswers as BatchAnswers
from ._mcp_server import sample_batch as sample_batch
from ._mcp_server import session_client as session_client
from ._policy import CoordinatorOptions as CoordinatorOptions
from ._policy import FlushReason as FlushReason
from ._prompt import build_batch_request as build_batch_request
from ._prompt import is_batchable as is_batchable
from ._stats import CoordinatorStats as CoordinatorStats
from ._usage import USAGE_META_KEY as USAGE_META_KEY
from ._usage import usage_meta as usage_meta

__version__ = "0.1.0.dev0"

__all__ = [
    "USAGE_META_KEY",
    "BatchAnswers",
    "BatchCallError",
    "CoalesceError",
    "Coordinator",
    "CoordinatorClosed",
    "CoordinatorOptions",
    "CoordinatorStats",
    "FlushReason",
    "GroupFn",
    "SamplingClient",
    "TaskError",
    "__version__",
    "build_batch_request",
    "demux_reply",
    "is_batchable",
    "open_coordinator",
    "sample_batch",
    "sampling_callback",
    "session_client",
    "usage_meta",
]
