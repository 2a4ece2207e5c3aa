"""Search over paths (Ma et al. 2025, "Inference-time scaling for diffusion models beyond scaling denoising
steps"): instead of only picking among finished samples, prune and branch trajectories part-way, where the
x0 look-ahead already tells good layouts from bad ones, and spend the rest of the compute refining the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ttscale.errors import TTScaleError
from ttscale.generator import require_steps
from ttscale.search import Cost, Round, Search, SearchResult, StrategyParams
from ttscale.seeds import gaussian


class Params(StrategyParams):
    strategy: Literal["search-over-paths"] = "search-over-paths"
    n: int = Field(8, ge=1, description="starting noises")
    branch_at: tuple[int, ...] | None = Field(
        None, description="grid points to branch at, increasing; unset: three in the first two thirds"
    )
    width: int = Field(4, ge=1, description="children per kept trajectory")
    keep: int = Field(2, ge=1, description="trajectories kept at each branch step")
    eta: float = Field(1.0, ge=0.0, le=1.0, description="share of fresh noise in a branch step (0: no fresh noise)")

    n_field: ClassVar[str | None] = "n"

    @field_validator("branch_at")
    @classmethod
    def _increasing(cls, stages: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if stages is not None and (list(stages) != sorted(set(stages)) or any(b < 0 for b in stages)):
            raise ValueError(f"branch_at must be increasing steps from 0, got {list(stages)}")
        return stages


def search_over_paths(search: Search, params: Params = Params()) -> SearchResult:
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
    steps = gen.schedule().steps
    stages = _branch_steps(steps) if params.branch_at is None else params.branch_at
    if stages and stages[-1] > steps - 2:
        raise TTScaleError(f"branch_at must be increasing steps in 0..{steps - 2}, got {list(stages)}")
    plan = _Plan(search, steps, gen.nfe_per_call)
    count = plan.completable(params.n, 0, stages[0] if stages else None) if search.meter.affords() else 0
    if count == 0:
        return SearchResult([])
    t = search.trajectories([search.seed(j) for j in range(count)])
    drawn = 0  # index into the "branch" seed stream
    records: list[Round] = []
    for k, b in enumerate(stages):
        t = t.advance(b)
        nxt = stages[k + 1] if k + 1 < len(stages) else None
        children = plan.completable(min(params.keep, len(t)) * params.width, b + 1, nxt, looked_at=len(t))
        if not search.meter.affords():  # out of time: finish as cheaply as the budget allows
            children = 0 if plan.completable(len(t), b, None) == len(t) else min(children, 1)
        if children == 0:
            break
        x0 = t.lookahead()
        ranking = search.score(t.decode(x0))[0]
        parents = sorted(range(len(t)), key=lambda j: (-float(ranking[j]), j))[: min(params.keep, children)]
        kids = _children(parents, children)
        seeds = [search.seed(drawn + m, "branch") for m in range(children)]
        drawn += children
        noise = gaussian(seeds, tuple(t.x.shape[1:])).to(t.x.device)
        extra = {"kept": len(parents), "children": children}
        records.append(search.record(len(records), len(t), float(ranking.max()), step=b, **extra))
        t = t.take(kids, ops=[["branch", b, s] for s in seeds]).step(x0[kids], eta=params.eta, noise=noise)
    return search.finish(t.advance(steps), records)


@dataclass
class _Plan:
    """What the budget pays for: trajectories held at a grid point must always be completable."""

    search: Search
    steps: int
    per_call: int

    def completable(self, n: int, grid: int, nxt: int | None, looked_at: int = 0) -> int:
        """The most trajectories (up to n) at `grid` that can still be finished outright, or scored at the next
        branch step `nxt` with only the best finished, after a look-ahead at `looked_at` of them now.

        A time limit stops the branching but never the finishing, so completion is judged without it.
        """
        nfe, calls = looked_at * self.per_call, looked_at

        def finish(m: int) -> Cost:
            return {"nfe": nfe + m * (self.steps - grid) * self.per_call, "verifier_calls": calls + m}

        def look_then_finish_one(m: int, nxt: int) -> Cost:
            rest = m * (nxt + 1 - grid) + self.steps - nxt - 1
            return {"nfe": nfe + rest * self.per_call, "verifier_calls": calls + m + 1}

        most = self.search.most(n, finish, timed=False)
        if nxt is None:
            return most
        return max(most, self.search.most(n, lambda m: look_then_finish_one(m, nxt), timed=False))


def _children(parents: list[int], children: int) -> list[int]:
    """Each child's parent: the children spread over the parents as evenly as possible, the best first."""
    share, extra = divmod(children, len(parents))
    return [p for r, p in enumerate(parents) for _ in range(share + (r < extra))]


def _branch_steps(steps: int) -> tuple[int, ...]:
    """Three evenly spaced steps in the first two thirds of the schedule (fewer on short schedules)."""
    top = min(2 * steps // 3, steps - 2)
    if top < 1:
        return (0,) if steps >= 2 else ()
    return tuple(sorted({max(1, top * k // 3) for k in (1, 2, 3)}))
