"""Model adapters: a :class:`~coalesce.SamplingClient` in front of a real LLM SDK.

Each adapter lives in its own module and imports its SDK only when that
module is imported, so ``import coalesce`` and ``import coalesce.adapters``
work without any SDK installed:

- :class:`coalesce.adapters.anthropic.AnthropicClient` wraps
  ``anthropic.AsyncAnthropic`` (install ``coalesce-llm[anthropic]``);
- :class:`coalesce.adapters.openai.OpenAIClient` wraps
  ``openai.AsyncOpenAI`` (install ``coalesce-llm[openai]``).

This package itself holds only what the adapters share and a user may name:
how a model is chosen for a request.
"""

from ._models import ModelByHint as ModelByHint
from ._models import ModelChooser as ModelChooser

__all__ = ["ModelByHint", "ModelChooser"]
