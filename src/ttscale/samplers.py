"""Samplers: small pure functions over a `denoise(x, i) -> x0_hat` and a `Schedule`.

One update covers both families: with x_t = alpha * x0 + sigma * eps, the deterministic step
x' = alpha' * x0 + sigma' * eps_hat is DDIM for epsilon models and exactly Euler for rectified
flow (alpha = 1 - t, sigma = t). With `eta > 0` part of eps_hat is replaced by fresh noise of the
same variance, which keeps the marginals (DDIM's eta family) and gives particle methods a
stochastic sampler for flow models, whose ODE would keep resampled copies identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ttscale.generator import Schedule, StepGenerator

Denoise = Callable[[torch.Tensor, int], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]  # (step, x after the step, x0_hat)


def eps_from_x0(x: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (x - alpha * x0) / sigma


def step(
    x: torch.Tensor,
    x0: torch.Tensor,
    schedule: Schedule,
    i: int,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Move x from grid point i to i + 1 given the model's x0 estimate."""
    a, s = schedule.alpha[i], schedule.sigma[i]
    a2, s2 = schedule.alpha[i + 1], schedule.sigma[i + 1]
    eps = eps_from_x0(x, x0, a, s)
    if eta == 0.0 or s2 == 0:
        return a2 * x0 + s2 * eps
    if noise is None:
        raise ValueError("a stochastic step (eta > 0) needs its noise passed in, for reproducibility")
    ratio = (a * s2 / (a2 * s)).clamp(max=1.0)
    fresh = eta * s2 * torch.sqrt(1 - ratio**2)
    return a2 * x0 + torch.sqrt(s2**2 - fresh**2) * eps + fresh * noise


def sample(
    denoise: Denoise,
    x: torch.Tensor,
    schedule: Schedule,
    start: int = 0,
    stop: int | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Deterministic sampling from grid point `start` to `stop` (default: the end): Euler / DDIM."""
    stop = schedule.steps if stop is None else stop
    for i in range(start, stop):
        x0 = denoise(x, i)
        x = step(x, x0, schedule, i)
        if callback is not None:
            callback(i, x, x0)
    return x


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
        x = sample(lambda x, i: gen.denoise(x, i, cond), gen.noise(seeds[start : start + batch_size]), gen.schedule())
        out.append(gen.decode(x))
    return torch.cat(out)
