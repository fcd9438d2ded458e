"""Shadow mode's threshold advice, from live traffic.

In shadow mode every best candidate within ``SHADOW_MARGIN`` below the threshold is judged
once the fresh answer arrives (same answer or not, see ``layer._score_shadow``), whether or
not it would have been served. From those judgements the advisor gives the lowest threshold
at which no judged-wrong candidate would have been served (the guards still apply), and the
share of judged-correct candidates that threshold would serve: an operator reads both in
``GET /stats`` and in ``llmcache_semantic_shadow_recommended_{threshold,recall}`` before
turning shadow mode off.

Only the latest ``capacity`` judgements count, so the advice follows the traffic as it is.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

SHADOW_MARGIN = 0.10  # how far below the threshold candidates are still judged
MIN_JUDGED = 20  # judgements before any advice: fewer say little about a threshold
STEP = 0.005  # thresholds are advised on this grid


@dataclass(frozen=True, slots=True)
class Judgement:
    score: float
    correct: bool
    vetoed_by: str | None  # the guard that vetoed the candidate, if one did


class ThresholdAdvisor:
    def __init__(self, threshold: float, capacity: int = 5000) -> None:
        self.threshold = threshold
        self.floor = max(threshold - SHADOW_MARGIN, 0.0)
        self._judged: deque[Judgement] = deque(maxlen=capacity)

    def observe(self, score: float, correct: bool, vetoed_by: str | None) -> None:
        self._judged.append(Judgement(score, correct, vetoed_by))

    def recommended(self) -> tuple[float, float] | None:
        """(threshold, recall), or None until ``MIN_JUDGED`` judgements or while no
        threshold serves a correct candidate without also serving a wrong one."""
        judged = list(self._judged)
        if len(judged) < MIN_JUDGED:
            return None
        servable = [j for j in judged if j.vetoed_by is None]
        wrong = [j.score for j in servable if not j.correct]
        right = sorted(j.score for j in servable if j.correct)
        if wrong:
            threshold = _grid_above(max(wrong))
        elif right:
            threshold = _grid_at_or_below(right[0])
        else:
            return None
        threshold = max(threshold, self.floor)
        if threshold > 1.0:
            return None
        served = sum(1 for s in right if s >= threshold)
        if not served:
            return None
        return threshold, served / sum(1 for j in judged if j.correct)

    def report(self) -> dict[str, Any]:
        """The ``GET /stats`` view: the advice, what the current threshold would serve, and
        each guard's vetoes split by judgement (a guard that vetoes correct candidates
        costs recall; one that vetoes wrong ones earns its keep)."""
        judged = list(self._judged)
        correct = sum(1 for j in judged if j.correct)
        current = [j for j in judged if j.vetoed_by is None and j.score >= self.threshold]
        vetoes: dict[str, dict[str, int]] = {}
        for j in judged:
            if j.vetoed_by is not None:
                verdicts = vetoes.setdefault(j.vetoed_by, {"correct": 0, "wrong": 0})
                verdicts["correct" if j.correct else "wrong"] += 1
        found = self.recommended()
        return {
            "judged": len(judged),
            "judgedCorrect": correct,
            "current": {
                "threshold": self.threshold,
                "wouldHit": len(current),
                "wrong": sum(1 for j in current if not j.correct),
                "recall": round(sum(1 for j in current if j.correct) / correct, 4)
                if correct
                else 0.0,
            },
            "recommended": None
            if found is None
            else {"threshold": found[0], "recall": round(found[1], 4)},
            "vetoes": vetoes,
        }


def _grid_above(x: float) -> float:
    """The lowest threshold on the ``STEP`` grid strictly above ``x``."""
    t = round(math.ceil(x / STEP - 1e-6) * STEP, 6)
    return t if t > x else round(t + STEP, 6)


def _grid_at_or_below(x: float) -> float:
    t = round(math.floor(x / STEP + 1e-6) * STEP, 6)
    return t if t <= x else round(t - STEP, 6)
