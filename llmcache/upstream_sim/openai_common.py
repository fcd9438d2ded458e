"""What the OpenAI chat and responses simulations share: rendering, tools, reasoning."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .text import (
    Words,
    answer_length,
    canonical,
    cut_at_stop,
    dumps,
    estimate_tokens,
    obj,
    schema_value,
    short_hash,
)

# Fields that do not change the sampled text; the limits (max tokens, stop) only cut it.
IGNORED = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "stop",
        "stream",
        "stream_options",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "store",
        "service_tier",
        "background",
    }
)
REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")


def is_reasoning_model(model: str) -> bool:
    return model.startswith(REASONING_PREFIXES) and not model.startswith("gpt-5-chat")


def text_of(content: Any) -> str:
    """The plain text of a message's content (string or typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def render(parts: list[Any]) -> tuple[str, int]:
    """The prompt text the provider's prefix cache sees, and its token estimate."""
    chunks = [p if isinstance(p, str) else canonical(p).decode() for p in parts]
    text = "\n".join(chunks)
    return text, max(1, estimate_tokens(text) + 3 * len(parts))


@dataclass
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass
class Answer:
    text_tokens: list[str]
    tool_call: ToolCall | None
    reasoning_tokens: int
    truncated: bool
    stopped: bool

    @property
    def text(self) -> str:
        return "".join(self.text_tokens)

    @property
    def output_tokens(self) -> int:
        tool = 8 + estimate_tokens(self.tool_call.arguments) if self.tool_call else 0
        return max(1, len(self.text_tokens) + tool + self.reasoning_tokens)


def function_tools(tools: Any) -> list[tuple[str, Any]]:
    """(name, parameters) of function tools, in chat (nested) or responses (flat) form."""
    out: list[tuple[str, Any]] = []
    for tool in tools or []:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        fn = obj(tool.get("function")) or tool
        if isinstance(fn.get("name"), str):
            out.append((fn["name"], fn.get("parameters") or {}))
    return out


def forced_tool(tool_choice: Any) -> tuple[bool, str | None, bool]:
    """(forced, named tool, disabled) from a chat or responses ``tool_choice``."""
    if tool_choice == "none":
        return False, None, True
    if tool_choice == "required":
        return True, None, False
    if isinstance(tool_choice, dict):
        fn = obj(tool_choice.get("function")) or tool_choice
        name = fn.get("name")
        return True, name if isinstance(name, str) else None, False
    return False, None, False


def answer(
    seed: bytes,
    model: str,
    input_tokens: int,
    last_user_text: str,
    tools: Any,
    tool_choice: Any,
    max_tokens: int | None,
    stops: list[str],
    reasoning_effort: str | None,
    label: str = "text",
) -> Answer:
    """The answer of one choice, decided up front."""
    reasoning = 0
    if is_reasoning_model(model) and reasoning_effort not in ("none", "minimal"):
        reasoning = 16 + seed[4] % 48
    budget = max_tokens if max_tokens is not None else 1_000_000
    if reasoning >= budget:
        return Answer([], None, budget, True, False)
    budget -= reasoning
    candidates = function_tools(tools)
    forced, named, disabled = forced_tool(tool_choice)
    tool: tuple[str, Any] | None = None
    if candidates and not disabled and (forced or "use the tool" in last_user_text.lower()):
        tool = (
            next((t for t in candidates if t[0] == named), None)
            if named
            else (candidates[seed[1] % len(candidates)])
        )
    if tool is not None:
        args = dumps(schema_value(tool[1], Words(seed, label + ":tool").rng))
        call = ToolCall("call_" + short_hash(seed, label + ":call", 24), tool[0], args)
        if 8 + estimate_tokens(args) <= budget:
            return Answer([], call, reasoning, False, False)
        return Answer([], None, reasoning + budget, True, False)
    words = Words(seed, label).take(answer_length(seed, input_tokens))
    words, stop = cut_at_stop(words, stops)
    truncated = len(words) > budget
    if truncated:
        words = words[:budget]
    return Answer(words, None, reasoning, truncated, stop is not None)


def stops_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)][:4]
    return []


def positive_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ApiError(
                400,
                f"Invalid '{name}': integer below minimum value.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def fingerprint_id(model: str) -> str:
    return "fp_" + short_hash(model.encode(), "fp", 10)
