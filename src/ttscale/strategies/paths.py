"""Search over paths (Ma et al. 2025, "Inference-time scaling for diffusion models beyond scaling denoising
steps"): instead of only picking among finished samples, prune and branch trajectories part-way, where the
x0 look-ahead already tells good layouts from bad ones, and spend the rest of the compute refining the best.
"""

from __future__ import annotations

from typing import Any

import torch

from ttscale.budget import Meter
from ttscale.errors import TTScaleError
from ttscale.generator import StepGenerator, require_steps
from ttscale.samplers import step
from ttscale.search import Search, SearchResult
from ttscale.seeds import gaussian


def search_over_paths(
    search: Search,
    *,
    n: int = 8,
    branch_at: tuple[int, ...] | None = None,
    width: int = 4,
    keep: int = 2,
    eta: float = 1.0,
) -> SearchResult:
    """Start n noises; at each branch step keep the `keep` best look-aheads and branch each into `width` children.

    Children of one parent share its x0 estimate and differ by the fresh noise of one stochastic step
    (`eta` > 0) from the branch step; between branch steps and after the last one trajectories move
    deterministically. With a multistep solver (DPM-Solver++(2M)) a stochastic branch step and the step
    after it are first order: 2M extrapolates x0 along one ODE path, and the fresh noise has just moved
    each child off the path its parent's estimates were made on. With a consistency sampler (SANA-Sprint)
    every step re-noises, whatever `eta`: a branch step with its branch noise, the others with the stream of
    the trajectory's seed (`samplers.seed_noise`, as a plain run of that seed). `branch_at` defaults to
    three evenly spaced grid points in the first two thirds of the schedule (4, 8, 13 of 20 steps; 1, 2 of
    4), where the look-ahead is informative and there is still room to change the image. Candidates are
    the finished survivors; `path` lists ["branch", step, seed]: their x at step + 1 is `samplers.step(x, denoise(x, step), sched, step, eta, gaussian([seed], shape))`.

    Budget: before each stage the search makes sure what it holds can still be completed (finished
    outright, or scored at the next branch step with only the best one finished), shrinking the number of
    starting noises and children to what the budget pays and finishing the survivors when it pays no more.
    """
    gen = require_steps(search.generator, "search-over-paths")
    sched = gen.schedule()
    steps, per_call = sched.steps, gen.nfe_per_call
    stages = _branch_steps(steps) if branch_at is None else tuple(branch_at)
    if list(stages) != sorted(set(stages)) or not all(0 <= b <= steps - 2 for b in stages):
        raise TTScaleError(f"branch_at must be increasing steps in 0..{steps - 2}, got {list(stages)}")
    if n < 1 or width < 1 or keep < 1:
        raise TTScaleError("search-over-paths needs n, width and keep >= 1")
    # A time limit stops the branching but never the finishing, so completion is judged without it.
    untimed = Meter(search.meter.budget.model_copy(update={"seconds": None}), search.meter.spent)

    def fits(nfe: int, calls: int, pool: int, grid: int, nxt: int | None) -> bool:
        """Whether spending (nfe, calls) now leaves enough to complete `pool` trajectories at `grid`."""
        options = [(pool * (steps - grid) * per_call, pool)]  # finish them all
        if nxt is not None:  # or score them at the next branch step and finish only the best
            options.append(((pool * (nxt + 1 - grid) + steps - nxt - 1) * per_call, pool + 1))
        return any(untimed.affords(nfe=nfe + a, verifier_calls=calls + v) for a, v in options)

    first = stages[0] if stages else None
    count = next((m for m in range(n, 0, -1) if fits(0, 0, m, 0, first)), 0) if search.meter.affords() else 0
    if count == 0:
        return SearchResult([])

    seeds = [search.seed(j) for j in range(count)]
    paths: list[list[list[Any]]] = [[] for _ in range(count)]
    cond = gen.encode(search.prompt)
    x = gen.noise(seeds)
    prev_x0: torch.Tensor | None = None
    grid, drawn = 0, 0
    rounds: list[dict[str, Any]] = []
    for k, b in enumerate(stages):
        x, prev_x0 = search.denoise_steps(gen, x, seeds, cond, grid, b, prev_x0)
        grid, pool = b, len(x)
        nxt = stages[k + 1] if k + 1 < len(stages) else None
        most = min(keep, pool) * width
        children = next((c for c in range(most, 0, -1) if fits(pool * per_call, pool, c, b + 1, nxt)), 0)
        if not search.meter.affords():  # out of time: finish as cheaply as the budget allows
            children = 0 if fits(0, 0, pool, b, None) else min(children, 1)
        if children == 0:
            break
        x0 = _denoise(gen, x, b, cond, search.batch_size)
        ranking = search.score(gen.decode(x0))[0]
        parents = sorted(range(pool), key=lambda j: (-float(ranking[j]), j))[: min(keep, children)]
        kids = [
            parent
            for r, parent in enumerate(parents)
            for _ in range(children // len(parents) + (r < children % len(parents)))
        ]
        branch_seeds = [search.seed(drawn + m, "branch") for m in range(children)]
        drawn += children
        index = torch.tensor(kids, device=x.device)
        noise = gaussian(branch_seeds, tuple(x.shape[1:])).to(x.device)
        x = step(
            x[index], x0[index], sched, b, eta=eta, noise=noise, prev_x0=None if prev_x0 is None else prev_x0[index]
        )
        prev_x0 = x0[index] if eta == 0.0 else None  # a re-noised child starts its solver history afresh
        seeds = [seeds[j] for j in kids]
        paths = [[*paths[j], ["branch", b, s]] for j, s in zip(kids, branch_seeds, strict=True)]
        grid = b + 1
        rounds.append(
            {
                "round": len(rounds),
                "step": b,
                "pool": pool,
                "kept": len(parents),
                "children": children,
                "best": float(ranking.max()),
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )

    x, _ = search.denoise_steps(gen, x, seeds, cond, grid, steps, prev_x0)
    return search.finish(gen, x, seeds, paths, rounds, steps * per_call)


def _branch_steps(steps: int) -> tuple[int, ...]:
    """Three evenly spaced steps in the first two thirds of the schedule (fewer on short schedules)."""
    top = min(2 * steps // 3, steps - 2)
    if top < 1:
        return (0,) if steps >= 2 else ()
    return tuple(sorted({max(1, top * k // 3) for k in (1, 2, 3)}))


def _denoise(gen: StepGenerator, x: torch.Tensor, i: int, cond: Any, batch_size: int) -> torch.Tensor:
    return torch.cat([gen.denoise(x[s : s + batch_size], i, cond) for s in range(0, len(x), batch_size)])
