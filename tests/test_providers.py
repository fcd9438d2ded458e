"""Provider knowledge proved with the official SDKs over real HTTP.

A tiny aiohttp server on 127.0.0.1 plays the upstream: it answers with a handwritten upstream
stream, with the providers' replay bytes, or with the JSON object, and records the request
bodies the SDKs send. The SDKs' own accumulators are the reference for what a stream means.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from llmcache.sidecar.keys import canonical
from llmcache.sidecar.providers import PROVIDERS
from llmcache.sidecar.providers.base import Json, Usage
from llmcache.sidecar.providers.sse import SSEParser, encode

from tests.support import serve_app

ANTHROPIC = PROVIDERS["anthropic.messages"]
CHAT = PROVIDERS["openai.chat"]
RESPONSES = PROVIDERS["openai.responses"]
EMBEDDINGS = PROVIDERS["openai.embeddings"]

SSE = "text/event-stream"


# -- the local upstream ---------------------------------------------------------------------


class Upstream:
    """Answers every POST with ``reply`` and records the JSON bodies it received."""

    def __init__(self) -> None:
        self.url = ""
        self.bodies: list[Json] = []
        self.reply: tuple[str, bytes] = ("application/json", b"{}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        content_type, payload = self.reply
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        # Odd-sized writes so the SDKs' decoders see events split across reads.
        for i in range(0, len(payload), 97):
            await resp.write(payload[i : i + 97])
        await resp.write_eof()
        return resp

    def sse(self, payload: bytes) -> None:
        self.reply = (SSE, payload)

    def json(self, obj: Json) -> None:
        self.reply = ("application/json", json.dumps(obj).encode())


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.router.add_post("/{tail:.*}", up.handle)
    runner, up.url = await serve_app(app)
    yield up
    await runner.cleanup()


@pytest.fixture
async def claude(upstream: Upstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=upstream.url, api_key="sk-ant-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def oai(upstream: Upstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=upstream.url + "/v1", api_key="sk-test", max_retries=0)
    yield client
    await client.close()


# -- helpers ----------------------------------------------------------------------------------


def wire(events: list[tuple[str | None, Any]], eol: str = "\n") -> bytes:
    """Handwritten upstream framing (deliberately not the module's encoder)."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}{eol}" if name else ""
        out.append(f"{head}data: {text}{eol}{eol}")
    return "".join(out).encode()


def run(provider: Any, body: Json, payload: bytes, seed: int = 0) -> tuple[Json | None, bytes]:
    """Feed ``payload`` in random splits through the parser and the provider's assembler, as
    the sidecar does; return the result and the bytes that would reach the client."""
    parser, assembler = SSEParser(), provider.assembler(body)
    rng = random.Random(seed)
    forwarded = bytearray()
    i = 0
    while i < len(payload):
        n = rng.randint(1, 40)
        for event, data, raw in parser.feed(payload[i : i + n]):
            if assembler.feed(event, data):
                forwarded += raw
        i += n
    return assembler.result(), bytes(forwarded)


def replayed(provider: Any, response: Json, body: Json) -> bytes:
    return b"".join(provider.replay(response, body))


def claude_dump(message: Any) -> Json:
    """A Message as plain JSON without nulls (the SDK's parsed types add null-only fields)."""
    if not isinstance(message, dict):
        message = message.model_dump(mode="json")
    return anthropic.types.Message.model_validate(message).model_dump(
        mode="json", exclude_none=True
    )


# -- Anthropic payloads -----------------------------------------------------------------------

MSG_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
LONG = "(a long stretch of text, so that replays cut it into several deltas) " * 6
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"


def claude_stream(stop: str = "tool_use", *, terminal: bool = True) -> bytes:
    events: list[tuple[str | None, Any]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": MSG_ID,
                    "type": "message",
                    "role": "assistant",
                    "model": CLAUDE_MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 472,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 2048,
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": 0,
                            "ephemeral_1h_input_tokens": 0,
                        },
                        "output_tokens": 2,
                        "service_tier": "standard",
                    },
                },
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "The user wants the weather"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {
                    "type": "thinking_delta",
                    "thinking": " in San Francisco; call the tool.",
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Okay, let"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {
                    "type": "text_delta",
                    "text": "'s check the weather " + LONG + "for San Francisco, CA: ✓",
                },
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {
                    "type": "input_json_delta",
                    "partial_json": 'ncisco, CA", "unit": "fahrenheit"}',
                },
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {
                    "input_tokens": 472,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 2048,
                    "output_tokens": 89,
                },
            },
        ),
    ]
    if terminal:
        events.append(("message_stop", {"type": "message_stop"}))
    return wire(events)


def claude_web_search_stream() -> bytes:
    """Server tools, redacted thinking and citations: blocks passed through whole."""
    search_result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "content": [
            {
                "type": "web_search_result",
                "title": "Weather in San Francisco",
                "url": "https://weather.example/sf",
                "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1k",
                "page_age": "2 hours ago",
            }
        ],
    }
    citation = {
        "type": "web_search_result_location",
        "url": "https://weather.example/sf",
        "title": "Weather in San Francisco",
        "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm",
        "cited_text": "Sunny, 68°F",
    }
    return wire(
        [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_01Web",
                        "type": "message",
                        "role": "assistant",
                        "model": CLAUDE_MODEL,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 2679, "output_tokens": 3},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {
                        "type": "redacted_thinking",
                        "data": "EmwKAhgBEgy3va3pzix/LafPsn4a",
                    },
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "server_tool_use",
                        "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
                        "name": "web_search",
                        "input": {},
                    },
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": '{"query": "weather SF"}',
                    },
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 2, "content_block": search_result},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 2}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 3,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 3,
                    "delta": {"type": "citations_delta", "citation": citation},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 3,
                    "delta": {"type": "text_delta", "text": "It is sunny."},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 3}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "output_tokens": 510,
                        "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
                    },
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )


