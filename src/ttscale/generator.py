"""Generators: the step-level interface strategies search through, and the black-box one.

Step level (k-diffusion style): `encode` once per prompt, `noise(seeds)` per candidate,
`denoise(x_t, i, cond) -> x0_hat` with CFG inside, `decode(x0) -> images`, and the model's own
`schedule`. Images are float tensors (B, 3, H, W) in [0, 1] everywhere in ttscale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch

from ttscale.budget import Meter, cost
from ttscale.errors import TTScaleError


@dataclass(frozen=True)
class Schedule:
    """The sampling grid: x_t = alpha[i] * x0 + sigma[i] * noise at step i; the last entry is clean.

    `t[i]` is the value the model is conditioned on at step i (flow time in [0, 1], or a DDPM timestep).
    Flow matching has alpha = 1 - t, sigma = t; epsilon models the cumulative-alpha square roots.
    `solver` is the update `ttscale.samplers` moves x with: "euler" (Euler / DDIM, first order, from the
    current x0 estimate alone) or "dpmpp-2m" (DPM-Solver++(2M), which also uses the previous grid point's
    estimate) or "consistency" (a consistency model's multistep sampler, as SANA-Sprint's SCMScheduler: x at
    the next grid point is the x0 estimate re-noised with entirely fresh noise, so every step takes noise).
    It belongs to the grid because a model's sampler is chosen with its grid (diffusers ships both in one
    scheduler config), and every strategy stepping through the schedule must use the same one for a seed to
    mean the same image on every path.
    """

    t: torch.Tensor
    alpha: torch.Tensor
    sigma: torch.Tensor
    solver: Literal["euler", "dpmpp-2m", "consistency"] = "euler"

    @property
    def steps(self) -> int:
        return len(self.t) - 1


@runtime_checkable
class Generator(Protocol):
    """Black-box: images from (prompt, seeds). Enough for strategies that only draw and rank."""

    name: str

    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor: ...

    def nfe_per_sample(self) -> int: ...


@runtime_checkable
class StepGenerator(Generator, Protocol):
    """Step access for strategies that act inside the denoising path."""

    nfe_per_call: int  # denoiser evaluations per sample per `denoise` call (2 with CFG)
    flops_per_nfe: float

    def encode(self, prompt: str) -> Any: ...

    def noise(self, seeds: Sequence[int]) -> torch.Tensor: ...

    def schedule(self) -> Schedule: ...

    def denoise(self, x: torch.Tensor, step: int, cond: Any) -> torch.Tensor: ...

    def decode(self, x0: torch.Tensor) -> torch.Tensor: ...


def require_steps(generator: Generator, strategy: str) -> StepGenerator:
    """The generator as a StepGenerator, or a clear error naming the strategies that work black-box."""
    if not isinstance(generator, StepGenerator):
        raise TTScaleError(
            f"strategy {strategy!r} needs step access (encode/noise/denoise/decode), but {generator.name!r} is "
            "black-box; use best-of-n, random-search, rounds or adaptive with it"
        )
    return generator


class MeteredGenerator:
    """Charges a Meter for every sampling call, so no strategy can under-report.

    Use `metered(generator, meter)`: it returns a `MeteredStepGenerator` for step-level generators, so the
    wrapper exposes step access exactly when the wrapped model has it (Protocol checks look at the class).
    """

    def __init__(self, inner: Generator, meter: Meter):
        self.inner, self.meter = inner, meter
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    # A black-box model is charged the NFEs it states per image, which it may not really spend: an estimate.
    sample_nfe_counted: ClassVar[bool] = False

    def _charge(self, nfe: int, estimated: bool = False) -> None:
        flops_per_nfe = float(getattr(self.inner, "flops_per_nfe", math.nan))  # a black box's are unknown
        self.meter.charge(nfe=nfe, generator_flops=cost(flops_per_nfe, nfe), nfe_estimated=estimated)

    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        self._charge(len(seeds) * self.inner.nfe_per_sample(), estimated=not self.sample_nfe_counted)
        return self.inner.sample(prompt, seeds)

    def nfe_per_sample(self) -> int:
        return self.inner.nfe_per_sample()


class MeteredStepGenerator(MeteredGenerator):
    """A metered step-level generator: every `denoise` call is charged (CFG branches included)."""

    inner: StepGenerator
    sample_nfe_counted = True  # its own `sample` runs its schedule: steps x nfe_per_call, exactly

    def __init__(self, inner: StepGenerator, meter: Meter):
        super().__init__(inner, meter)
        self.nfe_per_call, self.flops_per_nfe = inner.nfe_per_call, inner.flops_per_nfe

    def encode(self, prompt: str) -> Any:
        return self.inner.encode(prompt)

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        return self.inner.noise(seeds)

    def schedule(self) -> Schedule:
        return self.inner.schedule()

    def denoise(self, x: torch.Tensor, step: int, cond: Any) -> torch.Tensor:
        self._charge(x.shape[0] * self.nfe_per_call)
        return self.inner.denoise(x, step, cond)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return self.inner.decode(x0)


def metered(generator: Generator, meter: Meter) -> MeteredGenerator:
    """Wrap a generator so that everything it computes is charged to `meter`."""
    if isinstance(generator, StepGenerator):
        return MeteredStepGenerator(generator, meter)
    return MeteredGenerator(generator, meter)


class CallableGenerator:
    """Wraps any `fn(prompt, seeds) -> images` as a black-box Generator (an API, a closed pipeline)."""

    def __init__(
        self, fn: Callable[[str, Sequence[int]], torch.Tensor], name: str = "callable", nfe_per_sample: int = 1
    ):
        self.fn, self.name, self._nfe = fn, name, nfe_per_sample

    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        return self.fn(prompt, seeds)

    def nfe_per_sample(self) -> int:
        return self._nfe
