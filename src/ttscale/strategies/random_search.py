"""Random search (tt-scale-flux, after Ma et al. 2025): round r draws a fresh pool of 2**r noises.

The pools double, so the best-so-far curve over rounds is a scaling curve in log-compute; no seed
is drawn twice. Black-box: only `search.draw` is used. The runner keeps the top k of all rounds.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ttscale.candidate import Candidate
from ttscale.search import Round, Search, SearchResult, StrategyParams


class Params(StrategyParams):
    strategy: Literal["random-search"] = "random-search"
    rounds: int | None = Field(None, ge=1, description="rounds of 1, 2, 4 … fresh noises; unset: until the budget ends")

    n_instead: ClassVar[str] = "its pools double each round: set params.rounds, or a budget"
    open_ended: ClassVar[str | None] = "rounds"


def random_search(search: Search, params: Params = Params()) -> SearchResult:
    """Rounds of 1, 2, 4, ... fresh candidates until `rounds` or the budget (a last round may be partial)."""
    params.stops(search.meter.budget)
    candidates: list[Candidate] = []
    records: list[Round] = []
    best = float("-inf")
    r = 0
    while params.rounds is None or r < params.rounds:
        size = 2**r
        pool = search.draw([search.seed(len(candidates) + j) for j in range(search.most(size, search.sample_cost))], r)
        if not pool:
            break
        candidates += pool
        top = max(pool, key=lambda c: c.score)
        best = max(best, top.score)
        partial = len(pool) < size
        extra = {"partial": partial, "best_of_round": top.score, "best_of_round_seed": top.seed}
        records.append(search.record(r, len(pool), best, **extra))
        if partial:
            break
        r += 1
    return SearchResult(candidates, records)
