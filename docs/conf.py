"""Sphinx configuration for coalesce's documentation."""

from __future__ import annotations

import coalesce

project = "coalesce"
author = "The coalesce developers"
copyright = "2026, The coalesce developers"
release = coalesce.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

html_theme = "furo"
html_title = "coalesce"
html_static_path = ["_static"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types for the documented parameters only, and no "Return type: None" (which
# every class, exceptions included, would get from its __init__).
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
# Defaults as their values (``window=5.0``), not as source text: the __init__
# that attrs generates would otherwise show ``attr_dict['window'].default``.
autodoc_preserve_defaults = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

exclude_patterns = ["_build"]

# Built with -n: every reference must resolve. References into libraries whose
# inventories we cannot fetch here (no network at build time) are listed.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(mcp|mcp_types|trio|outcome|attrs|cattrs|pydantic|anthropic|openai|httpx2?)(\..*)?",
    ),
    (
        r"py:.*",
        r"(CreateMessageRequestParams|CreateMessageResult|SamplingMessage|ModelPreferences)",
    ),
    (r"py:.*", r"(Hashable|AsyncIterator|Callable|Sequence|Awaitable|Iterable|Mapping|Any)"),
    (r"py:.*", r"collections\.abc\..*|typing\..*|contextlib\..*"),
    (r"py:class", r"(Nursery|Task|ErrorData|RequestContext|Context|ServerSession)"),
    (r"py:class", r"(AsyncAnthropic|AsyncOpenAI|ModelChooser)"),
    # No longer public (see "Names that left the top level" in api.rst), but
    # still the type of Coordinator.options, and named in build_batch_request's
    # docstring.
    (r"py:class", r"coalesce\._policy\.CoordinatorOptions"),
    (r"py:func", r"is_batchable"),
]
