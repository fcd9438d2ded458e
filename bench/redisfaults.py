"""``llmcache bench redis-faults``: Redis killed, restarted and frozen under load, every
answer checked.

Real processes: the upstream simulator, one ``redis-server`` and two sidecars sharing it:
``a`` with the default layers (L1 + L2), ``b`` with the L1 off, so that every hit of ``b``
is a Redis read and every fault is felt. Clients of the official async SDKs (Anthropic and
OpenAI alternating, half on each sidecar, SDK retries off: what a sidecar answers is what a
client sees) ask a seeded set of prompts with a Zipf popularity (so there are hits) and a
share of fresh prompts (so misses, and Redis writes, never stop), a quarter of them
streamed. Meanwhile a schedule kills Redis (SIGKILL), restarts it empty on the same port,
freezes it (SIGSTOP: the kernel still accepts connections, nothing answers) and thaws it
(SIGCONT), in equal phases after a baseline.

Every answer is compared with the simulator's answer to the same request, asked directly
(the simulator is deterministic). Exit status 1 on any client error, wrong answer, upstream
call beyond one per miss, or API key in a sidecar's log.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import platform
import random
import signal
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .procs import Proc, RedisProc, llmcache

if TYPE_CHECKING:
    import anthropic
    import openai

RESULTS = Path(__file__).resolve().parent / "results"
FAULTS = ("killed", "restarted", "frozen", "thawed")  # one cycle, after the baseline
SIDECARS = {"a": {}, "b": {"exact": {"l1MaxEntries": 0}}}  # policy of each
ANTHROPIC_MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "gpt-4o-mini"
KEYS = {"anthropic": "sk-ant-bench-faults-0000", "openai": "sk-bench-faults-0000"}
ZERO_LATENCY = {"x-sim-ttft-ms": "0", "x-sim-ms-per-token": "0"}
MAX_TOKENS = 1024  # above any answer to these prompts: a truncated answer is never cached
REQUEST_TIMEOUT_S = 30.0  # a request slower than this is a hang, counted as an error

CONTEXTS = (
    "a payment service", "a search backend", "a batch ETL job", "a mobile app API",
    "a CI pipeline", "a message broker", "a feature store", "an auth gateway",
)  # fmt: skip
SUBJECTS = (
    "a retry budget", "a connection pool", "a circuit breaker", "a write-ahead log",
    "a bloom filter", "request hedging", "a token bucket", "consistent hashing",
    "a read replica", "a dead-letter queue",
)  # fmt: skip
QUALITIES = ("tail latency", "throughput", "cost", "availability", "correctness", "memory use")


# -- requests and answers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    sdk: str  # anthropic | openai
    prompt: str
    stream: bool
    fresh: bool


@dataclass(frozen=True)
class Answer:
    text: str
    stop: str


class IncompleteAnswer(Exception):
    """A stream that ended without its terminal event."""


def prompt_set(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"Q{i}: in {rng.choice(CONTEXTS)}, how does {rng.choice(SUBJECTS)} change "
        f"{rng.choice(QUALITIES)}? Answer briefly."
        for i in range(n)
    ]


class Draw:
    """One client's seeded sequence of asks: Zipf(1.1) over the prompt set, plus fresh ones."""

    def __init__(
        self, prompts: list[str], seed: int, client: int, sdk: str, fresh: float, stream: float
    ) -> None:
        self.rng = random.Random(f"{seed}:{client}")
        self.prompts, self.client, self.sdk = prompts, client, sdk
        self.fresh, self.stream = fresh, stream
        self.cum = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(prompts))))
        self.count = 0

    def next(self) -> Ask:
        stream = self.rng.random() < self.stream
        if self.rng.random() < self.fresh:
            self.count += 1
            question = self.rng.choice(self.prompts).split(": ", 1)[1]
            prompt = f"Fresh F{self.client}.{self.count}: {question}"
            return Ask(self.sdk, prompt, stream, True)
        (prompt,) = self.rng.choices(self.prompts, cum_weights=self.cum)
        return Ask(self.sdk, prompt, stream, False)


