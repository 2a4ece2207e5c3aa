"""Early pruning: start many candidates, judge them part-way by their x0 look-ahead, finish only the best.

Layout and composition settle in the first third of the schedule, so a look-ahead there (optionally with a
cheaper verifier) ranks candidates well enough to spend the remaining steps on a few (cf. Ma et al. 2025).
"""

from __future__ import annotations

from typing import Any

import torch

from ttscale.config import NO_VERIFIER
from ttscale.errors import TTScaleError
from ttscale.generator import require_steps
from ttscale.registry import shared_verifier
from ttscale.samplers import seed_noise, step, step_noise
from ttscale.search import Search, SearchResult
from ttscale.verifier import MeteredVerifier


def early_pruning(
    search: Search, *, n: int = 16, at: float = 0.3, keep: int = 4, cheap_verifier: str | None = None
) -> SearchResult:
    """Run n candidates to the step at fraction `at`, finish the `keep` best look-aheads, score those.

    The look-ahead is scored by `cheap_verifier` when given (its calls count as verifier calls), else by
    the main verifier. Within the budget `keep` is kept if at all possible and as many candidates started as
    can all be judged and the kept ones finished; when no more than `keep` can be started, nothing is pruned
    (no look-ahead, empty `path`). Otherwise `path` is [["pruned_at", step, rank]], rank 0 the best look-ahead.
    """
    gen = require_steps(search.generator, "early-pruning")
    if not 0.0 <= at <= 1.0 or n < 1 or keep < 1:
        raise TTScaleError("early-pruning needs 0 <= at <= 1, n >= 1 and keep >= 1")
    sched = gen.schedule()
    steps, per_call = sched.steps, gen.nfe_per_call
    look_at = min(steps - 1, round(at * steps))

    def cost(started: int, kept: int) -> dict[str, int]:
        if started <= kept:
            return {"nfe": started * steps * per_call, "verifier_calls": started}
        nfe = (started * (look_at + 1) + kept * (steps - look_at - 1)) * per_call
        return {"nfe": nfe, "verifier_calls": started + kept}

    plans = ((m, k) for k in range(min(keep, n), 0, -1) for m in range(n, k - 1, -1))
    started, kept = next(((m, k) for m, k in plans if search.meter.affords(**cost(m, k))), (0, 0))
    if started == 0:
        return SearchResult([])

    seeds = [search.seed(j) for j in range(started)]
    cond = gen.encode(search.prompt)
    x, prev_x0 = search.denoise_steps(gen, gen.noise(seeds), seeds, cond, 0, look_at)
    x0 = torch.cat(
        [gen.denoise(x[s : s + search.batch_size], look_at, cond) for s in range(0, started, search.batch_size)]
    )
    rounds: list[dict[str, Any]] = []
    chosen = list(range(started))
    paths: list[list[list[Any]]] = [[] for _ in range(started)]
    if started > kept:
        cheap = None
        if cheap_verifier is not None:
            cheap = MeteredVerifier(shared_verifier(cheap_verifier, device=str(x.device)), search.meter)
        look = search.score(gen.decode(x0), cheap)[0]
        chosen = sorted(range(started), key=lambda j: (-float(look[j]), j))[:kept]
        paths = [[["pruned_at", look_at, rank]] for rank in range(kept)]
        rounds.append(
            {
                "round": 0,
                "step": look_at,
                "pool": started,
                "kept": kept,
                "verifier": cheap_verifier or (search.verifier.name if search.verifier else NO_VERIFIER),
                "best": float(look.max()),
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )

    # the kept ones go on with their own solver history, so each finishes as a plain run of its seed would
    # (and, with a consistency sampler, their own seed's step noise)
    kept_seeds = [seeds[j] for j in chosen]
    index = torch.tensor(chosen, device=x.device)
    fresh = step_noise(seed_noise(kept_seeds, x), sched, look_at)
    x = step(x[index], x0[index], sched, look_at, noise=fresh, prev_x0=None if prev_x0 is None else prev_x0[index])
    x, _ = search.denoise_steps(gen, x, kept_seeds, cond, look_at + 1, steps, x0[index])
    return search.finish(gen, x, kept_seeds, paths[: len(chosen)], rounds, steps * per_call)