CLAUDE_ARGS: Json = {
    "model": CLAUDE_MODEL,
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "What is the weather in San Francisco?"}],
}


async def claude_stream_final(
    claude: anthropic.AsyncAnthropic, upstream: Upstream, payload: bytes
) -> Any:
    upstream.sse(payload)
    async with claude.messages.stream(**CLAUDE_ARGS) as stream:
        return await stream.get_final_message()


# -- Anthropic tests --------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [claude_stream(), claude_web_search_stream()])
async def test_anthropic_assembler_matches_sdk_accumulation(
    claude: anthropic.AsyncAnthropic, upstream: Upstream, payload: bytes
) -> None:
    sdk_final = await claude_stream_final(claude, upstream, payload)
    body = upstream.bodies[-1]
    result, forwarded = run(ANTHROPIC, body, payload, seed=len(payload))
    assert result is not None
    assert forwarded == payload  # every upstream byte reaches the client unchanged
    assert claude_dump(result) == claude_dump(sdk_final)
    assert ANTHROPIC.unstorable_reason(result, {}) is None


async def test_anthropic_assembled_fields(
    claude: anthropic.AsyncAnthropic, upstream: Upstream
) -> None:
    result, _ = run(ANTHROPIC, {}, claude_stream())
    assert result is not None
    thinking, text, tool = result["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "The user wants the weather in San Francisco; call the tool.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h",
    }
    assert text["text"] == "Okay, let's check the weather " + LONG + "for San Francisco, CA: ✓"
    assert tool["input"] == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert result["stop_reason"] == "tool_use"
    assert ANTHROPIC.usage(result) == Usage(input=472, output=89, cache_read=2048, cache_write=0)


@pytest.mark.parametrize("payload", [claude_stream(), claude_web_search_stream()])
async def test_anthropic_replay_equals_json(
    claude: anthropic.AsyncAnthropic, upstream: Upstream, payload: bytes
) -> None:
    result, _ = run(ANTHROPIC, {}, payload)
    assert result is not None
    replay = replayed(ANTHROPIC, result, {**CLAUDE_ARGS, "stream": True})
    from_replay = await claude_stream_final(claude, upstream, replay)
    upstream.json(result)
    from_json = await claude.messages.create(**CLAUDE_ARGS)
    assert claude_dump(from_replay) == claude_dump(from_json) == claude_dump(result)
    assert from_replay.usage.output_tokens == result["usage"]["output_tokens"]
    assert from_replay.usage.cache_read_input_tokens == result["usage"].get(
        "cache_read_input_tokens"
    )
    # The replay is itself assembled back into the same entry (stream → cache → stream).
    again, _ = run(ANTHROPIC, {}, replay)
    assert again == result


async def test_anthropic_replay_chunks_long_text() -> None:
    text = "word " * 400
    message = {
        "id": MSG_ID, "type": "message", "role": "assistant", "model": CLAUDE_MODEL,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 400},
    }  # fmt: skip
    deltas = [
        e
        for e in SSEParser().feed(replayed(ANTHROPIC, message, {}))
        if e[0] == "content_block_delta"
    ]
    assert 1 < len(deltas) <= 8
    assert "".join(json.loads(d)["delta"]["text"] for _, d, _ in deltas) == text


@pytest.mark.parametrize(
    ("stop", "reason"),
    [("max_tokens", "truncated"), ("refusal", "refused"), ("pause_turn", "pause_turn")],
)
def test_anthropic_incomplete_answers_are_unstorable(stop: str, reason: str) -> None:
    result, _ = run(ANTHROPIC, {}, claude_stream(stop))
    assert result is not None
    assert ANTHROPIC.unstorable_reason(result, {}) == reason


