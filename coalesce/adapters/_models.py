"""How an adapter picks the model name for a request: a fixed name, or a function of its hints.

Pure: no I/O and no SDK, so :mod:`coalesce.adapters` can export it without
importing one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
from mcp.types import ModelPreferences

__all__ = ["ModelByHint", "ModelChooser", "resolve_model"]

ModelChooser = Callable[[ModelPreferences | None], str]
"""A function from a request's ``model_preferences`` (``None`` if it has none) to a model name."""


def _family_pairs(families: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    pairs = tuple((family.lower(), model) for family, model in families.items())
    for family, model in pairs:
        if not family or not model:
            raise ValueError(
                f"a model family and its model must both be non-empty, got {family!r}: {model!r}"
            )
    return pairs


@attrs.frozen
class ModelByHint:
    """Choose a model by the family a request's hints name, else a default.

    The request's hints are tried in order (MCP says the first match wins).
    A hint matches the first family, in *families*' order, whose name occurs
    in the hint's name, ignoring case: with ``{"haiku": "claude-haiku-5-5"}``,
    the hints ``haiku``, ``claude-haiku`` and ``claude-3-haiku-20240307`` all
    pick ``claude-haiku-5-5``. A hint that names no known family, a request
    without hints, and the cost, speed and intelligence priorities are all
    ignored: the answer is then *default*. So a server's hints can pick among
    the models you listed, and never reach a model you did not list.

    List a more specific family before a more general one it contains
    (``"gpt-mini"`` before ``"gpt"``), since the first match wins.

    Example::

        >>> from mcp.types import ModelHint, ModelPreferences
        >>> choose = ModelByHint({"haiku": "claude-haiku-5-5"}, default="claude-sonnet-5-5")
        >>> choose(ModelPreferences(hints=[ModelHint(name="claude-3-haiku")]))
        'claude-haiku-5-5'
        >>> choose(ModelPreferences(hints=[ModelHint(name="gpt-4o")]))
        'claude-sonnet-5-5'
        >>> choose(None)
        'claude-sonnet-5-5'
    """

    families: tuple[tuple[str, str], ...] = attrs.field(converter=_family_pairs)
    """``(family, model)`` pairs in matching order; given as a mapping, family names lowercased."""
    default: str
    """The model for a request whose hints name no known family, or that has none."""

    def __call__(self, preferences: ModelPreferences | None) -> str:
        """Return the model for a request with these *preferences*."""
        hints = preferences.hints if preferences is not None else None
        for hint in hints or ():
            name = (hint.name or "").lower()
            for family, model in self.families:
                if family in name:
                    return model
        return self.default


def resolve_model(model: str | ModelChooser, preferences: ModelPreferences | None) -> str:
    """Return the model name for a request: *model* itself, or what it chooses."""
    if isinstance(model, str):
        return model
    return model(preferences)
