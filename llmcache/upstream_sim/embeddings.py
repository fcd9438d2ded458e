"""OpenAI Embeddings: ``POST /v1/embeddings``.

Vectors are deterministic unit vectors built by feature hashing of the input's words and
word pairs, so equal texts give equal vectors and texts sharing words are closer than
unrelated ones (a lexical stand-in for a real model's semantics). ``dimensions`` shortens
the native vector and renormalises it, as the text-embedding-3 models do.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from typing import Any

import numpy as np
from aiohttp import web

from .errors import ApiError, request_id
from .runtime import SimState
from .text import dumps, estimate_tokens

NATIVE_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_DIMS = 256
_FIXED_DIMS = frozenset({"text-embedding-ada-002"})
_WORD = re.compile(r"\w+")
_MAX_INPUTS = 2048
#: Tokens one input may have; longer → 400, as the real API answers.
MAX_INPUT_TOKENS = {"text-embedding-ada-002": 8191}
DEFAULT_MAX_INPUT_TOKENS = 8192


def embed(text: str, dims: int) -> np.ndarray:
    """A unit vector of ``dims`` float32 for ``text``."""
    vec = np.zeros(dims, dtype=np.float64)
    words = _WORD.findall(text.lower())
    features = [(w, 1.0) for w in words] + [(f"{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    for feature, weight in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=32).digest()
        for k in range(0, 32, 4):
            index = int.from_bytes(digest[k : k + 3], "little") % dims
            vec[index] += weight if digest[k + 3] & 1 else -weight
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    noise = np.random.default_rng(seed).standard_normal(dims)
    norm = float(np.linalg.norm(vec))
    vec = vec / norm + 0.15 * noise / float(np.linalg.norm(noise)) if norm else noise
    return (vec / float(np.linalg.norm(vec))).astype(np.float32)


def _inputs(value: Any) -> list[str]:
    """Texts of the request (token arrays are embedded via their token ids)."""
    if isinstance(value, str):
        texts: list[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(t, int) for t in value):
        texts = [value]
    elif isinstance(value, list):
        texts = value
    else:
        raise ApiError(400, "'input' is a required property", param="input", code="")
    if not texts or len(texts) > _MAX_INPUTS:
        raise ApiError(
            400,
            f"'$.input' is invalid. Expected 1 to {_MAX_INPUTS} inputs.",
            param="input",
            code="",
        )
    out: list[str] = []
    for t in texts:
        if isinstance(t, str) and t:
            out.append(t)
        elif (
            isinstance(t, list)
            and t
            and all(isinstance(i, int) and not isinstance(i, bool) for i in t)
        ):
            out.append(" ".join(f"tok{i}" for i in t))
        else:
            raise ApiError(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                param="input",
                code="",
            )
    return out


def _tokens(value: Any, texts: list[str]) -> list[int]:
    """Tokens of each input: token arrays count their ids, texts are estimated."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return [len(v) for v in value]
    if isinstance(value, list) and value and isinstance(value[0], int):
        return [len(value)]
    return [max(1, estimate_tokens(t)) for t in texts]


async def create_embeddings(request: web.Request, state: SimState, raw: Any) -> web.Response:
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str):
        raise ApiError(400, "you must provide a model parameter", param="model", code="")
    model = raw["model"]
    texts = _inputs(raw.get("input"))
    native = NATIVE_DIMS.get(model, DEFAULT_DIMS)
    dims = raw.get("dimensions")
    if dims is not None:
        if model in _FIXED_DIMS:
            raise ApiError(
                400,
                "This model does not support specifying dimensions.",
                param="dimensions",
                code="",
            )
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= native:
            raise ApiError(
                400,
                f"Invalid value for 'dimensions' = {dims}. Must be between 1 and {native}.",
                param="dimensions",
                code="",
            )
    encoding = raw.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid value for 'encoding_format' = {encoding}. "
            "Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="",
        )
    tokens = _tokens(raw.get("input"), texts)
    limit = MAX_INPUT_TOKENS.get(model, DEFAULT_MAX_INPUT_TOKENS)
    longest = max(tokens)
    if longest > limit:
        raise ApiError(
            400,
            f"This model's maximum context length is {limit} tokens, however you requested "
            f"{longest} tokens ({longest} in your prompt; 0 for the completion). "
            "Please reduce your prompt; or completion length.",
            code="",
        )
    await state.latency.pace(request).wait(0)
    data = []
    for index, text in enumerate(texts):
        vec = embed(text, native)
        if dims is not None and dims < native:
            vec = vec[:dims] / np.float32(np.linalg.norm(vec[:dims]))
        value: Any = (
            base64.b64encode(vec.astype("<f4").tobytes()).decode()
            if encoding == "base64"
            else vec.tolist()
        )
        data.append({"object": "embedding", "index": index, "embedding": value})
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)},
    }
    return web.Response(
        text=dumps(body), content_type="application/json", headers={"x-request-id": request_id()}
    )
