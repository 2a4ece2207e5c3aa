"""Particle filtering / Feynman-Kac steering (Singhal et al. 2025, "A general framework for inference-time
scaling and steering of diffusion models"): a population of particles is denoised together and, every few
steps, reweighted by a potential of the verifier's reward on their x0 look-ahead and resampled, so compute
flows to the trajectories that look promising early.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from ttscale.generator import require_steps
from ttscale.search import Cost, Round, Search, SearchResult, StrategyParams
from ttscale.seeds import gaussian


class Params(StrategyParams):
    strategy: Literal["particle-filter"] = "particle-filter"
    particles: int = Field(8, ge=1, description="trajectories denoised together (fewer where the budget ends)")
    resample_every: int = Field(2, ge=1, description="steps between look-ahead rewards")
    ess_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="resample when ESS falls below this share of particles"
    )
    temperature: float = Field(10.0, ge=0.0, description="potential G = exp(temperature * s)")
    potential: Literal["max", "sum", "diff"] = Field(
        "max", description="s: the lineage's max, sum or latest change of reward"
    )
    eta: float = Field(1.0, ge=0.0, le=1.0, description="share of fresh noise per step (0: the solver's own steps)")

    n_field: ClassVar[str | None] = "particles"


def systematic_resample(weights: torch.Tensor, u: float) -> torch.Tensor:
    """Parent indices for len(weights) offspring from normalised weights and one uniform u in [0, 1).

    Offspring k takes the parent whose cumulative-weight interval holds (u + k) / N, so parent j gets
    floor(N * w_j) or ceil(N * w_j) copies: the lowest-variance of the standard resampling schemes.
    """
    n = len(weights)
    cumulative = torch.cumsum(weights.double(), 0)
    positions = (u + torch.arange(n, dtype=torch.float64)) / n
    return torch.searchsorted(cumulative, positions, right=True).clamp(max=n - 1)


def particle_filter(search: Search, params: Params = Params()) -> SearchResult:
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
    steps = gen.schedule().steps
    checks = list(range(params.resample_every, steps - 1, params.resample_every))
    count = search.most(params.particles, lambda p: _cost(p, steps * gen.nfe_per_call, len(checks)))
    if count == 0:
        return SearchResult([])
    t = search.trajectories([search.seed(k) for k in range(count)])
    log_w = torch.zeros(count, dtype=torch.float64)
    lineage = torch.full((count,), -torch.inf if params.potential == "max" else 0.0, dtype=torch.float64)
    records: list[Round] = []
    for i in range(steps):
        x0 = t.lookahead()
        if count > 1 and i in checks:
            reward = search.score(t.decode(x0))[0].double()
            log_g, lineage = _potential(params.potential, lineage, reward)
            log_w = log_w + params.temperature * log_g
            w = torch.softmax(log_w, 0)
            ess = float(1.0 / (w**2).sum())
            resampled = ess < params.ess_threshold * count
            if resampled:
                rng = torch.Generator().manual_seed(search.seed(i, "resample"))
                parents = systematic_resample(w, float(torch.rand((), dtype=torch.float64, generator=rng)))
                t = t.take(parents.tolist(), ops=[["resample", i, j] for j in parents.tolist()])
                x0, lineage = x0[parents.to(x0.device)], lineage[parents]
                log_w = torch.zeros(count, dtype=torch.float64)
            records.append(
                search.record(len(records), count, float(reward.max()), step=i, ess=ess, resampled=resampled)
            )
        noise = gaussian([search.seed(i * count + q, "sde") for q in range(count)], tuple(t.x.shape[1:]))
        t = t.step(x0, eta=params.eta, noise=noise.to(t.x.device))
    return search.finish(t, records)


def _cost(particles: int, nfe_each: int, looks: int) -> Cost:
    """A run of this many particles: every step of each, and its look-aheads (a lone particle has none)."""
    return {"nfe": particles * nfe_each, "verifier_calls": particles * ((looks if particles > 1 else 0) + 1)}


def _potential(kind: str, lineage: torch.Tensor, reward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log G of this look-ahead, the lineages' statistic carried on) for the potentials of the docstring."""
    if kind == "max":
        lineage = torch.maximum(lineage, reward)
        return lineage, lineage
    if kind == "sum":
        lineage = lineage + reward
        return lineage, lineage
    return reward - lineage, reward
