"""A seeded, reproducible multi-agent trace of LLM traffic.

Agents (four per role, plus a retrieval agent) each walk a sequence of steps. The retrieval
agent embeds a question, then queries a Qdrant collection with a vector for that question:
the same vector for the same wording, a vector within cosine ~0.99 of it for a paraphrase
(as one embedding model places two wordings of one question), far from it for another one.
A step asks about one task chosen with a Zipf-like popularity over the paraphrase
groups (mostly its canonical wording, sometimes a paraphrase), or a fresh prompt that never
repeats. Some steps are bursts: the same request sent several times at once (fan-out).
Every request is streaming or not, Anthropic or OpenAI, as its agent's role says. One agent
per role sends a header that selects another answer upstream (an Anthropic beta, an OpenAI
project): the same bodies as its peers', which a cache must not answer with theirs.

The composition (first asks, exact repeats, paraphrases of earlier asks, fresh prompts,
burst duplicates) is counted in trace order (agents interleaved step by step), which is how
a cache would see it if every agent ran at the same pace.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .prompts import (
    FRESH_ERRORS,
    FRESH_MODULES,
    FRESH_NAMES,
    FRESH_OBJECTS,
    FRESH_VERBS,
    GROUPS,
    ROLES,
)

ROUTES = {
    # route -> (sidecar path, upstream path)
    "anthropic.messages": ("/anthropic/v1/messages", "/v1/messages"),
    "openai.chat": ("/openai/v1/chat/completions", "/v1/chat/completions"),
    "openai.embeddings": ("/openai/v1/embeddings", "/v1/embeddings"),
    # a vector store (Qdrant's REST API) behind the sidecar's /rag/<name>/ route
    "rag.query": ("/rag/kb/collections/docs/points/query", "/collections/docs/points/query"),
}
EMBED_MODEL = "text-embedding-3-small"
RAG_DIM = 384
RAG_DOCS_PER_GROUP = 8
RAG_DISTRACTORS = 1000
RAG_LIMIT = 5
PARAPHRASE_NOISE = 0.14  # a paraphrase's query vector sits at cosine 1/sqrt(1 + 0.14^2) ~ 0.99


@dataclass(frozen=True)
class TraceConfig:
    seed: int = 7
    agents_per_role: int = 4
    retrieval_agents: int = 1
    steps_per_agent: int = 60
    zipf_s: float = 1.2
    fresh_share: float = 0.10
    paraphrase_share: float = 0.25
    burst_share: float = 0.04
    burst_size: tuple[int, int] = (4, 8)
    stream_share: float = 0.4
    variant_agents: int = 1  # agents per role that send an answer-changing header


# The answer-changing header an agent of a variant sends, per API.
VARIANT_HEADERS = {
    "anthropic.messages": {"anthropic-beta": "context-1m-2025-08-07"},
    "openai.chat": {"OpenAI-Project": "proj_workload_b"},
}


@dataclass
class Req:
    route: str
    body: dict[str, Any]
    role: str
    group: int  # -1 for fresh prompts
    variant: int  # 0 canonical, >0 paraphrase, -1 fresh
    category: str = ""  # first | repeat | paraphrase | fresh | burst-dup
    headers: dict[str, str] = field(default_factory=dict)  # answer-changing headers

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    def key(self) -> str:
        """The request's identity for the oracle: its exact body and headers."""
        return self.route + self.variant_key() + " " + json.dumps(self.body, sort_keys=True)

    def variant_key(self) -> str:
        return json.dumps(self.headers, sort_keys=True) if self.headers else ""

    def answer_key(self) -> str:
        """What decides the answer: the body without the stream flag, which only changes how
        the same answer is delivered (a cache replays one answer either way)."""
        body = {**self.body, "stream": None, "stream_options": None}
        return self.route + self.variant_key() + " " + json.dumps(body, sort_keys=True)


@dataclass
class Step:
    requests: list[Req]  # more than one: a burst of identical concurrent requests


@dataclass
class Trace:
    config: TraceConfig
    agents: dict[str, list[Step]] = field(default_factory=dict)

    def all_requests(self) -> list[Req]:
        return [r for steps in self.agents.values() for s in steps for r in s.requests]

    def composition(self) -> dict[str, Any]:
        counts = Counter(r.category for r in self.all_requests())
        total = sum(counts.values())
        routes = Counter(r.route for r in self.all_requests())
        return {
            "requests": total,
            "categories": dict(counts),
            "shares": {k: v / total for k, v in counts.items()} if total else {},
            "streaming_share": sum(r.stream for r in self.all_requests()) / max(1, total),
            "routes": dict(routes),
            "agents": len(self.agents),
            "paraphrase_groups": len(GROUPS),
        }


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def _chat_body(role: str, text: str, stream: bool) -> tuple[str, dict[str, Any]]:
    system, route, model = ROLES[role]
    if route == "anthropic.messages":
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": 2048,
            "system": system,
            "messages": [{"role": "user", "content": text}],
            "temperature": 0,
        }
    else:
        body = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": 2048,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
    if stream:
        body["stream"] = True
    return route, body


