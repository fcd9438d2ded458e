"""Per-API knowledge of the sidecar, one provider per cached route."""

from __future__ import annotations

from .anthropic import AnthropicMessages
from .base import Provider
from .openai_chat import OpenAIChat
from .openai_embeddings import OpenAIEmbeddings
from .openai_responses import OpenAIResponses

PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (AnthropicMessages(), OpenAIChat(), OpenAIResponses(), OpenAIEmbeddings())
}

__all__ = ["PROVIDERS", "Provider"]
