"""Zero-order search (Ma et al. 2025, "Inference-time scaling for diffusion models beyond scaling
denoising steps"; also tt-scale-flux): hill-climb in noise space. Each round samples neighbours of the
best initial noise so far and moves there only if one scores higher, so compute goes to refining a
good noise instead of drawing unrelated ones.

A neighbour is similarity * centre + sqrt(1 - similarity**2) * fresh gaussian: unit variance, cosine
similarity ~ `similarity` to the centre. Round 0 samples the centre (noise index 0) with its neighbours.
A consistency sampler's step noise (SANA-Sprint) stays the centre seed's: only the initial noise is searched.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field

from ttscale.candidate import Candidate
from ttscale.generator import require_steps
from ttscale.search import Round, Search, SearchResult, StrategyParams
from ttscale.seeds import gaussian
from ttscale.trajectories import TrajectoryPath


class Params(StrategyParams):
    strategy: Literal["zero-order"] = "zero-order"
    rounds: int = Field(8, ge=1, description="rounds of neighbours (fewer where the budget ends)")
    neighbours: int = Field(4, ge=1, description="perturbations of the best noise so far, per round")
    similarity: float = Field(0.95, ge=0.0, le=1.0, description="cosine similarity of a neighbour to its centre")

    n_instead: ClassVar[str] = "set params.neighbours (noises per round) and params.rounds"


def zero_order(search: Search, params: Params = Params()) -> SearchResult:
    """Up to `rounds` rounds of `neighbours` perturbations of the best noise so far, fully sampled and scored."""
    gen = require_steps(search.generator, "zero-order")
    seed = search.seed(0)
    centre = gen.noise([seed])
    centre_path: TrajectoryPath = []
    nfe_each = gen.schedule().steps * gen.nfe_per_call
    spread = math.sqrt(1.0 - params.similarity**2)
    perturbed = 0  # index into the "perturb" seed stream
    candidates: list[Candidate] = []
    records: list[Round] = []
    best = float("-inf")
    for r in range(params.rounds):
        # this round's initial noises and the path that re-creates each from `seed`
        want = params.neighbours + (1 if r == 0 else 0)
        n = search.most(want, lambda m: search.sample_cost(m, nfe_each))
        if n == 0:
            break
        noises: list[torch.Tensor] = [centre] if r == 0 else []
        paths: list[TrajectoryPath] = [[]] if r == 0 else []
        for _ in range(n - len(noises)):
            pseed = search.seed(perturbed, stream="perturb")
            perturbed += 1
            fresh = gaussian([pseed], tuple(centre.shape[1:])).to(centre.device)
            noises.append(params.similarity * centre + spread * fresh)
            paths.append([*centre_path, ["perturb", r, pseed, params.similarity]])
        pool = search.complete(search.trajectories([seed] * n, torch.cat(noises), paths), r)
        if not pool:
            break
        candidates += pool
        if r == 0:
            best = pool[0].score  # the starting centre, which its neighbours must beat
        top = max(range(len(pool)), key=lambda j: pool[j].score)
        improved = pool[top].score > best
        if improved:
            best = pool[top].score
            centre, centre_path = noises[top], paths[top]
        outcome = "improved" if improved else "no improvement"
        records.append(
            search.record(r, len(pool), best, best_of_round=pool[top].score, outcome=outcome, centre=centre_path)
        )
        if len(pool) < want:
            break
    return SearchResult(candidates, records)