Call = Callable[[Any, Ask, "Mapping[str, str] | None"], Awaitable[tuple[Answer, Mapping[str, str]]]]


async def ask_anthropic(
    client: anthropic.AsyncAnthropic, ask: Ask, headers: Mapping[str, str] | None = None
) -> tuple[Answer, Mapping[str, str]]:
    if not ask.stream:
        raw = await client.messages.with_raw_response.create(
            model=ANTHROPIC_MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": ask.prompt}],
            extra_headers=dict(headers or {}),
        )
        message = await raw.parse()
        text = "".join(block.text for block in message.content if block.type == "text")
        return Answer(text, str(message.stop_reason)), raw.headers
    streamed = await client.messages.with_raw_response.create(
        model=ANTHROPIC_MODEL,
        max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": ask.prompt}],
        stream=True,
        extra_headers=dict(headers or {}),
    )
    parts, stop, ended = [], "", False
    async for event in await streamed.parse():
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            parts.append(event.delta.text)
        elif event.type == "message_delta":
            stop = str(event.delta.stop_reason)
        elif event.type == "message_stop":
            ended = True
    if not ended:
        raise IncompleteAnswer("stream ended without message_stop")
    return Answer("".join(parts), stop), streamed.headers


async def ask_openai(
    client: openai.AsyncOpenAI, ask: Ask, headers: Mapping[str, str] | None = None
) -> tuple[Answer, Mapping[str, str]]:
    if not ask.stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": ask.prompt}],
            extra_headers=dict(headers or {}),
        )
        completion = raw.parse()  # openai's raw responses parse synchronously
        choice = completion.choices[0]
        return Answer(choice.message.content or "", str(choice.finish_reason)), raw.headers
    streamed = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": ask.prompt}],
        stream=True,
        extra_headers=dict(headers or {}),
    )
    parts, stop = [], ""
    async for chunk in streamed.parse():
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            stop = c.finish_reason or stop
    if not stop:
        raise IncompleteAnswer("stream ended without a finish_reason")
    return Answer("".join(parts), stop), streamed.headers


CALLS: dict[str, Call] = {"anthropic": ask_anthropic, "openai": ask_openai}


def sdk_client(sdk: str, base: str) -> Any:
    """An async SDK client on ``base`` (a sidecar or the simulator), retries off."""
    import anthropic
    import openai

    if sdk == "anthropic":
        return anthropic.AsyncAnthropic(
            api_key=KEYS[sdk], base_url=base, max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
    return openai.AsyncOpenAI(
        api_key=KEYS[sdk], base_url=f"{base}/v1", max_retries=0, timeout=REQUEST_TIMEOUT_S
    )


class Oracle:
    """The simulator's own answer to each distinct request, asked once, at zero latency."""

    def __init__(self, sim: str) -> None:
        self.clients = {sdk: sdk_client(sdk, sim) for sdk in CALLS}
        self.answers: dict[tuple[str, str], asyncio.Task[Answer]] = {}

    def expected(self, ask: Ask) -> asyncio.Task[Answer]:
        key = (ask.sdk, ask.prompt)
        task = self.answers.get(key)
        if task is None:
            task = self.answers[key] = asyncio.ensure_future(self._ask(ask))
        return task

    async def warm_up(self) -> None:
        """One call of each kind, before the clock starts: the SDKs build their response
        models on first use, which takes a loaded machine a good part of a second."""
        for sdk in CALLS:
            for stream in (False, True):
                ask = Ask(sdk, "Warm-up: say hello.", stream, True)
                await CALLS[sdk](self.clients[sdk], ask, ZERO_LATENCY)

    async def _ask(self, ask: Ask) -> Answer:
        plain = Ask(ask.sdk, ask.prompt, False, ask.fresh)
        answer, _ = await CALLS[ask.sdk](self.clients[ask.sdk], plain, ZERO_LATENCY)
        return answer

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    client: int
    sidecar: str
    sdk: str
    stream: bool
    fresh: bool
    start: float  # seconds since the run began
    end: float = 0.0
    cache: str = ""  # x-llmcache: hit | miss | bypass
    layer: str = ""  # x-llmcache-layer: l1 | l2 | coalesced
    verdict: str = "error"  # correct | wrong | error | unjudged (the oracle call failed)
    detail: str = ""


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0
    faults_at_start: dict[str, float] = field(default_factory=dict)  # sidecar -> counter


@dataclass
class Config:
    seconds: float = 60.0
    cycles: int = 2
    clients: int = 32
    prompts: int = 200
    fresh: float = 0.10
    stream: float = 0.25
    seed: int = 7
    ttft_ms: float = 20.0
    ms_per_token: float = 1.0


async def client_loop(
    index: int,
    sidecar: str,
    client: Any,
    draw: Draw,
    oracle: Oracle,
    t0: float,
    deadline: float,
    out: list[Outcome],
) -> None:
    call = CALLS[draw.sdk]
    while time.perf_counter() < deadline:
        ask = draw.next()
        o = Outcome(index, sidecar, ask.sdk, ask.stream, ask.fresh, time.perf_counter() - t0)
        out.append(o)
        try:
            answer, headers = await call(client, ask, None)
        except Exception as exc:
            o.end, o.detail = time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:300]
            continue
        o.end = time.perf_counter() - t0
        o.cache, o.layer = headers.get("x-llmcache", ""), headers.get("x-llmcache-layer", "")
        try:
            expected = await oracle.expected(ask)
        except Exception as exc:
            o.verdict, o.detail = "unjudged", f"oracle: {type(exc).__name__}: {exc}"[:300]
            continue
        o.verdict = "correct" if answer == expected else "wrong"
        if answer != expected:
            o.detail = difference(answer, expected)


