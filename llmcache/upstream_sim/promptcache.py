"""Provider-side prompt caching, as the usage numbers of the real APIs report it.

Anthropic caches the prefix up to each ``cache_control`` breakpoint (render order tools →
system → messages) once it reaches the model's minimum length; a later request reads the
longest cached prefix, looking back up to 20 blocks from each breakpoint. OpenAI caches
every prompt of at least 1024 tokens automatically, in 128-token steps.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

# Minimum cacheable prefix per Anthropic model family (the platform docs' table).
_ANTHROPIC_MIN = (
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-haiku", 2048),
)
_LOOKBACK_BLOCKS = 20
_OPENAI_MIN = 1024
_OPENAI_STEP = 128
_OPENAI_TTL_S = 600.0


def anthropic_min_tokens(model: str) -> int:
    for prefix, minimum in _ANTHROPIC_MIN:
        if model.startswith(prefix):
            return minimum
    return 1024


@dataclass(frozen=True)
class Block:
    """One rendered prompt block: tokens up to and including it, and the prefix hash."""

    cumulative_tokens: int
    prefix_hash: bytes
    breakpoint_ttl_s: float | None  # set when the block carries cache_control


@dataclass(frozen=True)
class AnthropicUsage:
    input_tokens: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int


class AnthropicPromptCache:
    def __init__(self, min_tokens: int | None) -> None:
        self._min_override = min_tokens
        self._entries: dict[tuple[str, bytes], float] = {}

    def clear(self) -> None:
        self._entries.clear()

    def account(self, scope: str, model: str, blocks: list[Block], total: int) -> AnthropicUsage:
        """Split ``total`` input tokens into uncached, read and written, and update the cache."""
        now = time.monotonic()
        minimum = (
            self._min_override if self._min_override is not None else (anthropic_min_tokens(model))
        )
        breakpoints = [i for i, b in enumerate(blocks) if b.breakpoint_ttl_s is not None]
        if not breakpoints:
            return AnthropicUsage(total, 0, 0, 0)
        read = 0
        for bp in reversed(breakpoints):
            for i in range(bp, max(-1, bp - _LOOKBACK_BLOCKS), -1):
                key = (scope, blocks[i].prefix_hash)
                expiry = self._entries.get(key)
                if expiry is not None and expiry > now:
                    read = blocks[i].cumulative_tokens
                    ttl = blocks[bp].breakpoint_ttl_s or 300.0
                    self._entries[key] = max(expiry, now + ttl)  # refreshed on use
                    break
            if read:
                break
        write_5m = write_1h = 0
        for bp in breakpoints:
            block = blocks[bp]
            if block.cumulative_tokens < minimum:
                continue
            ttl = block.breakpoint_ttl_s or 300.0
            key = (scope, block.prefix_hash)
            if self._entries.get(key, 0.0) <= now:
                self._entries[key] = now + ttl
        last = blocks[breakpoints[-1]]
        if last.cumulative_tokens >= minimum and last.cumulative_tokens > read:
            written = last.cumulative_tokens - read
            if (last.breakpoint_ttl_s or 300.0) > 300.0:
                write_1h = written
            else:
                write_5m = written
        return AnthropicUsage(total - read - write_5m - write_1h, read, write_5m, write_1h)


class OpenAIPromptCache:
    def __init__(self, min_tokens: int | None) -> None:
        self._min = _OPENAI_MIN if min_tokens is None else min_tokens
        self._entries: dict[tuple[str, bytes], float] = {}

    def clear(self) -> None:
        self._entries.clear()

    def account(self, scope: str, model: str, rendered: str, total: int) -> int:
        """Cached tokens of this prompt; remembers its prefixes for the next call."""
        if total < max(self._min, 1):
            return 0
        now = time.monotonic()
        cached = 0
        step = self._min
        lengths = []
        while step <= total:
            lengths.append(step)
            step += _OPENAI_STEP
        for tokens in lengths:
            digest = hashlib.sha256(f"{model}\0".encode() + rendered[: tokens * 4].encode())
            key = (scope, digest.digest())
            if self._entries.get(key, 0.0) > now:
                cached = tokens
            self._entries[key] = now + _OPENAI_TTL_S
        return cached
