"""Best-of-N (SANA-1.5): draw N independent candidates, score each once; the runner keeps the top k.

With `n=None` the budget decides N (drawing batch by batch until it ends), so a sweep over budgets
is a sweep over N. Candidate j always has seed j of the prompt, so best-of-n is a prefix of best-of-N.
"""

from __future__ import annotations

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult


def best_of_n(search: Search, n: int | None = None) -> SearchResult:
    if n is None and not search.meter.budget.bounded:
        raise TTScaleError(
            "best-of-n needs `n` or a budget (--nfe / --verifier-calls / --seconds) to know when to stop"
        )
    candidates: list[Candidate] = []
    while n is None or len(candidates) < n:
        want = search.batch_size if n is None else min(search.batch_size, n - len(candidates))
        drawn = search.draw([search.seed(len(candidates) + j) for j in range(want)])
        candidates += drawn
        if len(drawn) < want:
            break
    best = max((c.score for c in candidates), default=float("nan"))
    record = {"round": 0, "pool": len(candidates), "best": best, "nfe": search.meter.spent.nfe}
    return SearchResult(candidates, rounds=[record | {"verifier_calls": search.meter.spent.verifier_calls}])
