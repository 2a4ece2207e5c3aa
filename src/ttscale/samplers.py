"""Samplers: small pure functions over a `denoise(x, i) -> x0_hat` and a `Schedule`.

One update covers both families: with x_t = alpha * x0 + sigma * eps, the deterministic step
x' = alpha' * x0 + sigma' * eps_hat is DDIM for epsilon models and exactly Euler for rectified
flow (alpha = 1 - t, sigma = t). With `eta > 0` part of eps_hat is replaced by fresh noise of the
same variance, which keeps the marginals (DDIM's eta family) and gives particle methods a
stochastic sampler for flow models, whose ODE would keep resampled copies identical.

A schedule whose `solver` is "dpmpp-2m" takes DPM-Solver++(2M) steps instead (Lu et al. 2022, as
k-diffusion's `sample_dpmpp_2m` and diffusers' DPMSolverMultistepScheduler): the same update with the x0
estimate extrapolated through the previous grid point's, so a deterministic step needs that previous
estimate (`prev_x0`) and `advance` carries it from step to step.

A "consistency" schedule (a consistency model's multistep sampler, as SANA-Sprint's SCMScheduler) takes
x' = alpha' * x0 + sigma' * noise instead: the estimate re-noised with entirely fresh noise, none of x's own
noise kept. So even a plain run takes noise at every step; `seed_noise` draws it from each candidate's seed
stream, which keeps a candidate re-creatable from its seed and reproduces diffusers' per-sample generators.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ttscale.generator import Schedule, StepGenerator
from ttscale.seeds import SeedStreams

Denoise = Callable[[torch.Tensor, int], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]  # (step, x after the step, x0_hat)
Noise = Callable[[int], torch.Tensor]  # step i -> the fresh noise a "consistency" step i takes


def seed_noise(seeds: Sequence[int], like: torch.Tensor) -> Noise:
    """The per-step noise of the candidates with these seeds (in order), in x's layout and on its device.

    Step i takes draw i + 1 of each seed's stream, draw 0 being its initial noise: what diffusers' pipelines
    draw from `generator=[torch.Generator().manual_seed(s) for s in seeds]` (randn_tensor draws per sample,
    the initial latents first, then one tensor per scheduler step). Drawn when asked, so schedules that take
    no step noise draw none.
    """
    streams = SeedStreams(list(seeds), tuple(like.shape[1:]))
    return lambda i: streams.draw(i + 1).to(like.device)


def step_noise(noise: Noise | None, schedule: Schedule, i: int) -> torch.Tensor | None:
    """Step i's fresh noise where the schedule's solver re-noises on every step ("consistency"), else None."""
    return noise(i) if noise is not None and schedule.solver == "consistency" else None


def eps_from_x0(x: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (x - alpha * x0) / sigma


def dpmpp_2m_x0(x0: torch.Tensor, prev_x0: torch.Tensor, schedule: Schedule, i: int) -> torch.Tensor:
    """DPM-Solver++(2M)'s x0 estimate for the step from grid point i to i + 1 (0 < i, sigma[i + 1] > 0).

    In log-SNR time lambda = log(alpha / sigma) the data-prediction ODE's exact solution is the first-order
    update with x0 integrated over the step; 2M takes x0 at the step's midpoint, extrapolated linearly
    through the estimates at i - 1 and i: x0 + (h / (2 h_prev)) (x0 - prev_x0). This is k-diffusion's
    `denoised_d` and diffusers' "midpoint" solver_type, so `step` with it reproduces both.
    """
    lam = torch.log(schedule.alpha.double()) - torch.log(schedule.sigma.double())
    half_ratio = float((lam[i + 1] - lam[i]) / (2 * (lam[i] - lam[i - 1])))
    return x0 + half_ratio * (x0 - prev_x0)


def step(
    x: torch.Tensor,
    x0: torch.Tensor,
    schedule: Schedule,
    i: int,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    prev_x0: torch.Tensor | None = None,
) -> torch.Tensor:
    """Move x from grid point i to i + 1 given the model's x0 estimate.

    `prev_x0` is the estimate at grid point i - 1 of the same deterministic trajectory; with it a
    "dpmpp-2m" schedule takes a second-order step. Without it the step is first order, as DPM-Solver's first
    step is, and so is the last step (to sigma = 0, an infinite log-SNR step the extrapolation cannot span;
    diffusers' lower_order_final). A stochastic step (eta > 0) is always first order: the fresh noise moves x
    off the ODE path that 2M integrates. So pass None as `prev_x0` right after a stochastic step (a branch
    or a particle move re-noises x, and the old estimate belongs to the path it left), and index it like x
    when trajectories are copied or reordered (resampling, pruning).

    A "consistency" schedule's step always re-noises, whatever `eta`: x' = alpha' x0 + sigma' noise, so
    `noise` is required except onto the clean last grid point, and `prev_x0` plays no part.
    """
    a, s = schedule.alpha[i], schedule.sigma[i]
    a2, s2 = schedule.alpha[i + 1], schedule.sigma[i + 1]
    if schedule.solver == "consistency":
        if s2 == 0:
            return a2 * x0
        if noise is None:
            raise ValueError("a consistency step re-noises x0: pass its fresh noise in (samplers.seed_noise)")
        return a2 * x0 + s2 * noise
    if prev_x0 is not None and schedule.solver == "dpmpp-2m" and eta == 0.0 and s2 > 0:
        x0 = dpmpp_2m_x0(x0, prev_x0, schedule, i)
    eps = eps_from_x0(x, x0, a, s)
    if eta == 0.0 or s2 == 0:
        return a2 * x0 + s2 * eps
    if noise is None:
        raise ValueError("a stochastic step (eta > 0) needs its noise passed in, for reproducibility")
    ratio = (a * s2 / (a2 * s)).clamp(max=1.0)
    fresh = eta * s2 * torch.sqrt(1 - ratio**2)
    return a2 * x0 + torch.sqrt(s2**2 - fresh**2) * eps + fresh * noise


def advance(
    denoise: Denoise,
    x: torch.Tensor,
    schedule: Schedule,
    start: int,
    stop: int,
    prev_x0: torch.Tensor | None = None,
    callback: Callback | None = None,
    noise: Noise | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sampling with the schedule's own solver from grid point `start` to `stop`, continuing a trajectory.

    Returns x at `stop` and the last x0 estimate (at stop - 1; `prev_x0` itself when no step is taken), so
    a strategy that stops part-way (to score a look-ahead, prune or branch) can go on with the multistep
    solver exactly where a plain run would be, instead of restarting it at first order. `noise` gives a
    "consistency" schedule its step noise (usually `seed_noise` of x's seeds); other solvers never ask for it.
    """
    for i in range(start, stop):
        x0 = denoise(x, i)
        x = step(x, x0, schedule, i, noise=step_noise(noise, schedule, i), prev_x0=prev_x0)
        prev_x0 = x0
        if callback is not None:
            callback(i, x, x0)
    return x, prev_x0


def sample(
    denoise: Denoise,
    x: torch.Tensor,
    schedule: Schedule,
    start: int = 0,
    stop: int | None = None,
    callback: Callback | None = None,
    noise: Noise | None = None,
) -> torch.Tensor:
    """Sampling from grid point `start` to `stop` (default: the end) with the schedule's solver.

    A multistep solver starts at first order at `start`, as at the beginning of a trajectory; `advance`
    continues one from its previous estimate instead. `noise` is a "consistency" schedule's step noise.
    """
    stop = schedule.steps if stop is None else stop
    return advance(denoise, x, schedule, start, stop, callback=callback, noise=noise)[0]


def flow_schedule(steps: int, shift: float = 1.0) -> Schedule:
    """Rectified-flow grid t = 1 .. 0 (optionally time-shifted as SD3 / SANA do)."""
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    t = shift * t / (1 + (shift - 1) * t)
    return Schedule(t=t.float(), alpha=(1 - t).float(), sigma=t.float())


def ddpm_schedule(alphas_cumprod: torch.Tensor, steps: int) -> Schedule:
    """DDIM grid over a DDPM model's cumulative alphas (evenly spaced timesteps, 'leading' as diffusers)."""
    n = len(alphas_cumprod)
    ts = torch.arange(0, steps) * (n // steps)
    ts = ts.flip(0)
    ac = alphas_cumprod.double()[ts]
    alpha = torch.cat([ac.sqrt(), torch.ones(1, dtype=torch.float64)])
    sigma = torch.cat([(1 - ac).sqrt(), torch.zeros(1, dtype=torch.float64)])
    return Schedule(
        t=torch.cat([ts, torch.zeros(1, dtype=torch.long)]).float(), alpha=alpha.float(), sigma=sigma.float()
    )


def sample_images(gen: StepGenerator, prompt: str, seeds: Sequence[int], batch_size: int) -> torch.Tensor:
    """A step-level generator's black-box `sample`: encode once, then sample and decode the seeds in batches."""
    cond = gen.encode(prompt)
    out = []
    for start in range(0, len(seeds), batch_size):
        batch = seeds[start : start + batch_size]
        x = gen.noise(batch)
        x = sample(lambda x, i: gen.denoise(x, i, cond), x, gen.schedule(), noise=seed_noise(batch, x))
        out.append(gen.decode(x))
    return torch.cat(out)