def difference(got: Answer, expected: Answer) -> str:
    """Where a wrong answer departs from the expected one, briefly."""
    if got.stop != expected.stop:
        return f"stop reason {got.stop!r}, expected {expected.stop!r}"
    i = next(
        (i for i, (a, b) in enumerate(zip(got.text, expected.text, strict=False)) if a != b),
        min(len(got.text), len(expected.text)),
    )
    return f"text differs at {i}: {got.text[i : i + 60]!r}, expected {expected.text[i : i + 60]!r}"


def redis_faults(url: str) -> dict[str, float]:
    """A sidecar's ``llmcache_redis_faults_total`` by ``op/reason``, from its ``/metrics``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        f"{sample.labels['op']}/{sample.labels['reason']}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "llmcache_redis_faults_total"
    }


def fault_totals(sidecars: dict[str, str]) -> dict[str, float]:
    return {name: sum(redis_faults(url).values()) for name, url in sidecars.items()}


class RedisBox:
    """The one Redis of the run, through its deaths and restarts (always on one port)."""

    def __init__(self) -> None:
        self.proc = RedisProc()
        self.port = self.proc.port
        self.frozen = False

    def act(self, phase: str) -> None:
        if phase == "killed":
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.stop()  # reaps it and removes its directory
        elif phase == "restarted":
            self.proc = RedisProc(port=self.port)  # empty: no persistence
        elif phase == "frozen":
            self.proc.popen.send_signal(signal.SIGSTOP)
            self.frozen = True
        elif phase == "thawed":
            self.proc.popen.send_signal(signal.SIGCONT)
            self.frozen = False

    def stop(self) -> None:
        if self.frozen:
            self.proc.popen.send_signal(signal.SIGCONT)
        self.proc.stop()


def schedule(
    redis: RedisBox, sidecars: dict[str, str], config: Config, t0: float, phases: list[Phase]
) -> None:
    """The fault schedule, on its own thread: the event loop of 32 SDK clients is too busy
    to keep time. Counters are read just before each fault, so a phase's faults are its own."""
    names = ["baseline", *FAULTS * config.cycles]
    length = config.seconds / len(names)
    for k, name in enumerate(names):
        time.sleep(max(0.0, k * length - (time.perf_counter() - t0)))
        counts = fault_totals(sidecars)
        redis.act(name)
        now = time.perf_counter() - t0 if k else 0.0
        if phases:
            phases[-1].end = now
        phases.append(Phase(name, now, faults_at_start=counts))


