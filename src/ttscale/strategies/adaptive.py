"""Adaptive budget: draw candidates a batch at a time and stop as soon as the verifier is confident that
one is good enough (best score >= `threshold`), so easy prompts spend little and hard ones get the rest.

Black-box: only `search.draw` is used. Each batch's record says whether the search stopped after it and
why ("confident", "max_n" or "budget"); the meter holds what was spent.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ttscale.candidate import Candidate
from ttscale.search import Round, Search, SearchResult, StrategyParams


class Params(StrategyParams):
    strategy: Literal["adaptive"] = "adaptive"
    threshold: float = Field(0.9, description="stop once the best score reaches this")
    batch: int = Field(4, ge=1, description="fresh candidates drawn between checks")
    max_n: int | None = Field(None, ge=1, description="at most this many candidates; unset: until the budget ends")

    n_field: ClassVar[str | None] = "max_n"
    open_ended: ClassVar[str | None] = "max_n"


def adaptive(search: Search, params: Params = Params()) -> SearchResult:
    """Batches of `batch` fresh candidates until the best reaches `threshold`, `max_n` are drawn, or the budget ends."""
    params.stops(search.meter.budget)
    candidates: list[Candidate] = []
    records: list[Round] = []
    best = float("-inf")
    while True:
        want = params.batch if params.max_n is None else min(params.batch, params.max_n - len(candidates))
        drawn = search.draw([search.seed(len(candidates) + j) for j in range(want)], round=len(records))
        if not drawn:
            if records:
                records[-1].extra["stop"] = "budget"
            break
        candidates += drawn
        best = max(best, *(c.score for c in drawn))
        stop = None
        if best >= params.threshold:
            stop = "confident"
        elif params.max_n is not None and len(candidates) >= params.max_n:
            stop = "max_n"
        elif len(drawn) < want:
            stop = "budget"
        extra: dict[str, Any] = {"drawn": len(candidates), "best_of_round": max(c.score for c in drawn)}
        records.append(
            search.record(len(records), len(drawn), best, **extra, confident=best >= params.threshold, stop=stop)
        )
        if stop is not None:
            break
    return SearchResult(candidates, records)
