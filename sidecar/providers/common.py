"""Small pieces every provider uses: JSON for the wire, delta chunking, key-material helpers."""

from __future__ import annotations

import json
from typing import Any

import orjson

from .base import Json

#: A replayed text is cut into at most this many deltas, none shorter than MIN_DELTA chars:
#: few events keep the hit path cheap, several keep clients' incremental rendering honest.
MAX_DELTAS = 8
MIN_DELTA = 128

# One encoder instance: json.dumps with non-default options builds a new one per call.
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def loads_object(data: str) -> Json | None:
    """The JSON object in an event's data, or None when it is not one."""
    try:
        doc = orjson.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def pieces(text: str) -> list[str]:
    """``text`` as a few consecutive deltas (at least one, possibly empty)."""
    n = len(text)
    size = max(MIN_DELTA, -(-n // MAX_DELTAS))
    if n <= size:
        return [text]
    return [text[i : i + size] for i in range(0, n, size)]


def drop_fields(body: Json, drop: frozenset[str]) -> Json:
    """A shallow copy of ``body`` without the ``drop`` fields."""
    return {k: v for k, v in body.items() if k not in drop}


def without_key(items: Any, key: str) -> Any:
    """``items`` (a list of dicts) with ``key`` removed from each dict; the very same list
    when no element has it, so the common case allocates nothing."""
    if not isinstance(items, list):
        return items
    for i, item in enumerate(items):
        if isinstance(item, dict) and key in item:
            out = items[:i]
            for rest in items[i:]:
                if isinstance(rest, dict) and key in rest:
                    rest = {k: v for k, v in rest.items() if k != key}
                out.append(rest)
            return out
    return items


def tool_types(body: Json) -> list[str]:
    """The ``type`` of every entry of the request's ``tools``."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [t["type"] for t in tools if isinstance(t, dict) and isinstance(t.get("type"), str)]


def versioned(kind: str, base: str) -> bool:
    """``kind`` is the tool type ``base`` or a dated version of it (``web_search_20250305``,
    ``web_search_preview_2025_03_11``)."""
    return kind == base or kind.startswith(base + "_")


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


#: Request fields of OpenAI's chat and responses APIs that never change the answer
#: (see docs/cache-key.md); each API adds its own.
OPENAI_DROP = frozenset(
    {
        "stream",
        "stream_options",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    }
)

#: The documented default sampling temperature of the Anthropic, chat and responses APIs.
DEFAULT_TEMPERATURE = 1.0


def number(value: Any, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


class SamplingRequest:
    """Where the three generation APIs agree: ``model``, ``temperature`` (1.0 when
    omitted, the documented default of all three) and ``stream``."""

    def model(self, body: Json) -> str:
        model = body.get("model")
        return model if isinstance(model, str) else ""

    def temperature(self, body: Json) -> float | None:
        return number(body.get("temperature"), DEFAULT_TEMPERATURE)

    def is_stream(self, body: Json) -> bool:
        return body.get("stream") is True
