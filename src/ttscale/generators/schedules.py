"""A diffusers scheduler's own timestep grid as a ttscale Schedule, so ttscale.samplers can drive the model.

The grid (and the timesteps the model is conditioned on) come from the pipeline's scheduler, set up as
its pipeline sets it up; only the update rule is ours: Euler for flow matching and DDIM for VP models,
which is the same update as diffusers' FlowMatchEulerDiscreteScheduler, DDIMScheduler (eta 0) and
EulerDiscreteScheduler (Euler in sigma/alpha coordinates is DDIM). Multistep solvers (DPM-Solver, UniPC,
PNDM) keep their grid but are replaced by that first-order update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from ttscale.errors import TTScaleError
from ttscale.generator import Schedule


@dataclass(frozen=True)
class DiffusersGrid:
    """`schedule` for the sampler, `timesteps[i]` as the model sees them (the scheduler's own values and dtype),
    and `noise_scale`: what turns a standard gaussian into the sampler's first x, as the pipeline scales it
    (its scheduler's init_noise_sigma, then scale_model_input), so x is always the denoiser's actual input."""

    schedule: Schedule
    timesteps: torch.Tensor
    noise_scale: float
    prediction: str  # "flow", "epsilon", "v_prediction" or "sample"


def _set(scheduler: Any, steps: int, kwargs: dict[str, Any]) -> None:
    """`scheduler.set_timesteps` called the way the pipelines' `retrieve_timesteps` calls it."""
    kwargs = dict(kwargs)
    sigmas = kwargs.pop("sigmas", None)
    if sigmas is not None:
        scheduler.set_timesteps(sigmas=sigmas, device="cpu", **kwargs)
    else:
        scheduler.set_timesteps(steps, device="cpu", **kwargs)


def _decreasing(ts: torch.Tensor, steps: int) -> bool:
    return len(ts) == steps and bool((ts[:-1] > ts[1:]).all())


def diffusers_grid(scheduler: Any, steps: int, flow: bool, **timestep_kwargs: Any) -> DiffusersGrid:
    """The grid of `steps` steps of this scheduler (a private copy is set up; the pipeline's is left alone)."""
    sched = copy.deepcopy(scheduler)
    _set(sched, steps, timestep_kwargs)
    ts = sched.timesteps
    if flow:
        sigmas = sched.sigmas.double().cpu()
        if not _decreasing(ts, steps) or len(sigmas) != steps + 1:
            raise TTScaleError(
                f"{type(scheduler).__name__} gave {len(ts)} timesteps for {steps} steps; "
                "use a flow scheduler with one model call per step (FlowMatchEulerDiscreteScheduler, DPMSolverMultistepScheduler)"
            )
        sigma = torch.cat([sigmas[:-1], torch.zeros(1, dtype=torch.float64)])  # the last grid point is clean
        schedule = Schedule(
            t=torch.cat([ts.double().cpu(), torch.zeros(1, dtype=torch.float64)]).float(),
            alpha=(1 - sigma).float(),
            sigma=sigma.float(),
        )
        return DiffusersGrid(schedule, ts, float(getattr(sched, "init_noise_sigma", 1.0)), "flow")
    if not _decreasing(ts, steps):
        # PNDM (repeats a timestep) and second-order solvers (two calls per step): DDIM on the same config
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(scheduler.config)
        _set(sched, steps, timestep_kwargs)
        ts = sched.timesteps
    k_sigmas = getattr(sched, "sigmas", None)
    if k_sigmas is not None and len(k_sigmas) == steps + 1:
        # Karras-style sigma = sqrt((1 - abar) / abar): x / alpha = x0 + sigma * eps
        s = torch.cat([k_sigmas[:-1].double().cpu(), torch.zeros(1, dtype=torch.float64)])
        alpha = 1 / torch.sqrt(1 + s**2)
        sigma = s * alpha
    else:
        abar = sched.alphas_cumprod.double()[ts.long().cpu()]
        alpha = torch.cat([abar.sqrt(), torch.ones(1, dtype=torch.float64)])
        sigma = torch.cat([(1 - abar).sqrt(), torch.zeros(1, dtype=torch.float64)])
    scale = float(sched.init_noise_sigma) * float(sched.scale_model_input(torch.ones(()), ts[0]))
    schedule = Schedule(
        t=torch.cat([ts.double().cpu(), torch.zeros(1, dtype=torch.float64)]).float(),
        alpha=alpha.float(),
        sigma=sigma.float(),
    )
    prediction = str(scheduler.config.get("prediction_type", "epsilon"))
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise TTScaleError(f"{type(scheduler).__name__}: prediction_type {prediction!r} is not supported")
    return DiffusersGrid(schedule, ts, scale, prediction)
