"""``llmcache bench latency``: the sidecar's hit and miss paths next to this machine's floors.

Everything is measured in one run, on one core for the server under test (``taskset -c 0``)
and another for the load generator, the upstream simulator and Redis (``taskset -c 1``):

- floors: a bare aiohttp server returning a fixed body, the same with a dict lookup, a
  Redis GET round trip (redis-py asyncio in three shapes, and ``redis-benchmark``);
- the simulated upstream called directly (a copy on the server's core, and the very process
  the sidecars call: a miss's added latency is measured from that one), and through a
  minimal aiohttp pass-through proxy;
- the sidecar: miss path, L1 hit, L2 hit (``exact.l1MaxEntries: 0``, so every hit is Redis);
- the L1 hit with OpenTelemetry tracing on, every request sampled and 1 % of them, exporting
  by OTLP/HTTP to a local receiver (``servers.py otlp``, on the load generator's core);
  measured only when the ``tracing`` extra is installed.

Each at 1 client (p50/p99) and 32 clients (requests/s, timeouts, errors). Requests are
~1 KB Anthropic Messages bodies. Results: a table on stdout and ``latency.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import loadgen
from .loadgen import MARKER, Load
from .procs import Proc, RedisProc, llmcache, pinned, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
SERVER_CORE = 0
CLIENT_CORE = 1
# The very upstream process the sidecars call, called without a sidecar in between: a miss's
# added latency is the sidecar's p50/p99 minus this row's (issue 12).
DIRECT = "sidecar's upstream, direct"
MISS_ADDED_P50_MS = 1.0
MISS_ADDED_P99_MS = 3.0
L1 = "sidecar L1 hit"
TRACED = {"tracing on, 100 %": 1.0, "tracing on, 1 %": 0.01}  # row suffix: sampling ratio
HEADERS = {
    "content-type": "application/json",
    "x-api-key": "sk-ant-bench-0000000000000000",
    "anthropic-version": "2023-06-01",
}
SYSTEM = (
    "You are a senior Python engineer on a team that builds data pipelines. Answer with "
    "working code first, then at most three short bullet points of explanation. Follow PEP 8, "
    "use type hints, prefer the standard library, and never invent APIs that do not exist. "
    "If the request is ambiguous, state the assumption you made in one sentence."
)
USER = (
    "Write a function `merge_intervals(intervals: list[tuple[int, int]]) -> "
    "list[tuple[int, int]]` that merges overlapping closed intervals and returns them sorted "
    "by start. Intervals that only touch (end == next start) must be merged too. The input "
    "may be unsorted and may contain duplicates; it can hold up to a million intervals, so "
    "keep it O(n log n) and avoid recursion. Include a docstring with two doctest examples "
    "and handle the empty list. Request {marker}."
)


def request_body(unique: bool) -> str:
    """A realistic ~1 KB Messages body; ``unique`` leaves a marker for a per-request counter."""
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": USER.format(marker=MARKER if unique else 0)}],
        "temperature": 0,
        "metadata": {"user_id": "bench-user"},
    }
    return json.dumps(body)


@dataclass
class Row:
    name: str
    group: str  # floor | upstream | sidecar
    c1: dict[str, Any]
    c32: dict[str, Any]
    note: str = ""
    check: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)


def _post(url: str, body: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body.encode(), headers=HEADERS, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def _stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/stats", timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _load(url: str, body: str, unique: bool, seconds: float, tool: str) -> dict[str, Any]:
    """1 client, then 32 clients."""
    c1 = loadgen.run(Load(url, body, HEADERS, 1, seconds, unique), CLIENT_CORE, tool)
    c32 = loadgen.run(Load(url, body, HEADERS, 32, seconds, unique), CLIENT_CORE, tool)
    return {"c1": asdict(c1), "c32": asdict(c32)}


def _stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": after["requests"] - before["requests"],
        "misses": after["misses"] - before["misses"],
        "l1": after["layers"]["l1"]["hits"] - before["layers"]["l1"]["hits"],
        "l2": after["layers"]["l2"]["hits"] - before["layers"]["l2"]["hits"],
        "errors": after["errors"] - before["errors"],
    }


def _sidecar(
    sim: str,
    redis: str | None,
    policy: dict[str, Any],
    profile: Path | None = None,
    tree: str | None = None,
) -> Proc:
    """A sidecar process; ``tree``: a directory whose ``llmcache`` package it runs instead
    of the installed one (``--base-tree``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(policy, f)
    args = ["sidecar", "--listen", "127.0.0.1:0", "--anthropic-upstream", sim,
            "--openai-upstream", sim, "--policy", f.name, "--log-level", "warning"]  # fmt: skip
    if redis is not None:
        args += ["--redis-url", redis]
    if tree is not None:  # -P: not the current directory's llmcache/ either
        cmd = [sys.executable, "-P", "-m", "llmcache", *args]
        return Proc(cmd, core=SERVER_CORE, env={"PYTHONPATH": tree})
    if profile is None:
        return llmcache(*args, core=SERVER_CORE)
    return Proc(
        [sys.executable, "-m", "llmcache.bench.profiled", str(profile), *args], core=SERVER_CORE
    )


@dataclass
class Case:
    name: str
    group: str
    url: str
    unique: bool
    note: str
    stats_base: str | None = None  # a sidecar: check its /stats around the load


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best of the rounds (noise on a shared machine only ever slows a round down), with
    the medians kept alongside; counts are summed."""
    out: dict[str, Any] = {"tool": runs[0]["tool"], "rounds": len(runs)}
    out["rps"] = max(r["rps"] for r in runs)
    for k in ("p50_ms", "p99_ms", "max_ms"):
        out[k] = min(r[k] for r in runs)
    out["median"] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}
    for k in ("requests", "timeouts", "errors"):
        out[k] = sum(r[k] for r in runs)
    return out


def measure(
    seconds: float, rounds: int, tool: str, log: Any = print, base_tree: str | None = None
) -> dict[str, Any]:
    """All cases, interleaved over ``rounds`` so that every case sees the same noise; with
    ``base_tree``, the sidecar cases once more with the sidecar of that tree (rows marked
    ``[base]``), so that a change is measured against its base under the same noise."""
    procs: list[Proc] = []
    redis = RedisProc(core=CLIENT_CORE)
    rows: list[Row] = []
    try:
        upstream = llmcache("upstream-sim", "--listen", "127.0.0.1:0", core=CLIENT_CORE)
        procs.append(upstream)
        api, sidecar_api = "/v1/messages", "/anthropic/v1/messages"
        same, unique = request_body(False), request_body(True)
        _, _, answer = _post(upstream.url + api, same)
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(answer)  # the floors return an answer of the real size

        def server(*args: str) -> Proc:
            proc = Proc([sys.executable, "-m", "llmcache.bench.servers", *args], core=SERVER_CORE)
            procs.append(proc)
            return proc

        def sidecar(policy: dict[str, Any], shared: bool = True, tree: str | None = None) -> Proc:
            proc = _sidecar(upstream.url, redis.url if shared else None, policy, tree=tree)
            procs.append(proc)
            return proc

        bare, dict_ = server("bare", "--body-file", f.name), server("dict", "--body-file", f.name)
        direct = llmcache("upstream-sim", "--listen", "127.0.0.1:0", core=SERVER_CORE)
        procs.append(direct)
        proxy = server("proxy", "--upstream", upstream.url)
        redis_proxy = server("proxy", "--upstream", upstream.url, "--redis-url", redis.url)
        miss, l1 = sidecar({}), sidecar({})
        memory_miss = sidecar({}, shared=False)
        l2 = sidecar({"exact": {"l1MaxEntries": 0}})
        probed = [l1, l2]
        traced: dict[str, tuple[Proc, Proc]] = {}  # row name: (sidecar, its OTLP receiver)
        if importlib.util.find_spec("opentelemetry.sdk") is not None:
            for label, ratio in TRACED.items():
                receiver = Proc(
                    [sys.executable, "-m", "llmcache.bench.servers", "otlp"], core=CLIENT_CORE
                )
                procs.append(receiver)
                spec = {"enabled": True, "endpoint": receiver.url + "/v1/traces"}
                traced[f"{L1}, {label}"] = (
                    sidecar({"tracing": {**spec, "samplingRatio": ratio}}),
                    receiver,
                )
            probed += [proc for proc, _ in traced.values()]
        base: dict[str, Proc] = {}
        if base_tree:
            base = {
                "sidecar miss": sidecar({}, tree=base_tree),
                "sidecar miss, memory only": sidecar({}, shared=False, tree=base_tree),
                "sidecar L1 hit": sidecar({}, tree=base_tree),
                "sidecar L2 hit": sidecar({"exact": {"l1MaxEntries": 0}}, tree=base_tree),
            }
            probed += [base["sidecar L1 hit"], base["sidecar L2 hit"]]
        for proc in probed:
            _post(proc.url + sidecar_api, same)
            _, headers, _ = _post(proc.url + sidecar_api, same)
            log(
                f"  probe {proc.url}: {headers.get('x-llmcache')}/{headers.get('x-llmcache-layer')}"
            )
        cases = [
            Case("bare aiohttp", "floor", bare.url + api, False,
                 "fixed body, same size as the cached answer"),
            Case("aiohttp + dict lookup", "floor", dict_.url + api, False,
                 "sha256(body) -> dict"),
            Case("upstream sim, direct", "upstream", direct.url + api, True,
                 "0 ms TTFT; unique bodies"),
            Case(DIRECT, "upstream", upstream.url + api, True,
                 "the sim the sidecars call (core 1): what a miss adds is measured from here"),
            Case("minimal aiohttp proxy -> sim", "upstream", proxy.url + api, True,
                 "floor of the miss path"),
            Case("minimal proxy + redis-py GET/SET", "upstream", redis_proxy.url + api, True,
                 "floor of the miss path with a shared L2"),
            Case("sidecar miss", "sidecar", miss.url + sidecar_api, True,
                 "L1+L2 lookup, upstream, store", miss.url),
            Case("sidecar miss, memory only", "sidecar", memory_miss.url + sidecar_api, True,
                 "embedded default: L1 lookup, upstream, store", memory_miss.url),
            Case("sidecar L1 hit", "sidecar", l1.url + sidecar_api, False, "in-process LRU",
                 l1.url),
            Case("sidecar L2 hit", "sidecar", l2.url + sidecar_api, False,
                 "L1 off: every hit is Redis", l2.url),
        ]  # fmt: skip
        for name, (proc, _) in traced.items():
            note = "spans exported by OTLP/HTTP to a local receiver (SDK defaults)"
            cases.append(Case(name, "sidecar", proc.url + sidecar_api, False, note, proc.url))
        for case in [c for c in cases if c.name in base]:
            proc = base[case.name]
            name, note = f"{case.name} [base]", f"{case.note}; {base_tree}"
            url = proc.url + sidecar_api
            cases.append(replace(case, name=name, url=url, note=note, stats_base=proc.url))
        for case in cases:  # warm-up: connections open, caches and allocators warm
            body = unique if case.unique else same
            warm = Load(case.url, body, HEADERS, 8, min(1.0, seconds), case.unique)
            loadgen.run(warm, CLIENT_CORE, tool)
        runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cases}
        checks: dict[str, list[dict[str, Any]]] = {c.name: [] for c in cases}
        for r in range(rounds):
            for case in cases:
                log(f"  round {r + 1}/{rounds}: {case.name} ...")
                before = _stats(case.stats_base) if case.stats_base else None
                body = unique if case.unique else same
                runs[case.name].append(_load(case.url, body, case.unique, seconds, tool))
                if case.stats_base and before is not None:
                    checks[case.name].append(_stats_delta(before, _stats(case.stats_base)))
        for case in cases:
            check: dict[str, Any] = {}
            for d in checks[case.name]:
                for k, v in d.items():
                    check[k] = check.get(k, 0) + v
            if case.name in traced:  # warm-up and probes included; none left unsent
                check["spans_exported"] = _exported(traced[case.name])
            rows.append(Row(
                case.name, case.group,
                _combine([x["c1"] for x in runs[case.name]]),
                _combine([x["c32"] for x in runs[case.name]]),
                note=case.note, check=check,
                rounds=runs[case.name],
            ))  # fmt: skip
        log("  redis GET floors ...")
        out = subprocess.run(
            pinned([sys.executable, "-m", "llmcache.bench.redisfloor", redis.url,
                    str(max(0.1, seconds / 2))], SERVER_CORE),
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        for name, res in json.loads(out.stdout).items():
            rows.append(Row(f"redis GET: {name}", "floor", res["c1"], res["c32"],
                            note="GET round trips, 1 KB value, client on core 0"))  # fmt: skip
        from .redisfloor import redis_benchmark

        bench = redis_benchmark(redis.port, SERVER_CORE, requests=max(1000, int(seconds * 20_000)))
        if bench:
            rows.append(Row("redis GET: redis-benchmark (C)", "floor", bench["c1"], bench["c32"],
                            note="the server's own floor"))  # fmt: skip
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
    return {"rows": [asdict(r) for r in rows]}


def _exported(traced: tuple[Proc, Proc]) -> int:
    """Spans the receiver got from the sidecar, once the sidecar has flushed at exit."""
    sidecar, receiver = traced
    sidecar.stop(timeout=30)  # SIGTERM: the sidecar exports what it still holds
    with urllib.request.urlopen(receiver.url + "/spans", timeout=10) as resp:
        return int(json.loads(resp.read())["spans"])


# -- verdicts ----------------------------------------------------------------------------------


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["name"]: r for r in rows}
    bare = by["bare aiohttp"]
    bare_p50, bare_rps = bare["c1"]["p50_ms"], bare["c32"]["rps"]
    out: dict[str, Any] = {}

    def hit_target(name: str, min_ratio: float, max_added_ms: float) -> None:
        r = by.get(name)
        if r is None:
            return
        ratio = r["c32"]["rps"] / bare_rps
        added = r["c1"]["p50_ms"] - bare_p50
        fails = r["c32"]["timeouts"] + r["c32"]["errors"] + r["c1"]["timeouts"] + r["c1"]["errors"]
        out[name] = {
            "rps_vs_bare": ratio,
            "added_p50_ms": added,
            "timeouts_and_errors": fails,
            "target": f">= {min_ratio:.0%} of bare req/s, <= {max_added_ms} ms added p50, "
            "no timeouts/errors",
            "pass": ratio >= min_ratio and added <= max_added_ms and fails == 0,
        }

    hit_target("sidecar L1 hit", 0.80, 0.3)
    hit_target("sidecar L2 hit", 0.50, 1.0)

    def miss_target(name: str, floor_name: str) -> None:
        """What a user feels on a miss is the latency added to an LLM call that takes
        hundreds of milliseconds: the target is the p50/p99 added over calling the same
        upstream directly (1 client). The ratios to the minimal proxy are kept as
        information."""
        miss, direct, floor = by.get(name), by.get(DIRECT), by.get(floor_name)
        if miss is None or direct is None:
            return
        added_p50 = miss["c1"]["p50_ms"] - direct["c1"]["p50_ms"]
        added_p99 = miss["c1"]["p99_ms"] - direct["c1"]["p99_ms"]
        fails = sum(miss[c][k] for c in ("c1", "c32") for k in ("timeouts", "errors"))
        out[name] = {"added_p50_ms": added_p50, "added_p99_ms": added_p99}
        if floor is not None:
            out[name]["rps_vs_floor"] = miss["c32"]["rps"] / floor["c32"]["rps"]
            out[name]["p50_vs_floor"] = miss["c1"]["p50_ms"] / floor["c1"]["p50_ms"]
        out[name]["timeouts_and_errors"] = fails
        out[name]["target"] = (
            f"<= {MISS_ADDED_P50_MS} ms p50 and <= {MISS_ADDED_P99_MS} ms p99 added over "
            f"'{DIRECT}' (1 client), no timeouts/errors"
        )
        out[name]["pass"] = (
            added_p50 <= MISS_ADDED_P50_MS and added_p99 <= MISS_ADDED_P99_MS and fails == 0
        )

    # Floors for information: the embedded default against the plain proxy; with Redis,
    # against the plain proxy that also looks up and stores in Redis.
    miss_target("sidecar miss, memory only", "minimal aiohttp proxy -> sim")
    miss_target("sidecar miss", "minimal proxy + redis-py GET/SET")
    return out


def tracing_cost(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each traced L1-hit row against the untraced one of the same run: what tracing adds."""
    by = {r["name"]: r for r in rows}
    plain = by.get(L1)
    if plain is None:
        return {}
    out = {}
    for name in (f"{L1}, {label}" for label in TRACED):
        r = by.get(name)
        if r is not None:
            out[name] = {
                "added_p50_ms": r["c1"]["p50_ms"] - plain["c1"]["p50_ms"],
                "added_p99_ms": r["c1"]["p99_ms"] - plain["c1"]["p99_ms"],
                "p50_ratio": r["c1"]["p50_ms"] / plain["c1"]["p50_ms"],
                "rps_ratio_32_clients": r["c32"]["rps"] / plain["c32"]["rps"],
            }
    return out


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    bare = next(r for r in rows if r["name"] == "bare aiohttp")
    bp50, brps = bare["c1"]["p50_ms"], bare["c32"]["rps"]
    head = (
        f"{'':40} {'1 client':>28} | {'32 clients':>40}\n"
        f"{'case':40} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>10} | {'req/s':>9} {'vs bare':>8} "
        f"{'p99 ms':>8} {'t/o':>5} {'err':>6}"
    )
    rounds = result.get("meta", {}).get("rounds", 1)
    lines = [
        f"best of {rounds} interleaved rounds per case (medians in the JSON); redis rows: one run",
        head,
        "-" * len(head.splitlines()[1]),
    ]
    for r in rows:
        c1, c32 = r["c1"], r["c32"]
        lines.append(
            f"{r['name']:40} {c1['p50_ms']:8.3f} {c1['p99_ms']:8.3f} "
            f"{c1['p50_ms'] - bp50:+10.3f} | "
            f"{c32['rps']:9.0f} {c32['rps'] / brps:8.1%} {c32['p99_ms']:8.2f} "
            f"{c32.get('timeouts', 0):5d} {c32.get('errors', 0):6d}"
        )
    lines.append("")
    direct = next((r for r in rows if r["name"] == DIRECT), None)
    if direct is not None:
        lines.append(f"added over '{DIRECT}', 1 client (what a user feels on a miss):")
        for r in rows:
            if r["name"].startswith("sidecar miss"):
                p50 = r["c1"]["p50_ms"] - direct["c1"]["p50_ms"]
                p99 = r["c1"]["p99_ms"] - direct["c1"]["p99_ms"]
                lines.append(f"  {r['name']:38} p50 {p50:+.3f} ms   p99 {p99:+.3f} ms")
        lines.append("")
    costs = tracing_cost(rows)
    if costs:
        lines.append(f"tracing on, against '{L1}' in the same run (1 client p50/p99; 32 clients):")
        for name, c in costs.items():
            lines.append(
                f"  {name:38} p50 {c['added_p50_ms']:+.3f} ms ({c['p50_ratio']:.2f}x)   "
                f"p99 {c['added_p99_ms']:+.3f} ms   req/s {c['rps_ratio_32_clients']:.1%}"
            )
        lines.append("")
    for name, v in result.get("verdicts", {}).items():
        detail = ", ".join(
            f"{k}={val:.3f}" if isinstance(val, float) else f"{k}={val}"
            for k, val in v.items()
            if k not in ("target", "pass")
        )
        lines.append(f"{'PASS' if v['pass'] else 'MISS'}  {name}: {detail}  [{v['target']}]")
    for r in rows:
        if r["check"]:
            lines.append(f"cache check {r['name']}: {r['check']}")
    return "\n".join(lines)


# -- profiling ---------------------------------------------------------------------------------


def profile_sidecar(
    seconds: float, tool: str, cases: list[str], log: Any = print
) -> dict[str, Any]:
    """Run the sidecar under cProfile for each case and say where its busy time goes."""
    out: dict[str, Any] = {}
    redis = RedisProc(core=CLIENT_CORE)
    upstream = llmcache("upstream-sim", "--listen", "127.0.0.1:0", core=CLIENT_CORE)
    path = "/anthropic/v1/messages"
    try:
        for case in cases:
            policy = {"exact": {"l1MaxEntries": 0}} if case == "sidecar L2 hit" else {}
            unique = case.startswith("sidecar miss")
            body = request_body(unique)
            prof = Path(tempfile.mkdtemp(prefix="llmcache-prof-")) / "sidecar.prof"
            shared = None if case.endswith("memory only") else redis.url
            sidecar = _sidecar(upstream.url, shared, policy, profile=prof)
            try:
                if not unique:
                    _post(sidecar.url + path, body)
                log(f"  profiling {case} ...")
                load = Load(sidecar.url + path, body, HEADERS, 32, seconds, unique)
                loadgen.run(replace(load, seconds=min(1.0, seconds)), CLIENT_CORE, tool)
                sidecar.popen.send_signal(signal.SIGUSR1)
                loadgen.run(load, CLIENT_CORE, tool)
                sidecar.popen.send_signal(signal.SIGUSR2)
                wait_until(lambda p=sidecar: "profile written" in p.output(), timeout=30)
            finally:
                sidecar.stop(timeout=30)
            out[case] = top_functions(prof)
            prof.unlink(missing_ok=True)
            redis.command("FLUSHALL")
    finally:
        upstream.stop()
        redis.stop()
    return out


def top_functions(prof: Path, n: int = 18) -> dict[str, Any]:
    stats = pstats.Stats(str(prof))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    busy = 0.0
    rows = []
    for (filename, line, func), (_cc, _nc, tt, ct, _callers) in raw.items():
        if "select.epoll" in func:  # the event loop waiting: idle, not work
            continue
        busy += tt
        rows.append((filename, line, func, tt, ct))
    root = str(Path(__file__).resolve().parent.parent)

    def where(filename: str, line: int, func: str) -> str:
        short = filename.replace(root + "/", "").replace(sys.prefix + "/", "")
        short = short.split("site-packages/")[-1]
        return f"{short}:{line}:{func}" if filename != "~" else func

    groups: dict[str, float] = {}
    for filename, _line, func, tt, _ct in rows:
        groups[_package(filename, func)] = groups.get(_package(filename, func), 0.0) + tt
    by_self = sorted(rows, key=lambda r: r[3], reverse=True)[:n]
    ours = [r for r in rows if "/sidecar/" in r[0] or "/llmcache/" in r[0]]
    by_cum = sorted(ours, key=lambda r: r[4], reverse=True)[:n]
    return {
        "busy_seconds": busy,
        "self_time_by_package": {
            k: 100 * v / busy for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "self_time": [
            {"where": where(f, ln, fn), "pct": 100 * tt / busy} for f, ln, fn, tt, _ in by_self
        ],
        "cumulative_in_llmcache": [
            {"where": where(f, ln, fn), "pct": 100 * ct / busy} for f, ln, fn, _, ct in by_cum
        ],
    }


def _package(filename: str, func: str) -> str:
    """Which library a profiled function belongs to, for a coarse breakdown."""
    for name in ("prometheus_client", "aiohttp", "multidict", "yarl", "redis", "pydantic"):
        if f"/{name}/" in filename:
            return name
    if "/sidecar/" in filename or "/llmcache/" in filename:
        return "llmcache (sidecar code)"
    if "/json/" in filename or "json" in func:
        return "json"
    if "/asyncio/" in filename:
        return "asyncio"
    if filename == "~":
        return "builtins / C (socket send, hashing, zlib, ...)"
    return "other stdlib"


def profile_text(profiles: dict[str, Any]) -> str:
    lines = []
    for case, p in profiles.items():
        lines.append(f"\n== {case}: cProfile, {p['busy_seconds']:.2f} s busy (idle epoll excluded)")
        lines.append("  self time by package:")
        lines.extend(f"    {v:5.1f} %  {k}" for k, v in p["self_time_by_package"].items())
        lines.append("  self time, top functions:")
        lines.extend(f"    {e['pct']:5.1f} %  {e['where']}" for e in p["self_time"])
        lines.append("  cumulative, llmcache code:")
        lines.extend(f"    {e['pct']:5.1f} %  {e['where']}" for e in p["cumulative_in_llmcache"])
    return "\n".join(lines)


# -- command -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds; the table shows the best, the JSON also the medians",
    )
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--out", default=str(RESULTS / "latency.json"), help="JSON output")
    parser.add_argument(
        "--base-tree", metavar="DIR",
        help="also run the sidecar cases from the llmcache package in DIR (e.g. `make "
        "pkgtree` of another checkout), interleaved: rows marked [base]",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=["auto", "always", "never"], default="auto",
        help="cProfile the sidecar under load (auto: when it misses a target)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    started = time.time()
    print(f"llmcache bench latency: {args.seconds:g} s per measurement, server on core "
          f"{SERVER_CORE}, load generator on core {CLIENT_CORE}", flush=True)  # fmt: skip
    result = measure(
        args.seconds,
        args.rounds,
        args.loadgen,
        log=lambda m: print(m, flush=True),
        base_tree=args.base_tree,
    )
    result["verdicts"] = verdicts(result["rows"])
    result["tracing_cost"] = tracing_cost(result["rows"])
    missed = [name for name, v in result["verdicts"].items() if not v["pass"]]
    if args.profile == "always" or (args.profile == "auto" and missed):
        cases = missed or ["sidecar L1 hit", "sidecar L2 hit", "sidecar miss"]
        result["profiles"] = profile_sidecar(args.seconds, args.loadgen, cases)
    result["meta"] = {
        "command": "llmcache bench latency " + " ".join(sys.argv[3:]),
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "loadgen": result["rows"][0]["c1"]["tool"],
        "server_core": SERVER_CORE,
        "client_core": CLIENT_CORE,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": time.time() - started,
    }
    print()
    print(table(result))
    if "profiles" in result:
        print(profile_text(result["profiles"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0
