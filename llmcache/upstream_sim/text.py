"""Deterministic text, token estimates and request fingerprints.

Every answer the simulator gives is a pure function of a request fingerprint (the request
body minus the fields that do not change a real model's answer, plus the request's
*variant*: the headers and query string that select API versions, betas and projects), so a
benchmark can compare a cached answer with what the upstream gives for that exact request.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from contextvars import ContextVar
from typing import Any

# Headers whose value changes what the real APIs answer (a beta's features, a project's
# models): the simulator's answers depend on them too, so a cache that ignored them shows.
VARIANT_HEADERS = (
    "anthropic-beta", "anthropic-workspace-id",
    "openai-organization", "openai-project", "openai-beta",
)  # fmt: skip
# The variant of the request being answered (set per request, read by ``fingerprint``).
VARIANT: ContextVar[bytes] = ContextVar("variant", default=b"")

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "at",
    "or",
    "an",
    "which",
    "cache",
    "layer",
    "request",
    "answer",
    "model",
    "token",
    "prompt",
    "stream",
    "server",
    "client",
    "value",
    "system",
    "data",
    "result",
    "function",
    "agent",
    "task",
    "context",
    "vector",
    "query",
    "index",
    "store",
    "memory",
    "policy",
    "latency",
    "simple",
    "careful",
    "quick",
    "robust",
    "clear",
    "better",
    "faster",
    "cheaper",
    "stable",
    "correct",
    "useful",
    "direct",
    "first",
    "next",
    "then",
    "also",
    "however",
    "because",
    "therefore",
    "while",
    "when",
    "where",
    "since",
    "although",
    "build",
    "check",
    "write",
    "read",
    "send",
    "return",
    "handle",
    "update",
    "measure",
    "compare",
    "reduce",
    "improve",
    "keep",
    "use",
    "run",
    "call",
    "test",
    "plan",
    "step",
    "case",
    "rule",
    "path",
    "note",
    "part",
    "time",
    "cost",
    "rate",
    "hit",
    "miss",
    "key",
    "small",
    "large",
    "early",
    "late",
    "local",
    "shared",
    "remote",
    "single",
    "double",
    "partial",
    "complete",
    "exact",
    "near",
    "python",
    "service",
    "network",
    "record",
    "field",
    "signal",
    "window",
    "limit",
    "budget",
    "report",
    "review",
    "change",
]


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (lenient request parsing)."""
    return value if isinstance(value, dict) else {}


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace; equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(obj: Any) -> str:
    """Compact JSON as the real APIs send it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def estimate_tokens(text: str) -> int:
    """About four characters per token, as the providers' rule of thumb."""
    return math.ceil(len(text) / 4) if text else 0


def strip_key(obj: Any, key: str, keep_under: frozenset[str] = frozenset()) -> Any:
    """``obj`` without ``key`` at any depth, leaving subtrees under ``keep_under`` alone."""
    if isinstance(obj, dict):
        return {
            k: (v if k in keep_under else strip_key(v, key, keep_under))
            for k, v in obj.items()
            if k != key
        }
    if isinstance(obj, list):
        return [strip_key(v, key, keep_under) for v in obj]
    return obj


def fingerprint(body: dict[str, Any], ignored: frozenset[str]) -> bytes:
    """SHA-256 of the body's answer-relevant fields."""
    relevant = {k: v for k, v in body.items() if k not in ignored}
    return hashlib.sha256(VARIANT.get() + canonical(relevant)).digest()


def short_hash(seed: bytes, label: str, length: int = 24) -> str:
    """A stable id-like string derived from ``seed``."""
    digest = hashlib.sha256(seed + label.encode()).hexdigest()
    return digest[:length]


class Words:
    """A seeded stream of words; one word is one output token."""

    def __init__(self, seed: bytes, label: str) -> None:
        self._rng = random.Random(hashlib.sha256(seed + label.encode()).digest())
        self._count = 0
        self._since_stop = 0
        self._sentence_len = self._rng.randint(6, 16)

    @property
    def rng(self) -> random.Random:
        return self._rng

    def take(self, n: int) -> list[str]:
        """``n`` tokens of prose, each carrying its leading space and punctuation."""
        out: list[str] = []
        for _ in range(n):
            word = self._rng.choice(WORDS)
            if self._since_stop == 0:
                word = word.capitalize()
            self._since_stop += 1
            if self._since_stop >= self._sentence_len:
                word += "."
                self._since_stop = 0
                self._sentence_len = self._rng.randint(6, 16)
            out.append(word if self._count == 0 else " " + word)
            self._count += 1
        return out


def answer_length(seed: bytes, input_tokens: int) -> int:
    """A plausible answer length: longer prompts get somewhat longer answers."""
    return 24 + min(input_tokens // 3, 240) + seed[0] % 40


def cut_at_stop(tokens: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """Tokens up to the first stop sequence in their text (excluded) and the one that hit."""
    if not stops:
        return tokens, None
    text = ""
    for i, tok in enumerate(tokens):
        text += tok
        hits = [(text.find(s), s) for s in stops if s and s in text]
        if hits:
            pos, stop = min(hits)
            kept = tokens[:i]
            head = "".join(kept)
            if pos < len(head):  # the stop began in an earlier token: trim that text
                return [head[:pos]] if head[:pos] else [], stop
            rest = text[len(head) : pos]
            return [*kept, rest] if rest else kept, stop
    return tokens, None


def schema_value(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value that fits a JSON schema, for simulated tool-call arguments."""
    if not isinstance(schema, dict):
        return rng.choice(WORDS)
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties") or {}
        if depth > 4:
            return {}
        return {name: schema_value(sub, rng, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [schema_value(schema.get("items", {}), rng, depth + 1)]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
