"""What a semantic lookup compares, and what must match exactly.

Only the **last user turn's text** is embedded. Everything else that can change the answer
is a *hard partition*: hashed, and a candidate is only ever looked for among entries with an
equal hash. The partition covers the route, the model, the tenant partition, the system
prompt / instructions, tools and tool choice, every sampling and output setting, and the
**whole earlier conversation** (every earlier turn, assistant answers, tool calls and tool
results, verbatim). So in agentic traffic a semantic hit can only happen between two
conversations that are identical up to a differently worded final user message; a new tool
result, a different earlier answer or one more turn never reuses an answer.

Requests whose last turn is not plain user text (tool results, images, documents, audio)
are not semantically cacheable at all: their meaning is not in words we can embed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

VERSION = b"llmcache-semantic-v1"
# Fields that never change the answer (transport, bookkeeping, provider-side caching hints).
VOLATILE = frozenset(
    {
        "stream", "stream_options", "metadata", "user", "prompt_cache_key",
        "safety_identifier", "service_tier", "store", "cache_control", "background",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str  # the last user turn, what is embedded and what the guards read
    partition: str  # hex digest of everything that must match exactly


def render(route: str, model: str, tenant: str, body: Json) -> Rendered | None:
    """The canonical rendering of a request, or None when it is not semantically cacheable."""
    rest = {k: v for k, v in body.items() if k not in VOLATILE}
    if route == "openai.responses":
        split = _split_input(rest)
    elif route in ("anthropic.messages", "openai.chat"):
        split = _split_messages(rest)
    else:
        return None
    if split is None:
        return None
    text, remainder = split
    text = " ".join(text.split())
    if not text:
        return None
    h = hashlib.sha256(VERSION)
    for part in (route, model, tenant):
        h.update(b"\0" + part.encode())
    h.update(b"\0" + _canonical(remainder))
    return Rendered(text=text, partition=h.hexdigest()[:32])


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _split_messages(rest: Json) -> tuple[str, Json] | None:
    messages = rest.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _text_only(last.get("content"))
    if text is None:
        return None
    extra = {k: v for k, v in last.items() if k not in ("role", "content")}
    return text, {**rest, "messages": messages[:-1], "last": extra}


def _split_input(rest: Json) -> tuple[str, Json] | None:
    value = rest.get("input")
    if isinstance(value, str):
        return value, {**rest, "input": []}
    if not isinstance(value, list) or not value:
        return None
    last = value[-1]
    if (
        not isinstance(last, dict)
        or last.get("role") != "user"
        or last.get("type", "message") != "message"
    ):
        return None
    text = _text_only(last.get("content"))
    if text is None:
        return None
    return text, {**rest, "input": value[:-1]}


def _text_only(content: Any) -> str | None:
    """Text of a message content made only of text parts; None if anything else is in it."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = []
    for block in content:
        if not isinstance(block, dict) or block.get("type") not in ("text", "input_text"):
            return None
        if any(k not in ("type", "text", "cache_control") for k in block):
            return None  # citations, annotations, ...: not plain text
        text = block.get("text")
        if not isinstance(text, str):
            return None
        parts.append(text)
    return "\n".join(parts)