def _fresh_text(rng: random.Random, n: int) -> str:
    obj = rng.choice(FRESH_OBJECTS).format(
        name=rng.choice(FRESH_NAMES), module=rng.choice(FRESH_MODULES),
        error=rng.choice(FRESH_ERRORS), n=n,
    )  # fmt: skip
    return f"{rng.choice(FRESH_VERBS)} {obj}."


def generate(config: TraceConfig) -> Trace:
    rng = random.Random(config.seed)
    # A fixed random permutation decides which groups are popular (not the list order).
    order = list(range(len(GROUPS)))
    rng.shuffle(order)
    weights = _zipf_weights(len(GROUPS), config.zipf_s)
    trace = Trace(config)
    fresh_counter = 0
    agent_roles = [
        (f"{role}-{i}", role) for role in ROLES for i in range(1, config.agents_per_role + 1)
    ] + [(f"retrieval-{i}", "retrieval") for i in range(1, config.retrieval_agents + 1)]
    for name, role in agent_roles:
        arng = random.Random(f"{config.seed}:{name}")
        number = int(name.rsplit("-", 1)[1])
        variant_agent = role != "retrieval" and number > config.agents_per_role - (
            config.variant_agents
        )
        steps: list[Step] = []
        for _ in range(config.steps_per_agent):
            group = order[arng.choices(range(len(GROUPS)), weights)[0]]
            variants = GROUPS[group]
            variant = 0
            if arng.random() < config.paraphrase_share:
                variant = arng.randrange(1, len(variants))
            text = variants[variant]
            if role == "retrieval":
                body: dict[str, Any] = {"model": EMBED_MODEL, "input": text}
                steps.append(Step([Req("openai.embeddings", body, role, group, variant)]))
                query = {"query": rag_query_vector(config.seed, group, variant),
                         "limit": RAG_LIMIT, "with_payload": True}  # fmt: skip
                steps.append(Step([Req("rag.query", query, role, group, variant)]))
                continue
            if arng.random() < config.fresh_share:
                fresh_counter += 1
                text, group, variant = _fresh_text(arng, fresh_counter), -1, -1
            stream = arng.random() < config.stream_share
            route, body = _chat_body(role, text, stream)
            burst = 1
            if group >= 0 and arng.random() < config.burst_share:
                burst = arng.randint(*config.burst_size)
            headers = VARIANT_HEADERS[route] if variant_agent else {}
            steps.append(
                Step([Req(route, dict(body), role, group, variant, headers=headers)
                      for _ in range(burst)])
            )  # fmt: skip
        trace.agents[name] = steps
    _label(trace)
    return trace


def _unit(v: np.ndarray) -> np.ndarray:
    result: np.ndarray = v / np.linalg.norm(v)
    return result


def _topic(seed: int, group: int) -> np.ndarray:
    return _unit(np.random.default_rng([seed, group]).standard_normal(RAG_DIM))


def rag_query_vector(seed: int, group: int, variant: int) -> list[float]:
    base = _topic(seed, group)
    if variant > 0:
        noise = np.random.default_rng([seed, group, variant]).standard_normal(RAG_DIM)
        noise = _unit(noise - (noise @ base) * base)
        base = _unit(base + PARAPHRASE_NOISE * noise)
    return [round(float(x), 6) for x in base]


def rag_points(seed: int) -> list[dict[str, Any]]:
    """The collection: for each task, documents at cosine 0.95, 0.90, ... 0.60 from its
    question (so the top results are the same for every wording of it), plus unrelated
    documents."""
    points: list[dict[str, Any]] = []
    for group in range(len(GROUPS)):
        base = _topic(seed, group)
        rng = np.random.default_rng([seed, group, 1_000])
        for j in range(RAG_DOCS_PER_GROUP):
            a = 0.95 - 0.05 * j
            noise = rng.standard_normal(RAG_DIM)
            noise = _unit(noise - (noise @ base) * base)
            vector = a * base + np.sqrt(1 - a * a) * noise
            points.append({"id": len(points) + 1, "vector": [round(float(x), 6) for x in vector],
                           "payload": {"task": group, "rank": j}})  # fmt: skip
    rng = np.random.default_rng([seed, 2_000])
    for _ in range(RAG_DISTRACTORS):
        vector = _unit(rng.standard_normal(RAG_DIM))
        points.append({"id": len(points) + 1, "vector": [round(float(x), 6) for x in vector],
                       "payload": {"task": -1}})  # fmt: skip
    return points


def _label(trace: Trace) -> None:
    """Categorise each request in interleaved trace order."""
    seen_bodies: set[str] = set()
    seen_groups: set[tuple[str, str, int]] = set()  # (route and variant, role, group)
    longest = max((len(s) for s in trace.agents.values()), default=0)
    for i in range(longest):
        for steps in trace.agents.values():
            if i >= len(steps):
                continue
            for j, req in enumerate(steps[i].requests):
                ident = req.answer_key()
                if j > 0:
                    req.category = "burst-dup"
                elif req.group < 0:
                    req.category = "fresh"
                elif ident in seen_bodies:
                    req.category = "repeat"
                elif (req.route + req.variant_key(), req.role, req.group) in seen_groups:
                    req.category = "paraphrase"
                else:
                    req.category = "first"
                seen_bodies.add(ident)
                if req.group >= 0:
                    seen_groups.add((req.route + req.variant_key(), req.role, req.group))
