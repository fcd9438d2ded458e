"""A faithful local server of the Anthropic and OpenAI HTTP APIs' wire formats.

The paid APIs cannot be reached from tests, demos or benchmarks, so this answers in their
exact formats (plain and streamed), deterministically from each request's content, with a
latency model, provider-side prompt-cache accounting and fault injection by header.
"""

from .app import create_app
from .runtime import SimOptions

__all__ = ["SimOptions", "create_app"]