async def sim_total(session: aiohttp.ClientSession, sim: str) -> int:
    async with session.get(f"{sim}/_sim/stats") as resp:
        return int((await resp.json())["total"])


async def drive(
    config: Config, sim: str, sidecars: dict[str, str], redis: RedisBox
) -> dict[str, Any]:
    prompts = prompt_set(config.prompts, config.seed)
    oracle = Oracle(sim)
    outcomes: list[Outcome] = []
    phases: list[Phase] = []
    names = sorted(sidecars)
    clients = []
    for i in range(config.clients):
        sidecar, sdk = names[i % len(names)], ("anthropic", "openai")[(i // len(names)) % 2]
        base = sidecars[sidecar] + ("/anthropic" if sdk == "anthropic" else "/openai")
        draw = Draw(prompts, config.seed, i, sdk, config.fresh, config.stream)
        clients.append((i, sidecar, sdk_client(sdk, base), draw))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await oracle.warm_up()
        upstream_before = await sim_total(session, sim)
        t0 = time.perf_counter()
        deadline = t0 + config.seconds
        loops = [
            client_loop(i, sidecar, client, draw, oracle, t0, deadline, outcomes)
            for i, sidecar, client, draw in clients
        ]
        timer = asyncio.to_thread(schedule, redis, sidecars, config, t0, phases)
        await asyncio.gather(timer, *loops)
        phases[-1].end = config.seconds
        await asyncio.gather(*oracle.answers.values(), return_exceptions=True)
        upstream_calls = await sim_total(session, sim) - upstream_before - len(oracle.answers)
        stats = {}
        for name, url in sidecars.items():
            async with session.get(f"{url}/stats") as resp:
                stats[name] = await resp.json()
    for _, _, client, _ in clients:
        await client.close()
    await oracle.close()
    by_kind = {name: redis_faults(url) for name, url in sidecars.items()}
    return summarise(config, phases, outcomes, by_kind, upstream_calls, stats)


# -- figures ------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def _figures(rows: list[Outcome]) -> dict[str, Any]:
    latencies = sorted((o.end - o.start) * 1000 for o in rows if o.verdict != "error")
    layers = Counter(o.layer for o in rows if o.cache == "hit")
    return {
        "requests": len(rows),
        "errors": sum(o.verdict == "error" for o in rows),
        "wrong": sum(o.verdict == "wrong" for o in rows),
        "unjudged": sum(o.verdict == "unjudged" for o in rows),
        "hits": sum(layers.values()),
        "l1": layers.get("l1", 0),
        "l2": layers.get("l2", 0),
        "coalesced": layers.get("coalesced", 0),
        "misses": sum(o.cache == "miss" for o in rows),
        "p50_ms": round(_pct(latencies, 0.50), 2),
        "p99_ms": round(_pct(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else 0.0,
    }


def summarise(
    config: Config,
    phases: list[Phase],
    outcomes: list[Outcome],
    faults_by_kind: dict[str, dict[str, float]],
    upstream_calls: int,
    stats: dict[str, Any],
) -> dict[str, Any]:
    final_faults = {s: sum(kinds.values()) for s, kinds in faults_by_kind.items()}
    starts = [p.start for p in phases]
    by_phase: list[list[Outcome]] = [[] for _ in phases]
    for o in outcomes:
        by_phase[max(0, bisect.bisect_right(starts, o.start) - 1)].append(o)
    rows = []
    for k, (phase, mine) in enumerate(zip(phases, by_phase, strict=True)):
        after = phases[k + 1].faults_at_start if k + 1 < len(phases) else final_faults
        row: dict[str, Any] = {
            "phase": phase.name,
            "start_s": round(phase.start, 2),
            "seconds": round(phase.end - phase.start, 2),
            **_figures(mine),
            "redis_faults": {
                s: int(after[s] - phase.faults_at_start[s]) for s in sorted(final_faults)
            },
        }
        if phase.name in ("restarted", "thawed"):
            # From the restart (or SIGCONT) to the end of the first L2 hit begun after it.
            row["l2_back_s"] = {
                s: min(
                    (round(o.end - phase.start, 3) for o in outcomes
                     if o.sidecar == s and o.layer == "l2" and o.start >= phase.start),
                    default=None,
                )
                for s in sorted(final_faults)
            }  # fmt: skip
        rows.append(row)
    total = _figures(outcomes)
    return {
        "config": asdict(config),
        "phases": rows,
        "total": total,
        "by_sidecar": {s: _figures([o for o in outcomes if o.sidecar == s]) for s in sorted(stats)},
        "upstream_calls": upstream_calls,
        "client_misses": total["misses"],
        "redis_faults": {s: int(v) for s, v in final_faults.items()},
        "redis_faults_by_kind": {
            s: {kind: int(v) for kind, v in sorted(kinds.items())}
            for s, kinds in faults_by_kind.items()
        },
        "sidecar_stats": stats,
        "api_keys_in_logs": 0,  # the caller, who holds the logs, counts them
        "error_examples": [asdict(o) for o in outcomes if o.verdict == "error"][:10],
        "wrong_examples": [asdict(o) for o in outcomes if o.verdict in ("wrong", "unjudged")][:10],
    }


def failures(result: dict[str, Any]) -> list[str]:
    t = result["total"]
    out = []
    if t["errors"]:
        out.append(f"{t['errors']} client-visible errors")
    if t["wrong"]:
        out.append(f"{t['wrong']} wrong answers")
    if t["unjudged"]:
        out.append(f"{t['unjudged']} answers not judged (the oracle call failed)")
    if result["upstream_calls"] > result["client_misses"]:
        out.append(
            f"{result['upstream_calls']} upstream calls for {result['client_misses']} misses"
        )
    if result["api_keys_in_logs"]:
        out.append(f"an API key in the sidecars' logs ({result['api_keys_in_logs']} lines)")
    return out


def _back(row: dict[str, Any]) -> str:
    back = row.get("l2_back_s")
    if back is None:
        return ""
    return " ".join(f"{s} {v:.2f}" if v is not None else f"{s} -" for s, v in back.items())


def table(result: dict[str, Any]) -> str:
    head = (
        f"{'phase':10} {'from s':>6} {'requests':>8} {'errors':>6} {'wrong':>5} {'hits':>6} "
        f"{'L1':>5} {'L2':>5} {'coal':>4} {'misses':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'faults a/b':>10}  L2 hits back after (s)"
    )
    lines = [head, "-" * len(head)]

    def line(name: str, start: str, r: dict[str, Any], faults: str, back: str) -> str:
        return (
            f"{name:10} {start:>6} {r['requests']:>8} {r['errors']:>6} {r['wrong']:>5} "
            f"{r['hits']:>6} {r['l1']:>5} {r['l2']:>5} {r['coalesced']:>4} {r['misses']:>6} "
            f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} {faults:>10}  {back}"
        )

    for row in result["phases"]:
        faults = "/".join(str(v) for v in row["redis_faults"].values())
        lines.append(line(row["phase"], f"{row['start_s']:.1f}", row, faults, _back(row)))
    lines.append("-" * len(head))
    total = "/".join(str(v) for v in result["redis_faults"].values())
    lines.append(line("total", "", result["total"], total, ""))
    lines.append("")
    for s, r in result["by_sidecar"].items():
        policy = "L1 + L2" if not SIDECARS[s] else "L2 only (exact.l1MaxEntries: 0)"
        lines.append(
            f"sidecar {s} ({policy}): {r['requests']} requests, {r['hits']} hits "
            f"(L1 {r['l1']}, L2 {r['l2']}, coalesced {r['coalesced']}), {r['errors']} errors, "
            f"{r['wrong']} wrong"
        )
    lines.append(
        f"upstream calls {result['upstream_calls']} for {result['client_misses']} misses seen by "
        f"clients; API keys in sidecar logs: {result['api_keys_in_logs']}"
    )
    problems = failures(result)
    lines.append("FAIL  " + "; ".join(problems) if problems else "PASS  0 errors, 0 wrong answers")
    return "\n".join(lines)


# -- command ------------------------------------------------------------------------------------


def run_bench(config: Config) -> dict[str, Any]:
    import anthropic  # noqa: F401  # imported before the clock starts: seconds on a busy machine
    import openai  # noqa: F401

    sim = llmcache(
        "upstream-sim", "--listen", "127.0.0.1:0",
        "--ttft-ms", str(config.ttft_ms), "--ms-per-token", str(config.ms_per_token),
    )  # fmt: skip
    redis: RedisBox | None = None
    procs: dict[str, Proc] = {}
    try:
        redis = RedisBox()
        for name, policy in SIDECARS.items():
            procs[name] = llmcache(
                "sidecar", "--listen", "127.0.0.1:0", "--redis-url", redis.proc.url,
                "--anthropic-upstream", sim.url, "--openai-upstream", sim.url,
                "--policy-json", json.dumps(policy), "--log-level", "warning",
            )  # fmt: skip
        sidecars = {name: p.url for name, p in procs.items()}
        result = asyncio.run(drive(config, sim.url, sidecars, redis))
        logs = "".join(p.output() for p in procs.values())
        result["api_keys_in_logs"] = sum(
            any(key in line for key in KEYS.values()) for line in logs.splitlines()
        )
        result["sidecar_log_warnings"] = sum(
            " WARNING " in line or " ERROR " in line or "Traceback" in line
            for line in logs.splitlines()
        )
        if failures(result):
            result["sidecar_log_tail"] = {n: p.lines[-40:] for n, p in procs.items()}
        return result
    finally:
        for p in procs.values():
            p.stop()
        if redis is not None:
            redis.stop()
        sim.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Config()
    parser.add_argument("--seconds", type=float, default=d.seconds, help="run length (60)")
    parser.add_argument(
        "--cycles", type=int, default=d.cycles,
        help="kill/restart/freeze/thaw cycles after the baseline; equal phases (2)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=d.clients, help="concurrent clients (32)")
    parser.add_argument("--prompts", type=int, default=d.prompts, help="distinct prompts (200)")
    parser.add_argument("--fresh", type=float, default=d.fresh, help="share of fresh prompts")
    parser.add_argument("--stream", type=float, default=d.stream, help="share of streamed asks")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--ttft-ms", type=float, default=d.ttft_ms, help="simulated TTFT (20)")
    parser.add_argument(
        "--ms-per-token", type=float, default=d.ms_per_token, help="simulated ms per token (1)"
    )
    parser.add_argument("--out", default=str(RESULTS / "redis-faults.json"), help="JSON output")


def run(args: argparse.Namespace) -> int:
    config = Config(
        seconds=args.seconds, cycles=args.cycles, clients=args.clients, prompts=args.prompts,
        fresh=args.fresh, stream=args.stream, seed=args.seed, ttft_ms=args.ttft_ms,
        ms_per_token=args.ms_per_token,
    )  # fmt: skip
    names = ["baseline", *FAULTS * config.cycles]
    print(
        f"llmcache bench redis-faults: {config.clients} SDK clients, two sidecars on one Redis, "
        f"{config.seconds:g} s in {len(names)} phases of {config.seconds / len(names):.1f} s",
        flush=True,
    )
    started = time.time()
    result = run_bench(config)
    result["meta"] = {
        "command": " ".join(["llmcache bench redis-faults", *sys.argv[3:]]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - started, 1),
    }
    problems = failures(result)
    result["pass"] = not problems
    print()
    print(table(result))
    for example in result["error_examples"] + result["wrong_examples"]:
        where = f"{example['sidecar']} {example['sdk']} stream={example['stream']}"
        print(f"  {example['verdict']}: {where} at {example['start']:.2f}s: {example['detail']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 1 if problems else 0
