"""Load generators that run in their own process (pinned to their own core).

``wrk`` (C, one thread, a Lua script for POST bodies) is used when installed: it cannot be
the bottleneck of a Python server. The fallback is an aiohttp client process with
keep-alive connections, fine for smoke runs but slower than ``wrk``.

Both report the same JSON: requests, seconds, requests/s, p50/p99/max latency in ms,
timeouts, errors (connect/read/write failures and non-2xx answers).

``unique`` bodies splice a counter into the body, so that every request is a cache miss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .procs import pinned

MARKER = "@@N@@"  # where a unique counter goes in the body template
TIMEOUT_S = 2.0


@dataclass
class Load:
    url: str  # full URL, e.g. http://127.0.0.1:1234/anthropic/v1/messages
    body: str  # JSON text; may hold MARKER when unique
    headers: dict[str, str]
    concurrency: int
    seconds: float
    unique: bool = False


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int
    errors: int
    tool: str


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(load: Load, core: int | None, tool: str = "auto") -> LoadResult:
    """Apply ``load`` from a separate process; ``tool`` is auto, wrk or python."""
    if tool == "wrk" or (tool == "auto" and has_wrk()):
        return _run_wrk(load, core)
    return _run_python(load, core)


# -- wrk ---------------------------------------------------------------------------------------


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


_LUA = """
local counter = 0
local unique = {unique}
local prefix = {prefix}
local suffix = {suffix}
local fixed = nil
wrk.method = "POST"
{headers}
request = function()
  if unique then
    counter = counter + 1
    return wrk.format(nil, nil, nil, prefix .. tostring(counter) .. suffix)
  end
  if fixed == nil then fixed = wrk.format(nil, nil, nil, prefix) end
  return fixed
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _run_wrk(load: Load, core: int | None) -> LoadResult:
    if load.unique:
        nonce = f"{time.time_ns()}-"
        prefix, _, suffix = load.body.replace(MARKER, nonce + MARKER).partition(MARKER)
    else:
        prefix, suffix = load.body, ""
    headers = "\n".join(
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in load.headers.items()
    )
    script = _LUA.format(
        unique="true" if load.unique else "false",
        prefix=_lua_string(prefix),
        suffix=_lua_string(suffix),
        headers=headers,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        cmd = pinned(
            ["wrk", "-t1", f"-c{load.concurrency}", f"-d{max(1, round(load.seconds))}s",
             f"--timeout={int(TIMEOUT_S)}s", "-s", f.name, load.url],
            core,
        )  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=load.seconds + 60)
    finally:
        Path(f.name).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    r = json.loads(line[len("WRKJSON ") :])
    seconds = r["duration_us"] / 1e6
    return LoadResult(
        requests=r["requests"],
        seconds=seconds,
        rps=r["requests"] / seconds if seconds else 0.0,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        timeouts=r["timeout"],
        errors=r["connect"] + r["read"] + r["write"] + r["status"],
        tool="wrk",
    )


# -- python (aiohttp) --------------------------------------------------------------------------


def _run_python(load: Load, core: int | None) -> LoadResult:
    cmd = pinned([sys.executable, "-m", "llmcache.bench.loadgen"], core)
    out = subprocess.run(
        cmd,
        input=json.dumps(asdict(load)),
        capture_output=True,
        text=True,
        timeout=load.seconds + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"python load generator failed: {out.stderr}")
    return LoadResult(**json.loads(out.stdout.strip().splitlines()[-1]))


async def _drive(load: Load) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    timeouts = errors = 0
    counter = 0
    nonce = f"{time.time_ns()}-"
    connector = aiohttp.TCPConnector(limit=load.concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    fixed = load.body.encode()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + load.seconds

        async def worker() -> None:
            nonlocal timeouts, errors, counter
            while time.perf_counter() < deadline:
                if load.unique:
                    counter += 1
                    data = load.body.replace(MARKER, f"{nonce}{counter}").encode()
                else:
                    data = fixed
                t0 = time.perf_counter()
                try:
                    async with session.post(load.url, data=data, headers=load.headers) as r:
                        await r.read()
                        if r.status >= 300:
                            errors += 1
                except TimeoutError:
                    timeouts += 1
                    continue
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
        seconds = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    n = len(latencies) + errors
    return LoadResult(
        requests=n,
        seconds=seconds,
        rps=n / seconds if seconds else 0.0,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        timeouts=timeouts,
        errors=errors,
        tool="python-aiohttp",
    )


def main() -> None:
    argparse.ArgumentParser(description="reads a Load as JSON on stdin").parse_args()
    load = Load(**json.loads(sys.stdin.read()))
    print(json.dumps(asdict(asyncio.run(_drive(load)))))


if __name__ == "__main__":
    main()
