"""The upstream simulator, driven as a real process by the official SDKs."""

# The SDKs' response types are wide unions; the assertions below check the shapes at run time.
# mypy: disable-error-code="union-attr, index, arg-type, operator"

from __future__ import annotations

import base64
import json
import math
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import numpy as np
import openai
import pytest
from aiohttp.test_utils import TestServer

from llmcache.upstream_sim import create_app
from llmcache.upstream_sim.prices import PRICES, price_for

KEY = "sk-test-simulator"
MODEL_A = "claude-haiku-4-5"
MODEL_O = "gpt-4o"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
OPENAI_TOOL: Any = {
    "type": "function",
    "function": {
        "name": WEATHER_TOOL["name"],
        "description": WEATHER_TOOL["description"],
        "parameters": WEATHER_TOOL["input_schema"],
    },
}


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sim") / "stderr.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcache", "upstream-sim", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=15)
    except queue.Empty:
        proc.kill()
        pytest.fail("the simulator did not report its address")
    assert line.startswith("listening on http://127.0.0.1:"), line
    url = line.split()[-1]
    yield url
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert "Traceback" not in log.read_text()  # every fault injected above was on purpose


@pytest.fixture
def ac(sim_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim_url, api_key=KEY, max_retries=0)


@pytest.fixture
def oc(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim_url + "/v1", api_key=KEY, max_retries=0)


def _blocks(message: Any) -> list[dict[str, Any]]:
    """Content blocks as data (the stream helper returns Parsed* subclasses)."""
    return [b.model_dump(exclude={"parsed_output"}) for b in message.content]


def _ask(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_A,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


# ---------------------------------------------------------------- Anthropic


def test_anthropic_answer_is_a_function_of_the_request(ac: anthropic.Anthropic) -> None:
    first = ac.messages.create(**_ask("Explain caching in two lines."))
    again = ac.messages.create(**_ask("Explain caching in two lines.", metadata={"user_id": "u1"}))
    # The 2.x SDK no longer has a temperature argument; the API still takes it.
    warmer = ac.messages.create(
        **_ask("Explain caching in two lines."), extra_body={"temperature": 0.2}
    )
    other = ac.messages.create(**_ask("Explain batching in two lines."))
    assert first.id.startswith("msg_") and first.id != again.id
    assert first.type == "message" and first.role == "assistant" and first.model == MODEL_A
    assert first.stop_reason == "end_turn"
    text = first.content[0].text
    assert len(text.split()) >= 20
    assert again.content == first.content and again.usage == first.usage
    assert warmer.content[0].text != text
    assert other.content[0].text != text
    assert first.usage.output_tokens == len(text.split())
    counted = ac.messages.count_tokens(
        model=MODEL_A, messages=[{"role": "user", "content": "Explain caching in two lines."}]
    )
    assert counted.input_tokens == first.usage.input_tokens > 0


def test_anthropic_stream_equals_plain(ac: anthropic.Anthropic) -> None:
    plain = ac.messages.create(**_ask("Stream me something"))
    with ac.messages.stream(**_ask("Stream me something")) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) > 3
    assert "".join(deltas) == plain.content[0].text
    assert _blocks(final) == _blocks(plain)
    assert final.stop_reason == plain.stop_reason and final.usage == plain.usage
    events = [e.type for e in ac.messages.create(**_ask("Stream me something"), stream=True)]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events[1] == "content_block_start" and events[-2] == "message_delta"
    assert "content_block_stop" in events


def test_anthropic_max_tokens_truncates(ac: anthropic.Anthropic) -> None:
    plain = ac.messages.create(**{**_ask("A long answer please"), "max_tokens": 7})
    with ac.messages.stream(**{**_ask("A long answer please"), "max_tokens": 7}) as stream:
        streamed = stream.get_final_message()
    full = ac.messages.create(**_ask("A long answer please"))
    assert full.content[0].text.startswith(plain.content[0].text)
    assert plain.stop_reason == streamed.stop_reason == "max_tokens"
    assert plain.usage.output_tokens == streamed.usage.output_tokens == 7
    assert _blocks(streamed) == _blocks(plain)


def test_anthropic_stop_sequence(ac: anthropic.Anthropic) -> None:
    full = ac.messages.create(**_ask("Stop early"))
    text = full.content[0].text
    stop = text.split()[5]
    cut = ac.messages.create(**_ask("Stop early", stop_sequences=[stop]))
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert cut.content[0].text == text[: text.index(stop)]