def test_anthropic_interrupted_or_errored_stream_has_no_result() -> None:
    assert run(ANTHROPIC, {}, claude_stream(terminal=False))[0] is None
    cut = claude_stream()
    assert run(ANTHROPIC, {}, cut[: len(cut) // 2])[0] is None
    error = wire(
        [
            (
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        ]
    )
    head = claude_stream(terminal=False)
    assert (
        run(ANTHROPIC, {}, head + error + wire([("message_stop", {"type": "message_stop"})]))[0]
        is None
    )


async def test_anthropic_key_material_from_real_sdk_requests(
    claude: anthropic.AsyncAnthropic, upstream: Upstream
) -> None:
    payload = claude_stream("end_turn")
    await claude_stream_final(claude, upstream, payload)  # stream=True, as messages.stream sends
    upstream.sse(payload)
    await claude.messages.create(
        **{
            **CLAUDE_ARGS,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "What is the weather in San Francisco?",
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                }
            ],
        },
        metadata={"user_id": "end-user-42"},
        cache_control={"type": "ephemeral"},
        stream=True,
    )
    streamed, marked = upstream.bodies[-2:]
    assert streamed.get("stream") is True and marked["metadata"] == {"user_id": "end-user-42"}
    key = canonical(ANTHROPIC.key_material(streamed))
    assert canonical(ANTHROPIC.key_material(marked)) == key
    reordered = dict(reversed(list(streamed.items())))
    assert canonical(ANTHROPIC.key_material(reordered)) == key
    assert canonical(ANTHROPIC.key_material({**streamed, "stream": False})) == key
    assert canonical(ANTHROPIC.key_material({**streamed, "temperature": 1.0})) == key
    changed = [
        {**streamed, "model": "claude-haiku-4-5"},
        {**streamed, "temperature": 0.2},
        {**streamed, "max_tokens": 2048},
        {**streamed, "system": "Answer in French."},
        {**streamed, "messages": [{"role": "user", "content": "What is the weather in Paris?"}]},
        {**streamed, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]},
        {**streamed, "thinking": {"type": "enabled", "budget_tokens": 2048}},
        {**streamed, "output_config": {"effort": "low"}},
        {**streamed, "stop_sequences": ["\n\nHuman:"]},
        {**streamed, "some_future_field": True},
    ]
    keys = {canonical(ANTHROPIC.key_material(b)) for b in changed}
    assert key not in keys and len(keys) == len(changed)
    # The original request is not modified by stripping.
    assert marked["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_anthropic_canonical_forms() -> None:
    base = ANTHROPIC.key_material({**CLAUDE_ARGS, "system": "Be brief."})
    blocks = ANTHROPIC.key_material(
        {
            **CLAUDE_ARGS,
            "system": [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": CLAUDE_ARGS["messages"][0]["content"]}],
                }
            ],
        }
    )
    assert canonical(blocks) == canonical(base)
    two = ANTHROPIC.key_material(
        {
            **CLAUDE_ARGS,
            "system": [{"type": "text", "text": "Be"}, {"type": "text", "text": " brief."}],
        }
    )
    assert canonical(two) != canonical(base)
    # A cache_control marker inside a tool_result's content and on a tool is stripped too,
    # but a tool-schema property that happens to be called cache_control is not.
    schema = {"type": "object", "properties": {"cache_control": {"type": "string"}}}
    tools = [{"name": "t", "input_schema": schema, "cache_control": {"type": "ephemeral"}}]
    marker = {"type": "ephemeral"}
    inner = [{"type": "text", "text": "42", "cache_control": marker}]
    result = [{"type": "tool_result", "tool_use_id": "toolu_1", "content": inner}]
    marked = ANTHROPIC.key_material(
        {**CLAUDE_ARGS, "tools": tools, "messages": [{"role": "user", "content": result}]}
    )
    assert marked["tools"] == [{"name": "t", "input_schema": schema}]
    assert marked["messages"][0]["content"][0]["content"] == [{"type": "text", "text": "42"}]


def test_anthropic_no_copy_when_nothing_to_strip() -> None:
    body = {**CLAUDE_ARGS, "stream": True}
    assert ANTHROPIC.key_material(body)["messages"] is body["messages"]


def test_anthropic_small_decisions() -> None:
    assert ANTHROPIC.temperature(CLAUDE_ARGS) == 1.0
    assert ANTHROPIC.temperature({**CLAUDE_ARGS, "temperature": 0}) == 0.0
    assert ANTHROPIC.uncacheable_reason(CLAUDE_ARGS) is None
    assert (
        ANTHROPIC.uncacheable_reason({**CLAUDE_ARGS, "container": "container_01"})
        == "stateful_container"
    )
    assert ANTHROPIC.is_stream({**CLAUDE_ARGS, "stream": True}) and not ANTHROPIC.is_stream(
        CLAUDE_ARGS
    )
    assert ANTHROPIC.upstream_body({**CLAUDE_ARGS, "stream": True}) is None
    assert ANTHROPIC.model(CLAUDE_ARGS) == CLAUDE_MODEL
    assert ANTHROPIC.name == "anthropic.messages" and ANTHROPIC.streams


# -- OpenAI chat payloads ---------------------------------------------------------------------

CHAT_MODEL = "gpt-4o-2024-08-06"
CHAT_USAGE: Json = {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 64, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def chunk(choices: list[Json], usage: Json | None = None, with_usage: bool = True) -> Json:
    out: Json = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": CHAT_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035",
        "choices": choices,
    }
    if with_usage:
        out["usage"] = usage
    return out


def delta(d: Json, finish: str | None = None, index: int = 0) -> Json:
    return {"index": index, "delta": d, "logprobs": None, "finish_reason": finish}


def chat_text_stream(finish: str = "stop", *, usage: bool = True, done: bool = True) -> bytes:
    events: list[tuple[str | None, Any]] = [
        (
            None,
            chunk([delta({"role": "assistant", "content": "", "refusal": None})], with_usage=usage),
        ),
        (None, chunk([delta({"content": "The capital"})], with_usage=usage)),
        (None, chunk([delta({"content": " of France is Paris — " + LONG})], with_usage=usage)),
        (None, chunk([delta({"content": "« Paris »."})], with_usage=usage)),
        (None, chunk([delta({}, finish)], with_usage=usage)),
    ]
    if usage:
        events.append((None, chunk([], CHAT_USAGE)))
    if done:
        events.append((None, "[DONE]"))
    return wire(events)


def chat_tools_stream() -> bytes:
    def call(i: int, **kw: Any) -> Json:
        return delta({"tool_calls": [{"index": i, **kw}]})

    return wire(
        [
            (None, chunk([delta({"role": "assistant", "content": None, "refusal": None})])),
            (None, chunk([call(0, id="call_DdmO9pD3xa9XTPNJ32zg2hcA", type="function",
                               function={"name": "get_weather", "arguments": ""})])),
            (None, chunk([call(0, function={"arguments": '{"location"'})])),
            (None, chunk([call(0, function={"arguments": ': "Paris, France"}'})])),
            (None, chunk([call(1, id="call_ABCDEFGHIJKLMNOPQRSTUVWX", type="function",
                               function={"name": "get_time", "arguments": ""})])),
            (None, chunk([call(1, function={"arguments": '{"tz": "Europe/Paris"}'})])),
            (None, chunk([delta({}, "tool_calls")])),
            (None, chunk([], CHAT_USAGE)),
            (None, "[DONE]"),
        ]
    )  # fmt: skip


