"""Early pruning: start many candidates, judge them part-way by their x0 look-ahead, finish only the best.

Layout and composition settle in the first third of the schedule, so a look-ahead there (optionally with a
cheaper verifier) ranks candidates well enough to spend the remaining steps on a few (cf. Ma et al. 2025).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.generator import Schedule, StepGenerator, require_steps
from ttscale.loading import shared_verifier
from ttscale.samplers import sample, step
from ttscale.search import Search, SearchResult
from ttscale.verifier import MeteredVerifier, scores_for

Scorer = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


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
    x = _run(gen, gen.noise(seeds), 0, look_at, cond, sched, search.batch_size)
    x0 = torch.cat(
        [gen.denoise(x[s : s + search.batch_size], look_at, cond) for s in range(0, started, search.batch_size)]
    )
    rounds: list[dict[str, Any]] = []
    chosen = list(range(started))
    paths: list[list[list[Any]]] = [[] for _ in range(started)]
    if started > kept:
        judge: Scorer = search.score
        if cheap_verifier is not None:
            cheap = MeteredVerifier(shared_verifier(cheap_verifier, device=str(x.device)), search.meter)
            judge = partial(scores_for, cheap, prompt=search.prompt)
        look = _score_images(judge, gen.decode(x0), search.batch_size)[0]
        chosen = sorted(range(started), key=lambda j: (-float(look[j]), j))[:kept]
        paths = [[["pruned_at", look_at, rank]] for rank in range(kept)]
        rounds.append(
            {
                "round": 0,
                "step": look_at,
                "pool": started,
                "kept": kept,
                "verifier": cheap_verifier or search.verifier.name,
                "best": float(look.max()),
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )

    index = torch.tensor(chosen, device=x.device)
    x = _run(gen, step(x[index], x0[index], sched, look_at), look_at + 1, steps, cond, sched, search.batch_size)
    images = gen.decode(x)
    ranking, metrics = _score_images(search.score, images, search.batch_size)
    final = len(rounds)
    rounds.append(
        {
            "round": final,
            "step": steps,
            "pool": kept,
            "best": float(ranking.max()),
            "nfe": search.meter.spent.nfe,
            "verifier_calls": search.meter.spent.verifier_calls,
        }
    )
    candidates = [
        Candidate(
            seed=seeds[j],
            image=images[r].cpu(),
            scores={key: float(v[r]) for key, v in metrics.items()},
            score=float(ranking[r]),
            nfe=steps * per_call,
            round=final,
            path=paths[r],
        )
        for r, j in enumerate(chosen)
    ]
    return SearchResult(candidates, rounds)


def _run(
    gen: StepGenerator, x: torch.Tensor, start: int, stop: int, cond: Any, sched: Schedule, batch_size: int
) -> torch.Tensor:
    return torch.cat(
        [
            sample(lambda y, i: gen.denoise(y, i, cond), x[s : s + batch_size], sched, start=start, stop=stop)
            for s in range(0, len(x), batch_size)
        ]
    )


def _score_images(score: Scorer, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = [score(images[s : s + batch_size]) for s in range(0, len(images), batch_size)]
    return torch.cat([r for r, _ in parts]), {k: torch.cat([m[k] for _, m in parts]) for k in parts[0][1]}
