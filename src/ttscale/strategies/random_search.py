"""Random search (tt-scale-flux, after Ma et al. 2025): round r draws a fresh pool of 2**r noises.

The pools double, so the best-so-far curve over rounds is a scaling curve in log-compute; no seed
is drawn twice. Black-box: only `search.draw` is used. The runner keeps the top k of all rounds.
"""

from __future__ import annotations

from typing import Any

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult


def random_search(search: Search, *, rounds: int | None = None) -> SearchResult:
    """Rounds of 1, 2, 4, ... fresh candidates until `rounds` or the budget (a last round may be partial)."""
    if rounds is None and not search.meter.budget.bounded:
        raise TTScaleError("random-search needs `rounds` or a budget (--nfe / --verifier-calls) to know when to stop")
    candidates: list[Candidate] = []
    records: list[dict[str, Any]] = []
    best = float("-inf")
    r = 0
    while rounds is None or r < rounds:
        size = 2**r
        n = search.affordable(size)
        if n == 0:
            break
        start = len(candidates)
        pool = search.draw([search.seed(start + j) for j in range(n)], round=r)
        if not pool:
            break
        candidates += pool
        top = max(pool, key=lambda c: c.score)
        best = max(best, top.score)
        records.append(
            {
                "round": r,
                "pool": len(pool),
                "partial": len(pool) < size,
                "best_of_round": top.score,
                "best_of_round_seed": top.seed,
                "best": best,
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )
        if len(pool) < size:
            break
        r += 1
    return SearchResult(candidates, records)
