"""An OpenAI-compatible ``/v1/embeddings`` client (OpenAI, vLLM, TEI, Ollama, Voyage-style
gateways, or the shared ``llmcache embedder``), batched and exact-cached."""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np

from . import EmbedderError
from .batching import Batcher, Observer


class HttpEmbedder:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout_ms: int = 250,
        window_ms: float = 2.0,
        max_batch: int = 64,
        cache_size: int = 10_000,
        observe: Observer | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = (
            base
            if base.endswith("/embeddings")
            else (base + ("/embeddings" if base.endswith("/v1") else "/v1/embeddings"))
        )
        self.model = model
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
        self._session: aiohttp.ClientSession | None = None
        self.batcher = Batcher(self._run, window_ms / 1000, max_batch, cache_size, observe)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self.batcher.embed(texts)

    async def _run(self, texts: list[str]) -> np.ndarray:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = {"model": self.model, "input": texts, "encoding_format": "float"}
        try:
            async with self._session.post(
                self.endpoint, json=payload, headers=self._headers
            ) as resp:
                if resp.status != 200:
                    raise EmbedderError("http_" + str(resp.status), await resp.text())
                doc: Any = await resp.json(content_type=None)
        except TimeoutError as exc:
            raise EmbedderError("timeout", "embeddings request timed out") from exc
        except aiohttp.ClientError as exc:
            raise EmbedderError("unreachable", str(exc)) from exc
        try:
            items = sorted(doc["data"], key=lambda d: d["index"])
            rows = np.asarray([d["embedding"] for d in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError("malformed", f"unexpected embeddings answer: {exc}") from exc
        if rows.ndim != 2 or rows.shape[0] != len(texts):
            raise EmbedderError("malformed", "wrong number of embeddings")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)

    async def close(self) -> None:
        await self.batcher.close()
        if self._session is not None:
            await self._session.close()
