"""Adaptive budget: draw candidates a batch at a time and stop as soon as the verifier is confident that
one is good enough (best score >= `threshold`), so easy prompts spend little and hard ones get the rest.

Black-box: only `search.draw` is used. Each batch's record says whether the search stopped after it and
why ("confident", "max_n" or "budget"); the meter holds what was spent.
"""

from __future__ import annotations

from typing import Any

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult


def adaptive(search: Search, *, threshold: float = 0.9, batch: int = 4, max_n: int | None = None) -> SearchResult:
    """Batches of `batch` fresh candidates until the best reaches `threshold`, `max_n` are drawn, or the budget ends."""
    if max_n is None and not search.meter.budget.bounded:
        raise TTScaleError("adaptive needs `max_n` or a budget (--nfe / --verifier-calls) to know when to stop")
    if batch < 1:
        raise TTScaleError(f"adaptive: batch must be at least 1 (got {batch})")
    candidates: list[Candidate] = []
    records: list[dict[str, Any]] = []
    best = float("-inf")
    while True:
        want = batch if max_n is None else min(batch, max_n - len(candidates))
        drawn = search.draw([search.seed(len(candidates) + j) for j in range(want)], round=len(records))
        if not drawn:
            if records:
                records[-1]["stop"] = "budget"
            break
        candidates += drawn
        best = max(best, *(c.score for c in drawn))
        stop = None
        if best >= threshold:
            stop = "confident"
        elif max_n is not None and len(candidates) >= max_n:
            stop = "max_n"
        elif len(drawn) < want:
            stop = "budget"
        records.append(
            {
                "round": len(records),
                "pool": len(drawn),
                "drawn": len(candidates),
                "best_of_round": max(c.score for c in drawn),
                "best": best,
                "confident": best >= threshold,
                "stop": stop,
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )
        if stop is not None:
            break
    return SearchResult(candidates, records)