def chat_two_choices_stream() -> bytes:
    """``n: 2``: the choices' deltas interleave."""
    return wire(
        [
            (None, chunk([delta({"role": "assistant", "content": ""}, index=0)])),
            (None, chunk([delta({"role": "assistant", "content": ""}, index=1)])),
            (None, chunk([delta({"content": "Paris."}, index=1)])),
            (None, chunk([delta({"content": "It is Paris."}, index=0)])),
            (None, chunk([delta({}, "stop", index=1)])),
            (None, chunk([delta({}, "stop", index=0)])),
            (None, chunk([], CHAT_USAGE)),
            (None, "[DONE]"),
        ]
    )


CHAT_ARGS: Json = {
    "model": CHAT_MODEL,
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}


async def chat_stream_final(oai: openai.AsyncOpenAI, upstream: Upstream, payload: bytes) -> Any:
    upstream.sse(payload)
    async with oai.chat.completions.stream(**CHAT_ARGS) as stream:
        return await stream.get_final_completion()


def chat_dump(completion: Any) -> Json:
    """A ChatCompletion as plain JSON without nulls, minus what the SDK's stream accumulator
    adds on its own (parsed fields, the tool calls' stream ``index``)."""
    if not isinstance(completion, dict):
        completion = completion.model_dump(mode="json")
    out = openai.types.chat.ChatCompletion.model_validate(completion).model_dump(
        mode="json", exclude_none=True
    )
    for choice in out["choices"]:
        choice["message"].pop("parsed", None)
        for call in choice["message"].get("tool_calls", []):
            call.pop("index", None)
            call["function"].pop("parsed_arguments", None)
    return out


# -- OpenAI chat tests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [chat_text_stream(), chat_tools_stream(), chat_two_choices_stream()]
)
async def test_chat_assembler_matches_sdk_accumulation(
    oai: openai.AsyncOpenAI, upstream: Upstream, payload: bytes
) -> None:
    sdk_final = await chat_stream_final(oai, upstream, payload)
    body = {**upstream.bodies[-1], "stream_options": {"include_usage": True}}
    result, forwarded = run(CHAT, body, payload, seed=3)
    assert result is not None and forwarded == payload
    assert chat_dump(result) == chat_dump(sdk_final)
    assert result["object"] == "chat.completion"
    assert CHAT.usage(result) == Usage(input=29, output=46, cache_read=1024, cache_write=64)
    assert CHAT.unstorable_reason(result, {}) is None


async def test_chat_usage_is_asked_upstream_and_hidden_from_the_client(
    oai: openai.AsyncOpenAI, upstream: Upstream
) -> None:
    upstream.sse(chat_text_stream())
    async with oai.chat.completions.stream(**CHAT_ARGS) as stream:
        await stream.get_final_completion()
    body = upstream.bodies[-1]
    assert body["stream"] is True and "stream_options" not in body
    wanted = CHAT.upstream_body(body)
    assert wanted is not None and wanted["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body  # the client's body is not modified
    asked = {**body, "stream_options": {"include_usage": True}}
    assert CHAT.upstream_body(asked) is None
    assert CHAT.upstream_body(CHAT_ARGS) is None
    # What the sidecar forwards to this client: every chunk but the usage-only one.
    result, forwarded = run(CHAT, body, chat_text_stream())
    assert result is not None and result["usage"] == CHAT_USAGE
    upstream.sse(forwarded)
    stream = await oai.chat.completions.create(**CHAT_ARGS, stream=True)
    seen = [c async for c in stream]
    assert seen and all(c.choices and c.usage is None for c in seen)
    assert "".join(c.choices[0].delta.content or "" for c in seen) == (
        "The capital of France is Paris — " + LONG + "« Paris »."
    )


@pytest.mark.parametrize(
    "payload", [chat_text_stream(), chat_tools_stream(), chat_two_choices_stream()]
)
@pytest.mark.parametrize("include_usage", [False, True])
async def test_chat_replay_equals_json(
    oai: openai.AsyncOpenAI, upstream: Upstream, payload: bytes, include_usage: bool
) -> None:
    result, _ = run(CHAT, {"stream_options": {"include_usage": True}}, payload)
    assert result is not None
    options: Any = {"stream_options": {"include_usage": True}} if include_usage else {}
    replay = replayed(CHAT, result, {**CHAT_ARGS, "stream": True, **options})
    upstream.sse(replay)
    stream = await oai.chat.completions.create(**CHAT_ARGS, stream=True, **options)
    chunks = [c async for c in stream]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == (1 if include_usage else 0)
    from_replay = await chat_stream_final(oai, upstream, replay)
    upstream.json(result)
    from_json = await oai.chat.completions.create(**CHAT_ARGS)
    a, b = chat_dump(from_replay), chat_dump(from_json)
    if not include_usage:
        b.pop("usage")  # a client that did not ask for usage does not get it in a stream
    assert a == b
    if include_usage:
        assert from_replay.usage == from_json.usage
    again, _ = run(CHAT, {"stream_options": {"include_usage": True}}, replay)
    if include_usage:
        assert again == result


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "truncated"), ("content_filter", "content_filter")]
)
def test_chat_incomplete_answers_are_unstorable(finish: str, reason: str) -> None:
    result, _ = run(CHAT, {}, chat_text_stream(finish))
    assert result is not None and CHAT.unstorable_reason(result, {}) == reason


