"""A diffusers scheduler's own timestep grid as a ttscale Schedule, so ttscale.samplers can drive the model.

The grid (and the timesteps the model is conditioned on) come from the pipeline's scheduler, set up as
its pipeline sets it up; the update rule is ttscale.samplers', picked to be the scheduler's own:

- Euler for flow matching and DDIM for VP models, the same update as diffusers'
  FlowMatchEulerDiscreteScheduler, DDIMScheduler (eta 0) and EulerDiscreteScheduler (Euler in
  sigma/alpha coordinates is DDIM);
- DPM-Solver++(2M) for DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" and solver_order 2,
  its defaults and what SANA and PixArt ship: on flow sigmas (use_flow_sigmas, flow_shift) and VP sigmas
  (Karras-style ones included) alike, first order on the first step and on the last one (to sigma 0, as
  diffusers' final_sigmas_type "zero" does). Exact for solver_type "midpoint" (the default); "heun" and
  solver_order 3 get 2M too, the closest update ttscale has;
- the consistency step ("consistency") for SCMScheduler (SANA-Sprint): TrigFlow x_t = cos(t) x0 + sin(t) z,
  z ~ N(0, sigma_data^2), in the pipeline's latents, which are sigma_data times the latents its VAE decodes.
  Divided by sigma_data (x = the pipeline's latents_model_input) that is the VP grid alpha = cos t,
  sigma = sin t over the decodable latents with standard noise, so x0 needs no rescaling and a seed's
  gaussian is the first x as it is. Each step predicts x0 and draws x at the next grid point with fresh
  noise from the seed's stream, as SCMScheduler.step does from the pipeline's per-sample generators.

Every other multistep solver (DPM-Solver's noise-prediction and SDE variants, UniPC, PNDM) keeps its grid
but is replaced by the first-order update, and every grid ends clean (sigma 0): a scheduler that stops at
sigma_min (final_sigmas_type "sigma_min", PNDM without set_alpha_to_one) decodes a slightly different
image in ttscale. PNDM's PLMS also spends one more model call than it has steps (its first step is a
two-evaluation one), which ttscale's one-call-per-step interface has no place for.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any, Literal

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
    prediction: str  # "flow", "epsilon", "v_prediction" (TrigFlow's velocity too) or "sample"


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


def _consistency_grid(scheduler: Any, steps: int, timestep_kwargs: dict[str, Any]) -> DiffusersGrid:
    """SCMScheduler's grid (see the module docstring): its own timesteps, alpha = cos t, sigma = sin t.

    The model is conditioned on t itself (the family turns it into sCM's timestep), computed in float32 as
    the scheduler computes it; the last grid point, t = 0, is clean, as SCMScheduler's last step lands on x0.
    """
    if scheduler.config.get("prediction_type", "trigflow") != "trigflow":
        raise TTScaleError(f"SCMScheduler: prediction_type {scheduler.config.prediction_type!r} is not supported")
    sched = copy.deepcopy(scheduler)
    _set(sched, steps, timestep_kwargs)
    ts = sched.timesteps.float().cpu()
    if len(ts) != steps + 1 or float(ts[-1]) != 0.0 or not bool((ts[:-1] > ts[1:]).all()):
        raise TTScaleError(
            f"SCMScheduler gave timesteps {ts.tolist()} for {steps} steps; expected a decreasing grid to 0"
        )
    schedule = Schedule(t=ts, alpha=torch.cos(ts), sigma=torch.sin(ts), solver="consistency")
    return DiffusersGrid(schedule, ts[:-1], 1.0, "v_prediction")


def _solver(scheduler: Any) -> Literal["euler", "dpmpp-2m"]:
    """The scheduler's own update where ttscale.samplers has it (see the module docstring), else "euler"."""
    from diffusers import DPMSolverMultistepScheduler

    config = scheduler.config
    if (
        isinstance(scheduler, DPMSolverMultistepScheduler)
        and config.get("algorithm_type") == "dpmsolver++"
        and config.get("solver_order", 2) >= 2
    ):
        return "dpmpp-2m"
    return "euler"


def _exact(scheduler: Any, solver: str) -> bool:
    """Whether ttscale's update is the scheduler's own, so full sampling reproduces `pipe(...)`."""
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler

    config = scheduler.config
    if solver == "dpmpp-2m":
        return config.get("solver_order", 2) == 2 and config.get("solver_type", "midpoint") == "midpoint"
    if isinstance(scheduler, DDIMScheduler):
        return True
    return isinstance(scheduler, EulerDiscreteScheduler | FlowMatchEulerDiscreteScheduler) and not config.get(
        "stochastic_sampling", False
    )


def diffusers_grid(scheduler: Any, steps: int, flow: bool, **timestep_kwargs: Any) -> DiffusersGrid:
    """The grid of `steps` steps of this scheduler (a private copy is set up; the pipeline's is left alone).

    Warns when ttscale's update only approximates the scheduler's, since users compare against `pipe(...)`.
    """
    from diffusers import SCMScheduler

    if isinstance(scheduler, SCMScheduler):
        return _consistency_grid(scheduler, steps, timestep_kwargs)
    solver = _solver(scheduler)
    if not _exact(scheduler, solver):
        name = type(scheduler).__name__
        warnings.warn(
            f"{name} has no exact counterpart in ttscale.samplers: its grid is sampled with the "
            f"{'DPM-Solver++(2M)' if solver == 'dpmpp-2m' else 'first-order DDIM/Euler'} update, so images differ "
            "slightly from pipe(...) with the same seed. For identical images set e.g. "
            "pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config) (or Euler / DPMSolverMultistep).",
            stacklevel=2,
        )
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
            solver=solver,
        )
        return DiffusersGrid(schedule, ts, float(getattr(sched, "init_noise_sigma", 1.0)), "flow")
    if not _decreasing(ts, steps):
        # PNDM (repeats a timestep) and second-order solvers (two calls per step): DDIM on the same config
        from diffusers import DDIMScheduler

        solver = "euler"
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
        solver=solver,
    )
    prediction = str(scheduler.config.get("prediction_type", "epsilon"))
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise TTScaleError(f"{type(scheduler).__name__}: prediction_type {prediction!r} is not supported")
    return DiffusersGrid(schedule, ts, scale, prediction)
