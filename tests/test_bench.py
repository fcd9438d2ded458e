"""Smoke tests: each benchmark runs end to end at a tiny size and writes valid results.

No timing assertions: speed targets are judged by the benchmarks themselves, on a quiet
machine. What is asserted here is what a user of the results relies on: every case and
mode is present, the sidecar cases really hit the layer they claim to measure, and no
cached answer differs from what the upstream gives for the same request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from llmcache.bench.workload.ceiling import ceiling, wall_seconds
from llmcache.bench.workload.prompts import GROUPS
from llmcache.bench.workload.trace import Req, Step, Trace, TraceConfig, generate


def _bench(*args: str, timeout: float = 240) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "llmcache", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_trace_is_reproducible_and_mixed() -> None:
    config = TraceConfig(seed=3, steps_per_agent=30)
    a, b = generate(config), generate(config)
    assert [r.key() for r in a.all_requests()] == [r.key() for r in b.all_requests()]
    assert len(GROUPS) >= 60 and all(len(g) >= 2 for g in GROUPS)
    comp = a.composition()
    for category in ("first", "repeat", "paraphrase", "fresh"):
        assert comp["categories"].get(category, 0) > 0, comp
    assert 0 < comp["streaming_share"] < 1
    assert {"anthropic.messages", "openai.chat"} <= set(comp["routes"])
    other = generate(TraceConfig(seed=4, steps_per_agent=30))
    assert [r.key() for r in other.all_requests()] != [r.key() for r in a.all_requests()]


def test_ceiling_is_a_perfect_cache_in_simulated_time() -> None:
    def ask(group: int, variant: int) -> Step:
        body = {"model": "m", "messages": [{"role": "user", "content": f"task {group}.{variant}"}]}
        return Step([Req("openai.chat", body, "coder", group, variant)])

    trace = Trace(TraceConfig())
    trace.agents = {
        "a": [ask(1, 0), ask(2, 0)],
        "b": [ask(3, 0), ask(1, 0), ask(2, 1), ask(4, 0)],  # a repeat, then a paraphrase
    }
    costs = {("a", 0): 1.0, ("a", 1): 0.5, ("b", 0): 0.5, ("b", 1): 1.0, ("b", 2): 1.0,
             ("b", 3): 1.0}  # fmt: skip
    assert wall_seconds(trace, costs, None) == 3.5
    # b's repeat waits for a's answer in flight (until 1.0); its paraphrase misses
    assert wall_seconds(trace, costs, "exact") == 3.0
    # ... unless the paraphrase is answered from a's wording (known at 1.5)
    assert wall_seconds(trace, costs, "semantic") == 2.5
    assert ceiling(trace, costs) == {"exact": 3.0 / 3.5 - 1, "semantic": 2.5 / 3.5 - 1}


@pytest.mark.timeout(240)
def test_latency_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    stdout = _bench("latency", "--seconds", "0.3", "--rounds", "1", "--loadgen", "python",
                    "--profile", "never", "--out", str(out))  # fmt: skip
    doc = json.loads(out.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    for name in (
        "bare aiohttp",
        "sidecar's upstream, direct",
        "minimal aiohttp proxy -> sim",
        "minimal proxy + redis-py GET/SET",
        "sidecar miss",
        "sidecar miss, memory only",
        "sidecar L1 hit",
        "sidecar L2 hit",
        "redis GET: redis-py, 1 connection",
    ):
        assert name in rows, sorted(rows)
        assert rows[name]["c1"]["requests"] > 0 and rows[name]["c32"]["rps"] > 0
    # the hit cases measured what they claim: every request a hit of that layer
    l1, l2 = rows["sidecar L1 hit"]["check"], rows["sidecar L2 hit"]["check"]
    miss = rows["sidecar miss"]["check"]
    assert l1["requests"] > 0 and l1["l1"] == l1["requests"]
    # (an L2 lookup may time out on a loaded machine: that request fails open to the upstream)
    assert l2["requests"] > 0 and l2["l2"] >= 0.98 * l2["requests"]
    assert miss["requests"] > 0 and miss["misses"] == miss["requests"]
    # with the tracing extra (the dev install has it): the traced hits are hits, and export
    traced = rows["sidecar L1 hit, tracing on, 100 %"]["check"]
    assert traced["requests"] > 0 and traced["l1"] == traced["requests"]
    assert traced["spans_exported"] > 0
    assert set(doc["tracing_cost"]) == {
        "sidecar L1 hit, tracing on, 100 %", "sidecar L1 hit, tracing on, 1 %"
    }  # fmt: skip
    assert set(doc["verdicts"]) == {
        "sidecar L1 hit", "sidecar L2 hit", "sidecar miss", "sidecar miss, memory only"
    }  # fmt: skip
    assert "sidecar L1 hit" in stdout


@pytest.mark.timeout(240)
def test_workload_bench_smoke(tmp_path: Path) -> None:
    _bench("workload", "--steps-per-agent", "6", "--ttft-ms", "1", "--ms-per-token", "0",
           "--modes", "direct,exact,all", "--out-dir", str(tmp_path))  # fmt: skip
    doc = json.loads((tmp_path / "workload.json").read_text())
    assert (tmp_path / "workload.png").read_bytes()[:4] == b"\x89PNG"
    modes = {m["mode"]: m for m in doc["modes"]}
    assert set(modes) == {"direct", "exact", "all"}
    direct, exact = modes["direct"], modes["exact"]
    assert direct["requests"] == exact["requests"] == doc["composition"]["requests"]
    assert doc["composition"]["routes"]["rag.query"] > 0
    assert set(doc["ceiling"]["wall_change"]) == {"exact", "semantic"}
    semantic = modes["all"]["semantic"]  # what the semantic layer cost the requests it missed
    assert semantic["on_misses"]["count"] > 0 and semantic["wrong_answers"] == 0
    assert "semantic" not in exact
    for m in modes.values():  # every request not served from the cache reached its upstream
        assert m["errors"] == 0, m["wrong_examples"]
        upstream = m["upstream_calls"] + m["vector_store_queries"]
        assert upstream == m["requests"] - m["hits"], m
    for m in modes.values():
        assert m["errors"] == 0, m
        assert m["wrong_answers"] == 0, m["wrong_examples"]


@pytest.mark.timeout(240)
def test_redis_faults_bench_smoke(tmp_path: Path) -> None:
    """Redis killed, restarted, frozen and thawed under 32 SDK clients: no client sees an
    error or a wrong answer, and the faults were really felt (counted by the sidecars)."""
    out = tmp_path / "redis-faults.json"
    stdout = _bench("redis-faults", "--seconds", "8", "--cycles", "1", "--out", str(out))
    doc = json.loads(out.read_text())
    phases = [p["phase"] for p in doc["phases"]]
    assert phases == ["baseline", "killed", "restarted", "frozen", "thawed"]
    total = doc["total"]
    assert total["requests"] > 0 and total["hits"] > 0, total
    assert total["errors"] == 0, doc["error_examples"]
    assert total["wrong"] == 0 and total["unjudged"] == 0, doc["wrong_examples"]
    assert doc["upstream_calls"] <= doc["client_misses"]  # never two upstream calls for one
    assert sum(doc["redis_faults"].values()) > 0  # the sidecars did see Redis fail
    assert doc["pass"] and "PASS" in stdout