def test_chat_refusal_and_interruptions() -> None:
    refusal = wire(
        [
            (None, chunk([delta({"role": "assistant", "content": None, "refusal": ""})])),
            (None, chunk([delta({"refusal": "I'm sorry, I can't help with that."})])),
            (None, chunk([delta({}, "stop")])),
            (None, chunk([], CHAT_USAGE)),
            (None, "[DONE]"),
        ]
    )
    result, _ = run(CHAT, {}, refusal)
    assert result is not None and CHAT.unstorable_reason(result, {}) == "refused"
    assert run(CHAT, {}, chat_text_stream(done=False))[0] is None
    error = wire(
        [(None, {"error": {"message": "The server had an error", "type": "server_error"}})]
    )
    assert run(CHAT, {}, chat_text_stream(done=False) + error + wire([(None, "[DONE]")]))[0] is None


async def test_chat_key_material_from_real_sdk_requests(
    oai: openai.AsyncOpenAI, upstream: Upstream
) -> None:
    upstream.sse(chat_text_stream())
    stream = await oai.chat.completions.create(
        **CHAT_ARGS, stream=True, stream_options={"include_usage": True}, temperature=0.2
    )
    _ = [c async for c in stream]
    upstream.sse(chat_text_stream())
    stream = await oai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital of France?"}],
            }
        ],
        temperature=0.2,
        stream=True,
        user="end-user-1",
        safety_identifier="hash-of-user",
        prompt_cache_key="tenant-a",
        metadata={"purpose": "test"},
        store=True,
    )
    _ = [c async for c in stream]
    first, second = upstream.bodies[-2:]
    key = canonical(CHAT.key_material(first))
    assert canonical(CHAT.key_material(second)) == key
    assert canonical(CHAT.key_material({**first, "stream": False})) == key
    changed = [
        {**first, "model": "gpt-4o-mini"},
        {**first, "temperature": 0.3},
        {**first, "seed": 7},
        {**first, "max_completion_tokens": 100},
        {**first, "reasoning_effort": "low"},
        {**first, "response_format": {"type": "json_object"}},
        {**first, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {**first, "n": 2},
        {**first, "messages": [{"role": "user", "content": "What is the capital of Spain?"}]},
        {**first, "messages": [{"role": "system", "content": "Be brief."}, *first["messages"]]},
    ]
    keys = {canonical(CHAT.key_material(b)) for b in changed}
    assert key not in keys and len(keys) == len(changed)
    assert canonical(CHAT.key_material({**first, "stop": "\n"})) == canonical(
        CHAT.key_material({**first, "stop": ["\n"]})
    )


def test_chat_small_decisions() -> None:
    assert CHAT.temperature(CHAT_ARGS) == 1.0
    assert CHAT.temperature({**CHAT_ARGS, "temperature": 0.7}) == 0.7
    assert CHAT.uncacheable_reason({**CHAT_ARGS, "n": 3}) is None
    audio = {
        **CHAT_ARGS,
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
    }
    assert CHAT.uncacheable_reason(audio) == "audio_output"
    assert CHAT.name == "openai.chat" and CHAT.streams


# -- OpenAI responses payloads ----------------------------------------------------------------

RESP_MODEL = "gpt-5-2025-08-07"
RESP_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
REASONING: Json = {
    "id": "rs_67ccd2bf17f0819081ff3bb2cf6508e6",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "**Answering a geography question**"}],
}
MESSAGE: Json = {
    "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [
        {
            "type": "output_text",
            "text": "The capital of France is Paris. " * 5,
            "annotations": [],
            "logprobs": [],
        }
    ],
}
CALL: Json = {
    "id": "fc_12345xyz",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_12345xyz",
    "name": "get_weather",
    "arguments": '{"location":"Paris, France"}',
}


def response_object(status: str = "completed", output: list[Json] | None = None) -> Json:
    return {
        "id": RESP_ID,
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "completed_at": 1741476543 if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": RESP_MODEL,
        "output": [REASONING, MESSAGE, CALL] if output is None else output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": None,
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
                "strict": True,
            }
        ],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 2036,
            "input_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 100},
            "output_tokens": 117,
            "output_tokens_details": {"reasoning_tokens": 64},
            "total_tokens": 2153,
        },
        "user": None,
        "metadata": {},
    }


