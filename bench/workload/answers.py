"""What an answer says, whatever form it came in (JSON body or SSE stream, either API).

Two answers are the same when their text (or tool calls, or vectors), stop reason and token
usage agree; ids and timestamps are ignored since they differ on every call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    content: str  # text, tool calls or a digest of the vectors
    stop: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def same_as(self, other: Answer) -> bool:
        return (self.content, self.stop) == (other.content, other.stop)


def parse(route: str, content_type: str, payload: bytes) -> Answer:
    """Raises ``ValueError`` when the payload is not a complete answer of that route."""
    if content_type.startswith("text/event-stream"):
        events = list(_sse(payload))
        if route == "anthropic.messages":
            return _anthropic_stream(events)
        if route == "openai.chat":
            return _chat_stream(events)
        raise ValueError(f"unexpected stream for {route}")
    doc = json.loads(payload)
    if route == "anthropic.messages":
        return _anthropic(doc)
    if route == "openai.chat":
        return _chat(doc)
    if route == "openai.embeddings":
        return _embeddings(doc)
    if route == "rag.query":
        return _rag(doc)
    raise ValueError(f"unknown route {route}")


def _sse(payload: bytes) -> list[tuple[str, str]]:
    out = []
    for block in payload.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            out.append((event, "\n".join(data)))
    return out


def _anthropic(doc: dict[str, Any]) -> Answer:
    parts = []
    for block in doc["content"]:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_use":
            parts.append(f"<tool {block['name']} {json.dumps(block['input'], sort_keys=True)}>")
        elif block.get("type") == "thinking":
            parts.append(f"<thinking {block['thinking']}>")
    u = doc["usage"]
    return Answer(
        "".join(parts),
        str(doc["stop_reason"]),
        int(u.get("input_tokens", 0)),
        int(u.get("output_tokens", 0)),
        int(u.get("cache_read_input_tokens") or 0),
        int(u.get("cache_creation_input_tokens") or 0),
    )


def _anthropic_stream(events: list[tuple[str, str]]) -> Answer:
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    stop, ended = "", False
    for _event, data in events:
        doc = json.loads(data)
        kind = doc.get("type")
        if kind == "message_start":
            usage.update(doc["message"].get("usage") or {})
        elif kind == "content_block_start":
            blocks[doc["index"]] = {**doc["content_block"], "_json": ""}
        elif kind == "content_block_delta":
            block, delta = blocks[doc["index"]], doc["delta"]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "message_delta":
            stop = str(doc["delta"].get("stop_reason"))
            usage.update({k: v for k, v in (doc.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            ended = True
        elif kind == "error":
            raise ValueError(f"stream error: {data}")
    if not ended:
        raise ValueError("stream ended without message_stop")
    content = []
    for i in sorted(blocks):
        b = blocks[i]
        if b["type"] == "tool_use":
            b["input"] = json.loads(b["_json"] or "{}")
        content.append(b)
    return _anthropic({"content": content, "stop_reason": stop, "usage": usage})


def _chat(doc: dict[str, Any]) -> Answer:
    choice = doc["choices"][0]
    message = choice["message"]
    text = message.get("content") or ""
    for call in message.get("tool_calls") or []:
        fn = call["function"]
        text += f"<tool {fn['name']} {fn['arguments']}>"
    u = doc.get("usage") or {}
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return Answer(
        text,
        str(choice.get("finish_reason")),
        int(u.get("prompt_tokens", 0)) - cached,
        int(u.get("completion_tokens", 0)),
        cached,
    )


def _chat_stream(events: list[tuple[str, str]]) -> Answer:
    text, stop, usage, done = "", "", {}, False
    calls: dict[int, dict[str, str]] = {}
    for _event, data in events:
        if data.strip() == "[DONE]":
            done = True
            continue
        doc = json.loads(data)
        if doc.get("usage"):
            usage = doc["usage"]
        for choice in doc.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                stop = choice["finish_reason"]
    if not done:
        raise ValueError("stream ended without [DONE]")
    message = {
        "content": text,
        "tool_calls": [{"function": calls[i]} for i in sorted(calls)],
    }
    return _chat({"choices": [{"message": message, "finish_reason": stop}], "usage": usage})


def _embeddings(doc: dict[str, Any]) -> Answer:
    digest = hashlib.sha256()
    for item in doc["data"]:
        vector = item["embedding"]
        digest.update(json.dumps([round(float(x), 5) for x in vector]).encode())
    u = doc.get("usage") or {}
    return Answer(digest.hexdigest(), "embedding", int(u.get("prompt_tokens", 0)), 0)


def _rag(doc: dict[str, Any]) -> Answer:
    """A Qdrant query's answer: the documents found, in order (scores differ slightly for a
    near query vector, and a similarity hit replays the stored ones)."""
    ids = [point["id"] for point in doc["result"]["points"]]
    return Answer(json.dumps(ids), "points", 0, 0)
