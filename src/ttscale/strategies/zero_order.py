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
from typing import Any

import torch

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.generator import require_steps
from ttscale.samplers import sample, seed_noise
from ttscale.search import Search, SearchResult
from ttscale.seeds import gaussian


def zero_order(search: Search, *, rounds: int = 8, neighbours: int = 4, similarity: float = 0.95) -> SearchResult:
    """Up to `rounds` rounds of `neighbours` perturbations of the best noise so far, fully sampled and scored."""
    if neighbours < 1 or not 0.0 <= similarity <= 1.0:
        raise TTScaleError(
            f"zero-order: need neighbours >= 1 and 0 <= similarity <= 1 (got {neighbours}, {similarity})"
        )
    gen = require_steps(search.generator, "zero-order")
    cond = gen.encode(search.prompt)
    sched = gen.schedule()
    nfe_each = sched.steps * gen.nfe_per_call
    seed = search.seed(0)
    centre_noise = gen.noise([seed])
    centre_path: list[list[Any]] = []
    spread = math.sqrt(1.0 - similarity**2)
    perturbed = 0  # index into the "perturb" seed stream
    candidates: list[Candidate] = []
    records: list[dict[str, Any]] = []
    best = float("-inf")
    for r in range(rounds):
        # this round's initial noises and the path that re-creates each from `seed`
        want = neighbours + (1 if r == 0 else 0)
        n = search.affordable(want, nfe_each)
        if n == 0:
            break
        noises: list[torch.Tensor] = [centre_noise] if r == 0 else []
        paths: list[list[list[Any]]] = [[]] if r == 0 else []
        for _ in range(n - len(noises)):
            pseed = search.seed(perturbed, stream="perturb")
            perturbed += 1
            fresh = gaussian([pseed], tuple(centre_noise.shape[1:])).to(centre_noise.device)
            noises.append(similarity * centre_noise + spread * fresh)
            paths.append([*centre_path, ["perturb", r, pseed, similarity]])
        pool: list[Candidate] = []
        for start in range(0, n, search.batch_size):
            count = search.affordable(min(search.batch_size, n - start), nfe_each)
            if count == 0:
                break
            x = torch.cat(noises[start : start + count])
            x = sample(lambda x, i: gen.denoise(x, i, cond), x, sched, noise=seed_noise([seed] * count, x))
            pool += search.scored(gen.decode(x), [seed] * count, nfe_each, r, paths[start : start + count])
        if not pool:
            break
        candidates += pool
        if r == 0:
            best = pool[0].score  # the starting centre, which its neighbours must beat
        top = max(range(len(pool)), key=lambda j: pool[j].score)
        improved = pool[top].score > best
        if improved:
            best = pool[top].score
            centre_noise, centre_path = noises[top], paths[top]
        records.append(
            {
                "round": r,
                "pool": len(pool),
                "best_of_round": pool[top].score,
                "best": best,
                "outcome": "improved" if improved else "no improvement",
                "centre": centre_path,
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )
        if len(pool) < want:
            break
    return SearchResult(candidates, records)