def responses_stream(terminal: str | None = "response.completed") -> bytes:
    n = 0
    events: list[tuple[str | None, Any]] = []

    def ev(kind: str, **payload: Any) -> None:
        nonlocal n
        events.append((kind, {"type": kind, **payload, "sequence_number": n}))
        n += 1

    created = {**response_object(), "status": "in_progress", "output": [], "usage": None,
               "completed_at": None}  # fmt: skip
    ev("response.created", response=created)
    ev("response.in_progress", response=created)
    ev("response.output_item.added", output_index=0, item={**REASONING, "summary": []})
    rs = {"item_id": REASONING["id"], "output_index": 0, "summary_index": 0}
    ev("response.reasoning_summary_part.added", **rs, part={"type": "summary_text", "text": ""})
    ev("response.reasoning_summary_text.delta", **rs, delta="**Answering a geography question**")
    ev("response.reasoning_summary_text.done", **rs, text="**Answering a geography question**")
    ev("response.reasoning_summary_part.done", **rs, part=REASONING["summary"][0])
    ev("response.output_item.done", output_index=0, item=REASONING)
    ev("response.output_item.added", output_index=1,
       item={**MESSAGE, "status": "in_progress", "content": []})  # fmt: skip
    where = {"item_id": MESSAGE["id"], "output_index": 1, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    ev("response.content_part.added", **where, part=part)
    text = MESSAGE["content"][0]["text"]
    for i in range(0, len(text), 9):
        ev("response.output_text.delta", **where, delta=text[i : i + 9], logprobs=[])
    ev("response.output_text.done", **where, text=text, logprobs=[])
    ev("response.content_part.done", **where, part=MESSAGE["content"][0])
    ev("response.output_item.done", output_index=1, item=MESSAGE)
    ev("response.output_item.added", output_index=2,
       item={**CALL, "status": "in_progress", "arguments": ""})  # fmt: skip
    fc = {"item_id": CALL["id"], "output_index": 2}
    ev("response.function_call_arguments.delta", **fc, delta='{"location":')
    ev("response.function_call_arguments.delta", **fc, delta='"Paris, France"}')
    ev("response.function_call_arguments.done", **fc, arguments=CALL["arguments"])
    ev("response.output_item.done", output_index=2, item=CALL)
    if terminal == "response.completed":
        ev(terminal, response=response_object())
    elif terminal == "response.incomplete":
        ev(terminal, response=response_object("incomplete"))
    elif terminal == "response.failed":
        failed = {**response_object("failed"), "error": {"code": "server_error", "message": "x"}}
        ev(terminal, response=failed)
    return wire(events)


RESP_ARGS: Json = {"model": RESP_MODEL, "input": "What is the capital of France?"}


def response_dump(response: Any) -> Json:
    if not isinstance(response, dict):
        response = response.model_dump(mode="json")
    out = openai.types.responses.Response.model_validate(response).model_dump(
        mode="json", exclude_none=True
    )
    for item in out["output"]:
        item.pop("parsed_arguments", None)
        for part in item.get("content", []):
            part.pop("parsed", None)
    return out


async def responses_stream_final(
    oai: openai.AsyncOpenAI, upstream: Upstream, payload: bytes
) -> Any:
    upstream.sse(payload)
    async with oai.responses.stream(**RESP_ARGS) as stream:
        return await stream.get_final_response()


# -- OpenAI responses tests -------------------------------------------------------------------


async def test_responses_assembler_matches_sdk(oai: openai.AsyncOpenAI, upstream: Upstream) -> None:
    payload = responses_stream()
    sdk_final = await responses_stream_final(oai, upstream, payload)
    result, forwarded = run(RESPONSES, upstream.bodies[-1], payload, seed=5)
    assert result is not None and forwarded == payload
    assert response_dump(result) == response_dump(sdk_final)
    assert RESPONSES.unstorable_reason(result, {}) is None
    assert RESPONSES.usage(result) == Usage(input=16, output=117, cache_read=1920, cache_write=100)


async def test_responses_replay_equals_json(oai: openai.AsyncOpenAI, upstream: Upstream) -> None:
    result = response_object()
    replay = replayed(RESPONSES, result, {**RESP_ARGS, "stream": True})
    numbers = [json.loads(d)["sequence_number"] for _, d, _ in SSEParser().feed(replay)]
    assert numbers == list(range(len(numbers)))
    text_deltas = [e for e, _, _ in SSEParser().feed(replay) if e == "response.output_text.delta"]
    assert 1 <= len(text_deltas) <= 8
    from_replay = await responses_stream_final(oai, upstream, replay)
    upstream.json(result)
    from_json = await oai.responses.create(**RESP_ARGS)
    assert response_dump(from_replay) == response_dump(from_json)
    assert from_replay.output_text == from_json.output_text == MESSAGE["content"][0]["text"]
    # The SDK's event-by-event view agrees with the final object too.
    upstream.sse(replay)
    stream = await oai.responses.create(**RESP_ARGS, stream=True)
    streamed_text = "".join(
        [e.delta async for e in stream if e.type == "response.output_text.delta"]
    )
    assert streamed_text == from_json.output_text
    again, _ = run(RESPONSES, {}, replay)
    assert again == result


def test_responses_unfinished_streams() -> None:
    incomplete, _ = run(RESPONSES, {}, responses_stream("response.incomplete"))
    assert incomplete is not None and RESPONSES.unstorable_reason(incomplete, {}) == "truncated"
    assert run(RESPONSES, {}, responses_stream("response.failed"))[0] is None
    assert run(RESPONSES, {}, responses_stream(None))[0] is None
    error = wire([("error", {"type": "error", "code": "server_error", "message": "boom",
                             "param": None, "sequence_number": 99})])  # fmt: skip
    assert run(RESPONSES, {}, responses_stream(None) + error)[0] is None
    refused = response_object(
        output=[{**MESSAGE, "content": [{"type": "refusal", "refusal": "No."}]}]
    )
    assert RESPONSES.unstorable_reason(refused, {}) == "refused"


def test_responses_statefulness() -> None:
    assert RESPONSES.uncacheable_reason(RESP_ARGS) is None  # store omitted: the SDK default
    assert RESPONSES.uncacheable_reason({**RESP_ARGS, "store": False}) is None
    assert RESPONSES.uncacheable_reason({**RESP_ARGS, "store": True}) == "stateful_store"
    assert RESPONSES.uncacheable_reason({**RESP_ARGS, "previous_response_id": RESP_ID}) == (
        "stateful_previous_response"
    )
    assert RESPONSES.uncacheable_reason({**RESP_ARGS, "conversation": "conv_1"}) == (
        "stateful_conversation"
    )
    assert RESPONSES.uncacheable_reason({**RESP_ARGS, "background": True}) == "background"
    assert (
        RESPONSES.uncacheable_reason({**RESP_ARGS, "prompt": {"id": "pmpt_1"}}) == "unpinned_prompt"
    )
    pinned = {**RESP_ARGS, "prompt": {"id": "pmpt_1", "version": "2"}}
    assert RESPONSES.uncacheable_reason(pinned) is None


async def test_responses_key_material_from_real_sdk_requests(
    oai: openai.AsyncOpenAI, upstream: Upstream
) -> None:
    await responses_stream_final(oai, upstream, responses_stream())
    upstream.json(response_object())
    await oai.responses.create(
        model=RESP_MODEL,
        input=[{"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "What is the capital of France?"}]}],
        metadata={"trace": "abc"},
        safety_identifier="user-hash",
        prompt_cache_key="tenant",
        user="u1",
    )  # fmt: skip
    first, second = upstream.bodies[-2:]
    key = canonical(RESPONSES.key_material(first))
    assert canonical(RESPONSES.key_material(second)) == key
    changed = [
        {**first, "model": "gpt-5-mini"},
        {**first, "instructions": "Answer in French."},
        {**first, "input": "What is the capital of Spain?"},
        {**first, "reasoning": {"effort": "high"}},
        {**first, "max_output_tokens": 50},
        {**first, "text": {"format": {"type": "json_object"}}},
        {**first, "include": ["reasoning.encrypted_content"]},
        {**first, "store": False},
        {**first, "temperature": 0.1},
    ]
    keys = {canonical(RESPONSES.key_material(b)) for b in changed}
    assert key not in keys and len(keys) == len(changed)
    assert RESPONSES.temperature(first) == 1.0


# -- OpenAI embeddings ------------------------------------------------------------------------


async def test_embeddings(oai: openai.AsyncOpenAI, upstream: Upstream) -> None:
    upstream.json(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAEAAAEBA"}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    )
    got = await oai.embeddings.create(model="text-embedding-3-small", input="hello", user="u1")
    assert got.data[0].embedding == [1.0, 2.0, 3.0]
    body = upstream.bodies[-1]
    key = canonical(EMBEDDINGS.key_material(body))
    assert canonical(EMBEDDINGS.key_material({**body, "user": "u2"})) == key
    assert canonical(EMBEDDINGS.key_material({**body, "encoding_format": "float"})) != key
    assert canonical(EMBEDDINGS.key_material({**body, "dimensions": 256})) != key
    assert canonical(EMBEDDINGS.key_material({**body, "input": "hello!"})) != key
    vector: Json = {"object": "embedding", "index": 0, "embedding": [0.5]}
    response = {"object": "list", "data": [vector], "model": "m", "usage": {"prompt_tokens": 8}}
    assert EMBEDDINGS.usage(response) == Usage(input=8)
    assert EMBEDDINGS.unstorable_reason(response, body) is None
    assert EMBEDDINGS.unstorable_reason({"error": {"message": "x"}}, body) == "malformed"
    # One vector per input, indexes 0..n-1 each once; anything else is never stored.
    two = {**body, "input": ["a", "b"]}
    vectors = [{**vector, "index": i} for i in (1, 0)]
    assert EMBEDDINGS.unstorable_reason({**response, "data": vectors}, two) is None
    tokens = {**body, "input": [[1, 2], [3]]}
    assert EMBEDDINGS.unstorable_reason({**response, "data": vectors}, tokens) is None
    assert EMBEDDINGS.unstorable_reason(response, {**body, "input": [1, 2, 3]}) is None
    for data, request in [
        ([vector], two),  # fewer
        (vectors, body),  # more
        ([vector, vector], two),  # an index twice
        ([vector, {**vector, "index": 2}], two),  # out of range
        ([{**vector, "index": "0"}], body),  # not an index
        ([], body),
    ]:
        assert EMBEDDINGS.unstorable_reason({**response, "data": data}, request) == (
            "shape_mismatch"
        )
    assert EMBEDDINGS.temperature(body) is None and not EMBEDDINGS.streams
    assert not EMBEDDINGS.is_stream({**body, "stream": True})


# -- live-data and side-effecting server tools -------------------------------------------------

# (tools, as each SDK takes them; the live tools the provider must name)
CLAUDE_TOOLS: list[tuple[list[Json], tuple[str, ...]]] = [
    ([{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}], ("web_search",)),
    (
        [
            {"type": "web_fetch_20260209", "name": "web_fetch"},
            {"type": "code_execution_20260120", "name": "code_execution"},
            {"type": "web_search_20260209", "name": "web_search"},
        ],
        ("web_fetch", "code_execution", "web_search"),
    ),
    (
        [
            {"name": "weather", "input_schema": {"type": "object"}},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "memory_20250818", "name": "memory"},
            {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        ],
        (),
    ),
]
RESPONSES_TOOLS: list[tuple[list[Json], tuple[str, ...]]] = [
    ([{"type": "web_search"}], ("web_search",)),
    ([{"type": "web_search_2025_08_26"}], ("web_search",)),
    ([{"type": "web_search_preview"}, {"type": "web_search_preview_2025_03_11"}], ("web_search",)),
    ([{"type": "file_search", "vector_store_ids": ["vs_1"]}], ("file_search",)),
    (
        [{"type": "mcp", "server_label": "drive", "connector_id": "connector_googledrive"}],
        ("mcp",),
    ),
    ([{"type": "code_interpreter", "container": "cntr_1"}], ("code_interpreter",)),
    ([{"type": "shell", "environment": {"type": "container_reference", "container_id": "c"}}],
     ("shell",)),
    (
        [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "shell", "environment": {"type": "local"}},
            {"type": "shell"},
            {"type": "local_shell"},
            {"type": "apply_patch"},
            {"type": "image_generation"},
            {"type": "computer_use_preview", "display_width": 1024, "display_height": 768,
             "environment": "browser"},
        ],
        (),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("tools", "live"), CLAUDE_TOOLS)
async def test_anthropic_live_tools_as_the_sdk_sends_them(
    claude: anthropic.AsyncAnthropic, upstream: Upstream, tools: list[Json], live: tuple[str, ...]
) -> None:
    await claude.messages.with_raw_response.create(**CLAUDE_ARGS, tools=tools)
    assert ANTHROPIC.live_tools(upstream.bodies[-1]) == live


async def test_anthropic_mcp_servers_and_threads(
    claude: anthropic.AsyncAnthropic, upstream: Upstream
) -> None:
    await claude.beta.messages.with_raw_response.create(
        **CLAUDE_ARGS,
        mcp_servers=[{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}],
        tools=[{"type": "mcp_toolset", "mcp_server_name": "example"}],
        betas=["mcp-client-2025-11-20"],
    )
    assert ANTHROPIC.live_tools(upstream.bodies[-1]) == ("mcp",)
    assert ANTHROPIC.uncacheable_reason(upstream.bodies[-1]) is None
    await claude.beta.messages.with_raw_response.create(**CLAUDE_ARGS, thread={"type": "create"})
    assert ANTHROPIC.uncacheable_reason(upstream.bodies[-1]) == "stateful_thread"
    await claude.beta.messages.with_raw_response.create(
        **CLAUDE_ARGS, thread={"type": "continue", "previous_message_id": "msg_01"}
    )
    assert ANTHROPIC.uncacheable_reason(upstream.bodies[-1]) == "stateful_thread"
    assert ANTHROPIC.live_tools({**CLAUDE_ARGS, "mcp_servers": []}) == ()


async def test_chat_web_search(oai: openai.AsyncOpenAI, upstream: Upstream) -> None:
    await oai.chat.completions.with_raw_response.create(
        **{**CHAT_ARGS, "model": "gpt-4o-search-preview"},
        web_search_options={"search_context_size": "low"},
    )
    assert CHAT.live_tools(upstream.bodies[-1]) == ("web_search",)
    assert CHAT.live_tools({**CHAT_ARGS, "model": "gpt-4o-mini-search-preview-2025-03-11"}) == (
        "web_search",
    )
    assert CHAT.live_tools({**CHAT_ARGS, "model": "gpt-5-search-api"}) == ("web_search",)
    assert CHAT.live_tools({**CHAT_ARGS, "model": "research-model"}) == ()
    assert CHAT.live_tools(CHAT_ARGS) == ()


@pytest.mark.parametrize(("tools", "live"), RESPONSES_TOOLS)
async def test_responses_live_tools_as_the_sdk_sends_them(
    oai: openai.AsyncOpenAI, upstream: Upstream, tools: list[Json], live: tuple[str, ...]
) -> None:
    await oai.responses.with_raw_response.create(**RESP_ARGS, tools=tools)
    assert RESPONSES.live_tools(upstream.bodies[-1]) == live
    assert EMBEDDINGS.live_tools({"model": "m", "input": "x", "tools": tools}) == ()


# -- SSE parsing ------------------------------------------------------------------------------


def test_sse_parser_splits_line_endings_comments_multiline() -> None:
    stream = (
        b": keep-alive\r\n\r\n"
        b"event: first\r\ndata: line one\r\ndata: line two\r\n\r\n"
        b"data:no-space\rdata:  two spaces\r\r"
        b'id: 7\nretry: 100\nevent: caf\xc3\xa9\n: comment inside\ndata: {"x": 1}\n\n'
        b"event: empty\ndata\n\n"
    )
    expected = [
        (None, ""),
        ("first", "line one\nline two"),
        (None, "no-space\n two spaces"),
        ("café", '{"x": 1}'),
        ("empty", ""),
    ]
    for size in range(1, len(stream) + 1):
        parser = SSEParser()
        got: list[tuple[str | None, str, bytes]] = []
        for i in range(0, len(stream), size):
            got.extend(parser.feed(stream[i : i + size]))
        assert [(e, d) for e, d, _ in got] == expected, size
        assert b"".join(raw for _, _, raw in got) == stream, size
        assert not parser.pending


def test_sse_parser_holds_an_unterminated_event() -> None:
    parser = SSEParser()
    assert list(parser.feed(b"event: a\ndata: 1\n\nevent: b\ndata: 2\n")) == [
        ("a", "1", b"event: a\ndata: 1\n\n")
    ]
    assert parser.pending and parser.remainder() == b"event: b\ndata: 2\n"
    assert list(parser.feed(b"\n")) == [("b", "2", b"event: b\ndata: 2\n\n")]
    assert not parser.pending and parser.remainder() == b""


def test_sse_encoder_round_trips() -> None:
    raw = encode("message_start", "a\nb\r\nc") + encode(None, "[DONE]")
    assert raw == b"event: message_start\ndata: a\ndata: b\ndata: c\n\ndata: [DONE]\n\n"
    assert [(e, d) for e, d, _ in SSEParser().feed(raw)] == [
        ("message_start", "a\nb\nc"),
        (None, "[DONE]"),
    ]


def test_replay_variant_names_what_replay_depends_on() -> None:
    completion, _ = run(CHAT, {}, chat_text_stream())
    assert completion is not None
    plain = {**CHAT_ARGS, "stream": True}
    usage = {**plain, "stream_options": {"include_usage": True}}
    other = {**plain, "metadata": {"a": "b"}, "stream_options": {"include_obfuscation": False}}
    assert CHAT.replay_variant(plain) == CHAT.replay_variant(other) != CHAT.replay_variant(usage)
    assert replayed(CHAT, completion, plain) == replayed(CHAT, completion, other)
    assert replayed(CHAT, completion, plain) != replayed(CHAT, completion, usage)
    message, _ = run(ANTHROPIC, {}, claude_stream())
    assert message is not None
    assert ANTHROPIC.replay_variant(CLAUDE_ARGS) == ANTHROPIC.replay_variant(
        {**CLAUDE_ARGS, "x": 1}
    )
    assert replayed(ANTHROPIC, message, CLAUDE_ARGS) == replayed(ANTHROPIC, message, {})
