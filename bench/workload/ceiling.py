"""The best any cache could do on a trace: the bound the measured modes are read against.

Whether a cache meets a wall-time target depends as much on the trace as on the cache: a
first ask or a fresh prompt must go upstream, and agents run in parallel, so the wall time is
the slowest agent's chain of misses. This replays the trace in simulated time with a perfect
cache: each agent runs its steps in order; a step costs what it cost in the measured no-cache
run (its slowest concurrent request) unless its answer is already known, which costs nothing,
or in flight, which costs the wait for it. ``exact`` knows an answer once the identical
request was answered; ``semantic`` once any wording of the same task was (as a semantic layer
that never misses and never errs would). The measured modes show how close the sidecar gets.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from .trace import Req, Trace

StepCosts = Mapping[tuple[str, int], float]  # (agent, step index) -> seconds without a cache


def _identity(req: Req, semantic: bool) -> str:
    if semantic and req.group >= 0 and req.route != "openai.embeddings":
        # one answer per task and role; embeddings are vectors of the exact text, never shared
        return f"{req.route} {req.role} {req.group}"
    return req.answer_key()


def wall_seconds(trace: Trace, costs: StepCosts, cache: str | None) -> float:
    """Simulated wall time of the trace: no cache (``None``), a perfect ``exact`` cache or a
    perfect ``semantic`` one."""
    known: dict[str, float] = {}  # identity -> time its answer exists
    clock = [(0.0, name, 0) for name in trace.agents]  # (time, agent, next step)
    heapq.heapify(clock)
    end = 0.0
    while clock:
        now, name, i = heapq.heappop(clock)
        steps = trace.agents[name]
        if i == len(steps):
            end = max(end, now)
            continue
        ident = _identity(steps[i].requests[0], cache == "semantic")
        ready = known.get(ident) if cache else None
        if ready is None:
            ready = now + costs[(name, i)]
            known[ident] = ready
        heapq.heappush(clock, (max(now, ready), name, i + 1))
    return end


def ceiling(trace: Trace, costs: StepCosts) -> dict[str, float]:
    """Wall-time change of a perfect exact and a perfect semantic cache against no cache, all
    three simulated from the same step costs."""
    base = wall_seconds(trace, costs, None)
    if base <= 0:
        return {"exact": 0.0, "semantic": 0.0}
    return {mode: wall_seconds(trace, costs, mode) / base - 1 for mode in ("exact", "semantic")}