def test_anthropic_tool_use_plain_and_streamed(ac: anthropic.Anthropic) -> None:
    request = _ask("Please use the tool for Paris", tools=[WEATHER_TOOL])
    plain = ac.messages.create(**request)
    assert plain.stop_reason == "tool_use"
    tool = plain.content[-1]
    assert tool.type == "tool_use" and tool.name == "get_weather" and tool.id.startswith("toolu_")
    assert isinstance(tool.input, dict) and isinstance(tool.input["city"], str)
    assert isinstance(tool.input["days"], int)
    with ac.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert _blocks(final) == _blocks(plain) and final.stop_reason == "tool_use"
    # No trigger phrase: a text answer even with tools offered.
    assert (
        ac.messages.create(**_ask("What is the weather?", tools=[WEATHER_TOOL])).stop_reason
        == "end_turn"
    )


def test_anthropic_thinking_block_first(ac: anthropic.Anthropic) -> None:
    request = _ask(
        "Think first", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048}
    )
    plain = ac.messages.create(**request)
    assert [b.type for b in plain.content] == ["thinking", "text"]
    thinking = plain.content[0]
    assert thinking.thinking and thinking.signature
    with ac.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert _blocks(final) == _blocks(plain)
    with pytest.raises(anthropic.BadRequestError):
        ac.messages.create(
            **_ask("x", max_tokens=1500, thinking={"type": "enabled", "budget_tokens": 2048})
        )


def test_anthropic_prompt_caching(ac: anthropic.Anthropic) -> None:
    document = "Reference manual paragraph about cache layers and eviction. " * 350  # ~5300 tokens
    system = [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}]
    first = ac.messages.create(**_ask("Question one?", system=system))
    second = ac.messages.create(**_ask("Question two?", system=system))
    written = first.usage.cache_creation_input_tokens
    assert written and written > 4096 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens < 20
    # Below the model's minimum (4096 for Haiku 4.5) nothing is cached.
    short = [
        {"type": "text", "text": "Short system prompt.", "cache_control": {"type": "ephemeral"}}
    ]
    ac.messages.create(**_ask("q", system=short))
    assert ac.messages.create(**_ask("q", system=short)).usage.cache_read_input_tokens == 0


def test_anthropic_errors(ac: anthropic.Anthropic, sim_url: str) -> None:
    cases = [
        (529, anthropic.OverloadedError),
        (500, anthropic.InternalServerError),
        (429, anthropic.RateLimitError),
        (400, anthropic.BadRequestError),
    ]
    for status, kind in cases:
        with pytest.raises(kind) as caught:
            ac.messages.create(**_ask("hi"), extra_headers={"x-sim-status": str(status)})
        err = caught.value
        assert err.status_code == status
        assert err.body["type"] == "error" and err.body["error"]["type"]
        assert err.response.headers["request-id"].startswith("req_")
        if status in (429, 529):
            assert err.response.headers["retry-after"] == "1"
    assert isinstance(caught.value, anthropic.APIStatusError)
    missing = httpx.post(
        sim_url + "/v1/messages", json=_ask("hi"), headers={"anthropic-version": "2023-06-01"}
    )
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    bad = httpx.post(
        sim_url + "/v1/messages",
        content=b"{nope",
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        ac.messages.create(
            model=MODEL_A, messages=[{"role": "user", "content": "no max tokens"}], max_tokens=0
        )


def test_anthropic_stream_faults(ac: anthropic.Anthropic) -> None:
    with pytest.raises((anthropic.APIConnectionError, httpx.TransportError)):  # noqa: SIM117
        with ac.messages.stream(
            **_ask("cut me off"), extra_headers={"x-sim-stream-fault": "disconnect"}
        ) as stream:
            stream.get_final_message()
    with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
        with ac.messages.stream(
            **_ask("fail midway"), extra_headers={"x-sim-stream-fault": "error"}
        ) as stream:
            stream.get_final_message()
    assert caught.value.body["error"]["type"] == "overloaded_error"


# ---------------------------------------------------------------- OpenAI chat


def _chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL_O, "messages": [{"role": "user", "content": text}], **extra}


