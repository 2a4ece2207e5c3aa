"""Early pruning: start many candidates, judge them part-way by their x0 look-ahead, finish only the best.

Layout and composition settle in the first third of the schedule, so a look-ahead there (optionally with a
cheaper verifier) ranks candidates well enough to spend the remaining steps on a few (cf. Ma et al. 2025).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ttscale.generator import require_steps
from ttscale.search import Cost, Round, Search, SearchResult, StrategyParams


class Params(StrategyParams):
    strategy: Literal["early-pruning"] = "early-pruning"
    n: int = Field(16, ge=1, description="candidates started")
    at: float = Field(0.3, ge=0.0, le=1.0, description="where the look-ahead is judged, as a fraction of the steps")
    keep: int = Field(4, ge=1, description="candidates finished")
    cheap_verifier: str | None = Field(None, description="a verifier for the look-ahead; unset: the main one")

    n_field: ClassVar[str | None] = "n"
    judges: ClassVar[tuple[str, ...]] = ("cheap_verifier",)


def early_pruning(search: Search, params: Params = Params()) -> SearchResult:
    """Run n candidates to the step at fraction `at`, finish the `keep` best look-aheads, score those.

    The look-ahead is scored by `cheap_verifier` when given (its calls count as verifier calls), else by
    the main verifier. Within the budget `keep` is kept if at all possible and as many candidates started as
    can all be judged and the kept ones finished; when no more than `keep` can be started, nothing is pruned
    (no look-ahead, empty `path`). Otherwise `path` is [["pruned_at", step, rank]], rank 0 the best look-ahead.
    The kept ones go on with their own solver history (and a consistency sampler's seed noise), so each
    finishes as a plain run of its seed would.
    """
    gen = require_steps(search.generator, "early-pruning")
    steps, per_call = gen.schedule().steps, gen.nfe_per_call
    look_at = min(steps - 1, round(params.at * steps))
    kept = search.most(min(params.keep, params.n), lambda k: _cost(k, k, steps, look_at, per_call))
    if kept == 0:
        return SearchResult([])
    started = kept + search.most(params.n - kept, lambda m: _cost(kept + m, kept, steps, look_at, per_call))
    t = search.trajectories([search.seed(j) for j in range(started)]).advance(look_at)
    x0 = t.lookahead()
    chosen, ops = list(range(started)), None
    records: list[Round] = []
    if started > kept:
        cheap = search.judge(params, "cheap_verifier")
        look = search.score(t.decode(x0), cheap)[0]
        chosen = sorted(range(started), key=lambda j: (-float(look[j]), j))[:kept]
        ops = [["pruned_at", look_at, rank] for rank in range(kept)]
        name = cheap.name if cheap is not None else getattr(search.verifier, "name", "none")
        records.append(search.record(0, started, float(look.max()), step=look_at, kept=kept, verifier=name))
    t = t.take(chosen, ops).step(x0[chosen]).advance(steps)
    return search.finish(t, records)


def _cost(started: int, kept: int, steps: int, look_at: int, per_call: int) -> Cost:
    """Start `started`, judge all at the look-ahead and finish `kept`; no look-ahead when none is pruned."""
    if started <= kept:
        return {"nfe": started * steps * per_call, "verifier_calls": started}
    nfe = (started * (look_at + 1) + kept * (steps - look_at - 1)) * per_call
    return {"nfe": nfe, "verifier_calls": started + kept}
