"""Best-of-N (SANA-1.5): draw N independent candidates, score each once; the runner keeps the top k.

With `n` unset the budget decides N (drawing batch by batch until it ends), so a sweep over budgets
is a sweep over N. Candidate j always has seed j of the prompt, so best-of-n is a prefix of best-of-N.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ttscale.candidate import Candidate
from ttscale.search import Search, SearchResult, StrategyParams


class Params(StrategyParams):
    strategy: Literal["best-of-n"] = "best-of-n"
    n: int | None = Field(None, ge=1, description="candidates per prompt; unset: as many as the budget pays")

    n_field: ClassVar[str | None] = "n"
    open_ended: ClassVar[str | None] = "n"


def best_of_n(search: Search, params: Params = Params()) -> SearchResult:
    params.stops(search.meter.budget)
    n = params.n
    candidates: list[Candidate] = []
    while n is None or len(candidates) < n:
        want = search.batch_size if n is None else min(search.batch_size, n - len(candidates))
        drawn = search.draw([search.seed(len(candidates) + j) for j in range(want)])
        candidates += drawn
        if len(drawn) < want:
            break
    best = max((c.score for c in candidates), default=float("nan"))
    return SearchResult(candidates, [search.record(0, len(candidates), best)])