def test_chat_plain_and_stream(oc: openai.OpenAI) -> None:
    plain = oc.chat.completions.create(**_chat("Tell me about Redis"))
    again = oc.chat.completions.create(**_chat("Tell me about Redis", user="someone", store=False))
    hotter = oc.chat.completions.create(**_chat("Tell me about Redis", temperature=1.5))
    assert plain.id.startswith("chatcmpl-") and plain.id != again.id
    assert plain.object == "chat.completion"
    choice = plain.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert again.choices[0].message.content == choice.message.content
    assert hotter.choices[0].message.content != choice.message.content
    assert plain.usage is not None and plain.usage.completion_tokens == len(
        (choice.message.content or "").split()
    )
    stream = oc.chat.completions.create(
        **_chat("Tell me about Redis"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    truncated = oc.chat.completions.create(**_chat("Tell me about Redis", max_completion_tokens=5))
    assert truncated.choices[0].finish_reason == "length" and truncated.usage.completion_tokens == 5


def test_chat_tool_calls(oc: openai.OpenAI) -> None:
    request = _chat("Use the tool for Oslo", tools=[OPENAI_TOOL])
    plain = oc.chat.completions.create(**request)
    choice = plain.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert set(json.loads(call.function.arguments)) == {"city", "days"}
    arguments = ""
    finish = None
    for chunk in oc.chat.completions.create(**request, stream=True):
        delta = chunk.choices[0].delta
        for tc in delta.tool_calls or []:
            arguments += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert arguments == call.function.arguments and finish == "tool_calls"
    followup = oc.chat.completions.create(
        model=MODEL_O,
        tools=[OPENAI_TOOL],
        messages=[
            {"role": "user", "content": "Use the tool for Oslo"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert followup.choices[0].finish_reason == "stop"


def test_chat_errors_and_faults(oc: openai.OpenAI, sim_url: str) -> None:
    for status, kind in [
        (500, openai.InternalServerError),
        (429, openai.RateLimitError),
        (400, openai.BadRequestError),
    ]:
        with pytest.raises(kind) as caught:
            oc.chat.completions.create(**_chat("hi"), extra_headers={"x-sim-status": str(status)})
        assert caught.value.status_code == status
        body: Any = caught.value.body
        assert set(body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.APIConnectionError):
        list(
            oc.chat.completions.create(
                **_chat("cut"), stream=True, extra_headers={"x-sim-stream-fault": "disconnect"}
            )
        )
    with pytest.raises(openai.APIError):
        list(
            oc.chat.completions.create(
                **_chat("err"), stream=True, extra_headers={"x-sim-stream-fault": "error"}
            )
        )
    missing = httpx.post(sim_url + "/v1/chat/completions", json=_chat("hi"))
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    bad = httpx.post(
        sim_url + "/v1/chat/completions", content=b"[", headers={"authorization": f"Bearer {KEY}"}
    )
    assert bad.status_code == 400 and "error" in bad.json()


def test_chat_prompt_caching(oc: openai.OpenAI) -> None:
    system = "You are a meticulous assistant that follows the style guide. " * 90  # ~1400 tokens
    first = oc.chat.completions.create(
        model=MODEL_O,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "one"}],
    )
    second = oc.chat.completions.create(
        model=MODEL_O,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "two"}],
    )
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens
    short = oc.chat.completions.create(**_chat("short"))
    short2 = oc.chat.completions.create(**_chat("short"))
    assert (
        short.usage.prompt_tokens_details.cached_tokens
        == short2.usage.prompt_tokens_details.cached_tokens
        == 0
    )


# ---------------------------------------------------------------- OpenAI responses


def test_responses_plain_and_stream(oc: openai.OpenAI) -> None:
    plain = oc.responses.create(
        model=MODEL_O, input="Summarise prompt caching", instructions="Be brief"
    )
    assert (
        plain.id.startswith("resp_") and plain.status == "completed" and plain.object == "response"
    )
    assert (
        plain.output_text
        and plain.usage is not None
        and plain.usage.output_tokens == len(plain.output_text.split())
    )
    events: list[Any] = list(
        oc.responses.create(
            model=MODEL_O, input="Summarise prompt caching", instructions="Be brief", stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == plain.output_text
    done = events[-1].response
    assert done.output_text == plain.output_text and done.usage == plain.usage
    with oc.responses.stream(
        model=MODEL_O, input="Summarise prompt caching", instructions="Be brief"
    ) as stream:
        assert stream.get_final_response().output_text == plain.output_text
    assert oc.responses.retrieve(plain.id).output_text == plain.output_text
    chained = oc.responses.create(
        model=MODEL_O, input="And shorter?", previous_response_id=plain.id
    )
    assert chained.previous_response_id == plain.id and chained.output_text


def test_responses_incomplete_tools_and_faults(oc: openai.OpenAI) -> None:
    short = oc.responses.create(model=MODEL_O, input="Write at length", max_output_tokens=16)
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"
    events: list[Any] = list(
        oc.responses.create(
            model=MODEL_O, input="Write at length", max_output_tokens=16, stream=True
        )
    )
    assert events[-1].type == "response.incomplete"
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["input_schema"],
    }
    called = oc.responses.create(model=MODEL_O, input="Use the tool for Rome", tools=[tool])
    call = called.output[-1]
    assert (
        call.type == "function_call"
        and call.name == "get_weather"
        and json.loads(call.arguments)["city"]
    )
    streamed: list[Any] = list(
        oc.responses.create(model=MODEL_O, input="Use the tool for Rome", tools=[tool], stream=True)
    )
    args = "".join(e.delta for e in streamed if e.type == "response.function_call_arguments.delta")
    assert args == call.arguments
    failed: list[Any] = list(
        oc.responses.create(
            model=MODEL_O, input="x", stream=True, extra_headers={"x-sim-stream-fault": "error"}
        )
    )
    assert failed[-1].type == "response.failed" and failed[-1].response.status == "failed"
    reasoning = oc.responses.create(model="gpt-5-mini", input="Think")
    assert (
        reasoning.output[0].type == "reasoning"
        and reasoning.usage.output_tokens_details.reasoning_tokens > 0
    )
    with pytest.raises(openai.APIConnectionError):
        list(
            oc.responses.create(
                model=MODEL_O,
                input="x",
                stream=True,
                extra_headers={"x-sim-stream-fault": "disconnect"},
            )
        )


# ---------------------------------------------------------------- embeddings, models, stats


def test_embeddings_base64_and_float(oc: openai.OpenAI, sim_url: str) -> None:
    texts = ["how do I flush the cache", "how do I flush the cache?", "banana bread recipe"]
    default = oc.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK asks base64
    floats = oc.embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    vecs = np.array([d.embedding for d in default.data])
    assert vecs.shape == (3, 1536)
    assert np.allclose(vecs, np.array([d.embedding for d in floats.data]))
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert default.usage.prompt_tokens > 0
    short = oc.embeddings.create(model="text-embedding-3-small", input="one text", dimensions=64)
    assert len(short.data[0].embedding) == 64 and math.isclose(
        float(np.linalg.norm(short.data[0].embedding)), 1.0, rel_tol=1e-5
    )
    raw = httpx.post(
        sim_url + "/v1/embeddings",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "text-embedding-3-small", "input": [[1, 2, 3]], "encoding_format": "base64"},
    ).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert decoded.shape == (1536,) and raw["usage"]["prompt_tokens"] == 3
    with pytest.raises(openai.BadRequestError):
        oc.embeddings.create(model="text-embedding-3-small", input="")
    too_long = "word " * 40_000  # ~50k tokens: over the 8192 one input may have
    with pytest.raises(openai.BadRequestError) as err:
        oc.embeddings.create(model="text-embedding-3-small", input=["fine", too_long])
    assert err.value.type == "invalid_request_error" and err.value.code is None
    assert "maximum context length is 8192 tokens" in err.value.message


def test_models_both_shapes(ac: anthropic.Anthropic, oc: openai.OpenAI) -> None:
    claude = [m.id for m in ac.models.list()]
    assert "claude-sonnet-4-5-20250929" in claude
    assert MODEL_O in [m.id for m in oc.models.list()]


def test_stats_count_everything_and_reset(sim_url: str, oc: openai.OpenAI) -> None:
    assert httpx.post(sim_url + "/_sim/reset").status_code == 200
    oc.chat.completions.create(**_chat("count me"))
    with pytest.raises(openai.InternalServerError):
        oc.chat.completions.create(**_chat("count me"), extra_headers={"x-sim-status": "500"})
    httpx.post(sim_url + "/v1/embeddings", json={})  # no key: 401, still counted
    assert (
        httpx.get(sim_url + "/v1/nowhere", headers={"authorization": f"Bearer {KEY}"}).status_code
        == 404
    )
    stats = httpx.get(sim_url + "/_sim/stats").json()
    assert stats == {
        "requests": {"POST /v1/chat/completions": 2, "POST /v1/embeddings": 1, "unmatched": 1},
        "total": 4,
    }


async def test_in_process_app() -> None:
    server = TestServer(create_app(ttft_ms=0.0, ms_per_token=0.0))
    await server.start_server()
    try:
        client = openai.AsyncOpenAI(
            base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0
        )
        stream = await client.chat.completions.create(**_chat("in process"), stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        plain = await client.chat.completions.create(**_chat("in process"))
        assert text == plain.choices[0].message.content
        await client.close()
    finally:
        await server.close()


def test_price_table() -> None:
    assert price_for("claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert price_for("gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert price_for("gpt-5-mini") is PRICES["gpt-5-mini"] and price_for("unknown-model") is None
    opus = PRICES["claude-opus-4-5"]
    assert (opus.input, opus.output, opus.cache_read, opus.cache_write) == (5.0, 25.0, 0.5, 6.25)
    assert PRICES["gpt-5"].cache_read == 0.125 and PRICES["gpt-4o"].cache_read == 1.25
