"""List prices (USD per million tokens) used to estimate what hits save.

Provider-side prompt caching is priced separately: cache reads are billed at a fraction of
input and cache writes at a premium, so savings count each kind at its own price. A
policy's ``prices`` override or extend this table.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmcache.policy import Price

# Anthropic: cache read 0.1x input, 5-minute cache write 1.25x input.
# OpenAI: cached input 0.1x (GPT-5 family), 0.25x (GPT-4.1), 0.5x (GPT-4o family); no write fee.
PRICES: dict[str, Price] = {
    "claude-opus-4-6": Price(input=5.0, output=25.0, cache_read=0.5, cache_write=6.25),
    "claude-sonnet-4-6": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
    "claude-opus-4-5": Price(input=5.0, output=25.0, cache_read=0.5, cache_write=6.25),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25),
    "gpt-5": Price(input=1.25, output=10.0, cache_read=0.125, cache_write=0.0),
    "gpt-5-mini": Price(input=0.25, output=2.0, cache_read=0.025, cache_write=0.0),
    "gpt-4.1": Price(input=2.0, output=8.0, cache_read=0.5, cache_write=0.0),
    "gpt-4o": Price(input=2.5, output=10.0, cache_read=1.25, cache_write=0.0),
    "gpt-4o-mini": Price(input=0.15, output=0.6, cache_read=0.075, cache_write=0.0),
    "text-embedding-3-small": Price(input=0.02, output=0.0),
    "text-embedding-3-large": Price(input=0.13, output=0.0),
}


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model``, matching dated names (``claude-sonnet-4-5-20250929``) and
    preferring the longest known prefix (``gpt-4o-mini`` over ``gpt-4o``)."""
    for table in (overrides or {}, PRICES):
        if model in table:
            return table[model]
        best = max((name for name in table if model.startswith(name + "-")), key=len, default=None)
        if best is not None:
            return table[best]
    return None


def cost_usd(
    price: Price | None, input: int, output: int, cache_read: int, cache_write: int
) -> float:
    if price is None:
        return 0.0
    read = price.input if price.cache_read is None else price.cache_read
    write = price.input if price.cache_write is None else price.cache_write
    return (
        input * price.input + output * price.output + cache_read * read + cache_write * write
    ) / 1e6
