"""Replay one trace several ways against real processes and judge every answer.

Modes: ``direct`` (to the simulated upstream and vector store, no cache), ``exact``
(sidecar, L1 + Redis L2 and RAG answers for identical query vectors only, no coalescing),
``all`` (exact + semantic + RAG similarity + coalescing of identical in-flight requests),
``batch`` (``all`` with ``batching.mode: batch``); and, asked for by name, ``pods`` and
``pods-shared``: exact layers with coalescing, the agents spread over ``PODS`` sidecar
processes sharing one Redis, coalescing within each process only (``peerWaitMs: 0``) or
across them; ``fanout`` and ``fanout-shared`` the same with the copies of each burst sent
to different sidecars. Each mode gets fresh sidecars and an empty Redis; the upstream's counters are
reset between modes.

Every answer is compared with the oracle: the same exact request sent to the same
deterministic simulator with zero latency before the replays. An exact-layer answer must
equal it; a semantic answer must equal the oracle answer of a wording of the same task
(same agent role, same paraphrase group), else it is a wrong answer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import re
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from llmcache.prices import cost_usd, price_for

from ..procs import Proc, RedisProc, llmcache
from .answers import Answer, parse
from .trace import ROUTES, Req, Trace, rag_points

API_KEY_ANTHROPIC = "sk-ant-bench-workload-0000"
API_KEY_OPENAI = "sk-bench-workload-0000"
ZERO_LATENCY = {"x-sim-ttft-ms": "0", "x-sim-ms-per-token": "0"}
MISSES = ("miss", "skipped", "overloaded", "timeout", "error")  # semantic lookup outcomes
PODS = 3  # sidecar processes of the pods modes
PEER_LINE = re.compile(r'^llmcache_peer_coalescing_total\{outcome="(\w+)"\} (\S+)$', re.M)


def headers_for(route: str) -> dict[str, str]:
    if route.startswith("rag"):
        return {"content-type": "application/json", "api-key": "qdrant-bench-0000"}
    if route.startswith("anthropic"):
        return {
            "content-type": "application/json",
            "x-api-key": API_KEY_ANTHROPIC,
            "anthropic-version": "2023-06-01",
        }
    return {"content-type": "application/json", "authorization": f"Bearer {API_KEY_OPENAI}"}


@dataclass
class Mode:
    name: str
    title: str
    policy: dict[str, Any] | None  # None: straight to the upstream
    available: bool = True
    reason: str = ""
    pods: int = 1  # sidecar processes; agent i talks to sidecar i mod pods
    fanout: bool = False  # the copies of a burst go to different sidecars


@dataclass
class Outcome:
    agent: str
    step: int
    route: str
    category: str
    stream: bool
    latency_s: float
    status: int
    cache: str  # miss | hit | bypass | none (direct)
    layer: str  # l1 | l2 | semantic | coalesced | rag | ""
    verdict: str  # correct | equivalent | wrong | error
    cost_usd: float
    tokens: int
    detail: str = ""


@dataclass
class ModeResult:
    mode: Mode
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    upstream_calls: int = 0
    store_queries: int = 0
    sidecar_stats: dict[str, Any] = field(default_factory=dict)
    semantic_metrics: dict[str, float] = field(default_factory=dict)
    peer_coalescing: dict[str, float] = field(default_factory=dict)  # summed over the pods


# -- oracle --------------------------------------------------------------------------------------


@dataclass
class Oracle:
    answers: dict[str, Answer] = field(default_factory=dict)  # Req.key() -> answer
    by_group: dict[tuple[str, str, int], set[str]] = field(default_factory=dict)

    def cost(self, req: Req) -> tuple[float, int]:
        if req.route.startswith("rag"):
            return 0.0, 0  # priced per query by nobody here; saves time, not tokens
        a = self.answers[req.key()]
        usd = cost_usd(
            price_for(req.model),
            a.input_tokens,
            a.output_tokens,
            a.cache_read_tokens,
            a.cache_write_tokens,
        )
        return usd, a.input_tokens + a.output_tokens + a.cache_read_tokens + a.cache_write_tokens

    def judge(self, req: Req, got: Answer) -> str:
        if got.same_as(self.answers[req.key()]):
            return "correct"
        if req.group >= 0 and got.content in self.by_group.get(
            (req.route + req.variant_key(), req.role, req.group), set()
        ):
            return "equivalent"
        return "wrong"


async def build_oracle(trace: Trace, upstream: str, store: str, concurrency: int = 16) -> Oracle:
    oracle = Oracle()
    unique: dict[str, Req] = {}
    for req in trace.all_requests():
        unique.setdefault(req.key(), req)
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def ask(key: str, req: Req) -> None:
            async with (
                sem,
                session.post(
                    (store if req.route.startswith("rag") else upstream) + ROUTES[req.route][1],
                    json=req.body,
                    headers={**headers_for(req.route), **req.headers, **ZERO_LATENCY},
                ) as resp,
            ):
                payload = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"oracle call failed {resp.status}: {payload[:300]!r}")
                oracle.answers[key] = parse(req.route, resp.content_type, payload)

        await asyncio.gather(*(ask(k, r) for k, r in unique.items()))
    for key, req in unique.items():
        if req.group >= 0:
            group = (req.route + req.variant_key(), req.role, req.group)
            oracle.by_group.setdefault(group, set()).add(oracle.answers[key].content)
    return oracle


# -- replay --------------------------------------------------------------------------------------


async def replay(
    trace: Trace, bases: list[str], store: str, direct: bool, oracle: Oracle, fanout: bool = False
) -> tuple[list[Outcome], float]:
    """Agent i talks to ``bases[i mod n]``; with ``fanout``, the k-th copy of a burst goes to
    the next k-th base (an app's replicas behind a Service fanning one task out)."""
    outcomes: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        first = {name: i for i, name in enumerate(trace.agents)}

        async def one(agent: str, step: int, req: Req, copy: int) -> None:
            base = bases[(first[agent] + (copy if fanout else 0)) % len(bases)]
            path = ROUTES[req.route][1 if direct else 0]
            url = (store if direct and req.route.startswith("rag") else base) + path
            usd, tokens = oracle.cost(req)
            t0 = time.perf_counter()
            status, cache, layer, verdict, detail = 0, "none", "", "error", ""
            try:
                headers = {**headers_for(req.route), **req.headers}
                async with session.post(url, data=json.dumps(req.body), headers=headers) as resp:
                    payload = await resp.read()
                    status = resp.status
                    cache = resp.headers.get("x-llmcache", "none")
                    layer = resp.headers.get("x-llmcache-layer", "")
                    ctype = resp.content_type
            except (aiohttp.ClientError, TimeoutError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
            latency = time.perf_counter() - t0
            if status == 200:
                try:
                    verdict = oracle.judge(req, parse(req.route, ctype, payload))
                except (ValueError, KeyError, TypeError) as exc:
                    verdict, detail = "wrong", f"unparsable answer: {exc}"
            elif status:
                detail = payload[:200].decode(errors="replace")
            outcomes.append(
                Outcome(agent, step, req.route, req.category, req.stream, latency, status,
                        cache, layer, verdict, usd, tokens, detail)
            )  # fmt: skip

        async def agent(name: str) -> None:
            for i, step in enumerate(trace.agents[name]):
                await asyncio.gather(*(one(name, i, r, k) for k, r in enumerate(step.requests)))

        started = time.perf_counter()
        await asyncio.gather(*(agent(name) for name in trace.agents))
        wall = time.perf_counter() - started
    return outcomes, wall


def _get_json(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _post(url: str) -> None:
    import urllib.request

    req = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def _semantic_metrics(base: str) -> dict[str, float]:
    """The sidecar's semantic counters (rejections by guard, similarity histogram, ...),
    so a mode without semantic hits says why."""
    import urllib.request

    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("llmcache_semantic", "llmcache_embedder")) and " " in line:
            name, _, value = line.rpartition(" ")
            lookup = name.startswith("llmcache_semantic_lookup_seconds_bucket")
            if "_created" not in name and ("_bucket" not in name or lookup):
                out[name] = float(value)
    return out


def _peer_coalescing(bases: list[str]) -> dict[str, float]:
    """``llmcache_peer_coalescing_total`` by outcome, summed over the sidecars."""
    import urllib.request

    out: dict[str, float] = {}
    for base in bases:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for m in PEER_LINE.finditer(text):
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def lookup_quantiles(metrics: dict[str, float], outcomes: tuple[str, ...]) -> dict[str, float]:
    """Count and p50/p99 (ms) of the semantic lookups with these outcomes, from the
    sidecar's ``llmcache_semantic_lookup_seconds`` histogram (linear within a bucket, as
    Prometheus' ``histogram_quantile``)."""
    cumulative: dict[float, float] = {}
    for name, value in metrics.items():
        if not name.startswith("llmcache_semantic_lookup_seconds_bucket{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', name))
        if labels.get("outcome") in outcomes:
            bound = float(labels["le"])
            cumulative[bound] = cumulative.get(bound, 0.0) + value
    bounds = sorted(cumulative)
    total = cumulative.get(math.inf, 0.0)
    out = {"count": total, "p50_ms": 0.0, "p99_ms": 0.0}
    for q, key in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        rank, lower, below = q * total, 0.0, 0.0
        for bound in bounds:
            if total and cumulative[bound] >= rank:
                inside = cumulative[bound] - below
                share = (rank - below) / inside if inside else 0.0
                upper = bound if math.isfinite(bound) else lower
                out[key] = (lower + (upper - lower) * share) * 1000
                break
            lower, below = bound, cumulative[bound]
    return out


def _wait_ready(base: str, timeout: float = 120.0) -> None:
    """A layer may load a model at start; the replay's clock starts once it is ready."""
    import urllib.error

    deadline = time.monotonic() + timeout
    while True:
        try:
            _get_json(base + "/readyz")
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def semantic_available() -> tuple[bool, str]:
    if importlib.util.find_spec("llmcache.sidecar.semantic") is None:
        return False, "the sidecar has no semantic layer (llmcache.sidecar.semantic) yet"
    return True, ""


def default_modes(semantic_policy: dict[str, Any] | None) -> list[Mode]:
    ok, reason = semantic_available()
    semantic = {"semantic": semantic_policy or {"enabled": True}} if ok else {}
    label = "exact+semantic+rag+coalesce" if ok else "exact+rag+coalesce (semantic unavailable)"
    exact_rag = {"rag": {"threshold": 1.0}}  # identical query vectors only
    per_pod = {"mode": "coalesce", "peerWaitMs": 0}
    return [
        Mode("direct", "no cache (direct)", None),
        Mode("exact", "exact L1+L2", {**exact_rag, "batching": {"mode": "off"}}),
        Mode("all", label, {**semantic, "batching": {"mode": "coalesce"}}, reason=reason),
        Mode("batch", label.replace("coalesce", "batch"),
             {**semantic, "batching": {"mode": "batch"}}, reason=reason),
        Mode("pods", f"exact+coalesce per pod, {PODS} pods", {**exact_rag, "batching": per_pod},
             pods=PODS),
        Mode("pods-shared", f"exact+coalesce across {PODS} pods",
             {**exact_rag, "batching": {"mode": "coalesce"}}, pods=PODS),
        Mode("fanout", f"fan-out, coalesce per pod, {PODS} pods",
             {**exact_rag, "batching": per_pod}, pods=PODS, fanout=True),
        Mode("fanout-shared", f"fan-out, coalesce across {PODS} pods",
             {**exact_rag, "batching": {"mode": "coalesce"}}, pods=PODS, fanout=True),
    ]  # fmt: skip


def _start_store(trace: Trace, query_ms: float) -> Proc:
    """The vector store, with the trace's collection loaded."""
    import sys
    import urllib.request

    store = Proc([sys.executable, "-m", "llmcache.upstream_sim.vectorstore",
                  "--listen", "127.0.0.1:0", "--query-ms", str(query_ms)])  # fmt: skip
    points = rag_points(trace.config.seed)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", "/collections/docs", {"vectors": {"size": 384, "distance": "Cosine"}})
    ]
    for i in range(0, len(points), 200):  # in batches, as clients upload
        calls.append(("PUT", "/collections/docs/points", {"points": points[i : i + 200]}))
    for method, path, doc in calls:
        req = urllib.request.Request(
            store.url + path, data=json.dumps(doc).encode(), method=method,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=60):
            pass
    return store


def _with_rag(policy: dict[str, Any], store: str) -> dict[str, Any]:
    rag = {**policy.get("rag", {}), "enabled": True,
           "upstreams": [{"name": "kb", "kind": "qdrant", "url": store}]}  # fmt: skip
    return {**policy, "rag": rag}


async def run_modes(
    trace: Trace,
    modes: list[Mode],
    sim_args: list[str],
    log: Any = print,
    rag_query_ms: float = 40.0,
) -> tuple[list[ModeResult], Oracle]:
    results: list[ModeResult] = []
    redis = RedisProc()
    upstream = llmcache("upstream-sim", "--listen", "127.0.0.1:0", *sim_args)
    store = _start_store(trace, rag_query_ms)
    try:
        log(f"  oracle: {len({r.key() for r in trace.all_requests()})} distinct requests ...")
        oracle = await build_oracle(trace, upstream.url, store.url)
        for mode in modes:
            if not mode.available:
                results.append(ModeResult(mode))
                continue
            _post(upstream.url + "/_sim/reset")
            redis.command("FLUSHALL")
            sidecars: list[Proc] = []
            bases = [upstream.url]
            if mode.policy is not None:
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                    json.dump(_with_rag(mode.policy, store.url), f)
                sidecars = [
                    llmcache(
                        "sidecar", "--listen", "127.0.0.1:0", "--anthropic-upstream",
                        upstream.url, "--openai-upstream", upstream.url, "--redis-url",
                        redis.url, "--policy", f.name, "--log-level", "warning",
                    )
                    for _ in range(mode.pods)
                ]  # fmt: skip
                bases = [s.url for s in sidecars]
                for base in bases:
                    _wait_ready(base)
            log(f"  replaying: {mode.title} ...")
            queries_before = int(_get_json(store.url + "/_sim/stats")["queries"])
            try:
                outcomes, wall = await replay(
                    trace, bases, store.url, not sidecars, oracle, mode.fanout
                )
                result = ModeResult(mode, outcomes, wall)
                result.upstream_calls = int(_get_json(upstream.url + "/_sim/stats")["total"])
                queries = int(_get_json(store.url + "/_sim/stats")["queries"])
                result.store_queries = queries - queries_before
                if sidecars:
                    result.sidecar_stats = _get_json(bases[0] + "/stats")
                    result.semantic_metrics = _semantic_metrics(bases[0])
                    result.peer_coalescing = _peer_coalescing(bases)
            finally:
                for sidecar in sidecars:
                    sidecar.stop()
            results.append(result)
            log(f"    {len(outcomes)} requests in {wall:.1f} s, "
                f"{result.upstream_calls} upstream calls")  # fmt: skip
    finally:
        upstream.stop()
        store.stop()
        redis.stop()
    return results, oracle


# -- summary -------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(result: ModeResult, baseline: ModeResult | None) -> dict[str, Any]:
    o = result.outcomes
    if not result.mode.available:
        return {"mode": result.mode.name, "title": result.mode.title, "available": False,
                "reason": result.mode.reason}  # fmt: skip
    n = len(o)
    hits = [x for x in o if x.cache == "hit"]
    layers = Counter(x.layer for x in hits)
    from_upstream = [x for x in o if x.cache != "hit" and x.status == 200]
    spent = sum(x.cost_usd for x in from_upstream)
    saved = sum(x.cost_usd for x in hits if x.status == 200)
    lat = [x.latency_s * 1000 for x in o]
    miss_lat = [x.latency_s * 1000 for x in o if x.cache == "miss"]
    verdicts = Counter(x.verdict for x in o)
    wrong = [asdict(x) for x in o if x.verdict == "wrong"][:10]
    out: dict[str, Any] = {
        "mode": result.mode.name,
        "title": result.mode.title,
        "available": True,
        "note": result.mode.reason,
        "requests": n,
        "upstream_calls": result.upstream_calls,
        "vector_store_queries": result.store_queries,
        "hits": len(hits),
        "hit_rate": len(hits) / n if n else 0.0,
        "layer_hit_rate": {k: v / n for k, v in sorted(layers.items())},
        "tokens_spent": sum(x.tokens for x in from_upstream),
        "tokens_saved": sum(x.tokens for x in hits),
        "usd_spent": spent,
        "usd_saved": saved,
        "wall_s": result.wall_s,
        "p50_ms": _pct(lat, 0.50),
        "p95_ms": _pct(lat, 0.95),
        "p99_ms": _pct(lat, 0.99),
        "errors": sum(1 for x in o if x.status != 200),
        "wrong_answers": verdicts.get("wrong", 0),
        "semantic_equivalent_answers": verdicts.get("equivalent", 0),
        "correct_answers": verdicts.get("correct", 0),
        "wrong_examples": wrong,
        "hit_rate_by_category": {
            cat: sum(1 for x in o if x.category == cat and x.cache == "hit")
            / max(1, sum(1 for x in o if x.category == cat))
            for cat in sorted({x.category for x in o})
        },
        "miss_p50_ms": _pct(miss_lat, 0.50),
        "miss_p99_ms": _pct(miss_lat, 0.99),
        "sidecar_stats": result.sidecar_stats,
        "semantic_metrics": result.semantic_metrics,
        "pods": result.mode.pods,
        "peer_coalescing": result.peer_coalescing,
        "latencies_ms": sorted(lat),
    }
    m = result.semantic_metrics
    if any(name.startswith("llmcache_semantic_lookup_seconds") for name in m):
        out["semantic"] = {
            "hits": layers.get("semantic", 0),
            "wrong_answers": sum(1 for x in o if x.layer == "semantic" and x.verdict == "wrong"),
            # What the layer added to requests it did not answer, and took to answer hits.
            "on_misses": lookup_quantiles(m, MISSES),
            "on_hits": lookup_quantiles(m, ("hit",)),
            **{f"{o}_lookups": lookup_quantiles(m, (o,))["count"] for o in MISSES},
        }
    if baseline is not None and baseline.mode.available and baseline.outcomes:
        base_spent = sum(x.cost_usd for x in baseline.outcomes if x.status == 200)
        out["cost_change"] = spent / base_spent - 1 if base_spent else 0.0
        out["wall_change"] = result.wall_s / baseline.wall_s - 1 if baseline.wall_s else 0.0
    return out
