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
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
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
]
