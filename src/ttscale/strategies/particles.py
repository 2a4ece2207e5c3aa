"""Particle filtering / Feynman-Kac steering (Singhal et al. 2025, "A general framework for inference-time
scaling and steering of diffusion models"): a population of particles is denoised together and, every few
steps, reweighted by a potential of the verifier's reward on their x0 look-ahead and resampled, so compute
flows to the trajectories that look promising early.
"""

from __future__ import annotations

from typing import Any

import torch

from ttscale.errors import TTScaleError
from ttscale.generator import StepGenerator, require_steps
from ttscale.samplers import step
from ttscale.search import Search, SearchResult
from ttscale.seeds import gaussian

POTENTIALS = ("max", "sum", "diff")


def systematic_resample(weights: torch.Tensor, u: float) -> torch.Tensor:
    """Parent indices for len(weights) offspring from normalised weights and one uniform u in [0, 1).

    Offspring k takes the parent whose cumulative-weight interval holds (u + k) / N, so parent j gets
    floor(N * w_j) or ceil(N * w_j) copies: the lowest-variance of the standard resampling schemes.
    """
    n = len(weights)
    cumulative = torch.cumsum(weights.double(), 0)
    positions = (u + torch.arange(n, dtype=torch.float64)) / n
    return torch.searchsorted(cumulative, positions, right=True).clamp(max=n - 1)


def particle_filter(
    search: Search,
    *,
    particles: int = 8,
    resample_every: int = 2,
    ess_threshold: float = 0.5,
    temperature: float = 10.0,
    potential: str = "max",
    eta: float = 1.0,
) -> SearchResult:
    """FK steering with adaptive systematic resampling on the x0 look-ahead reward.

    Particles move with the stochastic sampler (`eta` > 0): the flow model's ODE is deterministic, so copies
    made by resampling would otherwise stay identical to the end. Those steps are first order even where the
    schedule's solver is multistep (DPM-Solver++(2M)), which extrapolates x0 along one ODE path that fresh
    noise leaves at every step; with `eta` 0 the particles take the solver's own steps, their histories
    resampled with them. A consistency sampler (SANA-Sprint) re-noises at every step whatever `eta`, with
    the particle's step noise below. Look-ahead rewards r are taken at grid points resample_every,
    2 * resample_every, ... (never at the last step); each multiplies the particle's weight by the
    potential G = exp(temperature * s), with s per `potential`:
      "max":  the highest reward along the particle's lineage so far (FK steering's default),
      "sum":  the sum of the rewards along its lineage,
      "diff": r minus the lineage's previous reward (0 before the first); the product telescopes to
              exp(temperature * latest reward).
    Weights accumulate between resamplings; when the effective sample size 1 / sum(w^2) falls below
    `ess_threshold * particles` the population is resampled systematically and the weights reset.
    The finished particles are scored and returned; the runner keeps the best.

    Re-creating a candidate (P = number of candidates): its initial noise is `seed`; its `path` lists
    ["resample", step, parent] for each resampling, `parent` being the slot its lineage held before that
    resampling (so the slot before the first one is the root, and after the last one its own index). At
    step i the particle in slot q takes the noise `gaussian([search.seed(i * P + q, "sde")], shape)`,
    drawn after that step's resampling.
    """
    gen = require_steps(search.generator, "particle-filter")
    if potential not in POTENTIALS:
        raise TTScaleError(f"unknown potential {potential!r}; choose one of {', '.join(POTENTIALS)}")
    if particles < 1 or resample_every < 1:
        raise TTScaleError("particle-filter needs particles >= 1 and resample_every >= 1")
    sched = gen.schedule()
    steps, per_call = sched.steps, gen.nfe_per_call
    checks = list(range(resample_every, steps - 1, resample_every))

    def cost(p: int) -> dict[str, int]:
        looks = len(checks) if p > 1 else 0  # a lone particle has nothing to be compared with
        return {"nfe": p * steps * per_call, "verifier_calls": p * (looks + 1)}

    count = next((p for p in range(particles, 0, -1) if search.meter.affords(**cost(p))), 0)
    if count == 0:
        return SearchResult([])

    seeds = [search.seed(k) for k in range(count)]
    cond = gen.encode(search.prompt)
    x = gen.noise(seeds)
    roots = list(range(count))
    paths: list[list[list[Any]]] = [[] for _ in range(count)]
    log_w = torch.zeros(count, dtype=torch.float64)
    lineage = torch.full((count,), -torch.inf if potential == "max" else 0.0, dtype=torch.float64)
    rounds: list[dict[str, Any]] = []
    prev_x0: torch.Tensor | None = None
    for i in range(steps):
        x0 = _denoise(gen, x, i, cond, search.batch_size)
        if count > 1 and i in checks:
            reward = search.score(gen.decode(x0))[0].double()
            if potential == "max":
                lineage = torch.maximum(lineage, reward)
                log_g = lineage
            elif potential == "sum":
                lineage = lineage + reward
                log_g = lineage
            else:
                log_g, lineage = reward - lineage, reward
            log_w = log_w + temperature * log_g
            w = torch.softmax(log_w, 0)
            ess = float(1.0 / (w**2).sum())
            resampled = ess < ess_threshold * count
            if resampled:
                rng = torch.Generator().manual_seed(search.seed(i, "resample"))
                u = float(torch.rand((), dtype=torch.float64, generator=rng))
                parents = systematic_resample(w, u)
                index = parents.to(x.device)
                x, x0, lineage = x[index], x0[index], lineage[parents]
                prev_x0 = None if prev_x0 is None else prev_x0[index]
                roots = [roots[j] for j in parents.tolist()]
                paths = [[*paths[j], ["resample", i, j]] for j in parents.tolist()]
                log_w = torch.zeros(count, dtype=torch.float64)
            rounds.append(
                {
                    "round": len(rounds),
                    "step": i,
                    "pool": count,
                    "ess": ess,
                    "resampled": resampled,
                    "best": float(reward.max()),
                    "nfe": search.meter.spent.nfe,
                    "verifier_calls": search.meter.spent.verifier_calls,
                }
            )
        noise = gaussian([search.seed(i * count + q, "sde") for q in range(count)], tuple(x.shape[1:]))
        x = step(x, x0, sched, i, eta=eta, noise=noise.to(x.device), prev_x0=prev_x0)
        prev_x0 = x0 if eta == 0.0 else None

    return search.finish(gen, x, [seeds[roots[q]] for q in range(count)], paths[:count], rounds, steps * per_call)


def _denoise(gen: StepGenerator, x: torch.Tensor, i: int, cond: Any, batch_size: int) -> torch.Tensor:
    return torch.cat([gen.denoise(x[s : s + batch_size], i, cond) for s in range(0, len(x), batch_size)])
