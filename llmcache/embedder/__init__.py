"""Text embeddings for the semantic cache: a local model or any OpenAI-compatible
``/v1/embeddings`` endpoint, both batched and exact-cached behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # no numpy at import: ``threads`` must run before numpy loads
    import numpy as np


class Embedder(Protocol):
    model: str

    async def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text; raises ``EmbedderError`` on failure."""

    async def close(self) -> None: ...


class EmbedderError(RuntimeError):
    """The embedding backend failed (timeout, HTTP error, malformed answer)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
