"""Best-of-N (SANA-1.5): draw N independent candidates, score each once; the runner keeps the top k.

With `n=None` the budget decides N, so a sweep over budgets is a sweep over N.
"""

from __future__ import annotations

from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult


def best_of_n(search: Search, n: int | None = None) -> SearchResult:
    if n is None:
        n = search.affordable(1 << 30)
        if n == 1 << 30:
            raise TTScaleError("best-of-n needs `n` or a budget (--nfe / --verifier-calls) to know when to stop")
    candidates = search.draw([search.seed(j) for j in range(n)])
    best = max((c.score for c in candidates), default=float("nan"))
    return SearchResult(
        candidates, rounds=[{"round": 0, "pool": len(candidates), "best": best, "nfe": search.meter.spent.nfe}]
    )
