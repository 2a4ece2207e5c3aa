"""diffusers pipelines as ttscale generators: step-level (`DiffusersGenerator`) and black-box (`DiffusersBlackBox`).

Both draw a candidate's initial noise the same way: `ttscale.seeds.gaussian` in the pipeline's latent
shape, then the pipeline's own packing and scaling. So a seed means the same image on either path,
and the step-level path reproduces `pipe(prompt, latents=...)` (tests/test_diffusers.py checks it per
family); search changes only which noise is used. A consistency model (SANA-Sprint) also draws fresh noise
at every step, from each seed's stream after its initial noise (`ttscale.samplers.seed_noise`): what
`pipe(prompt, generator=[torch.Generator().manual_seed(s) for s in seeds])` draws, which the black-box path
passes it instead of `latents=`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ttscale.budget import count_flops
from ttscale.errors import TTScaleError
from ttscale.generator import Schedule
from ttscale.generators.families import Cond, Family, call_default, family_for, require_family
from ttscale.generators.schedules import diffusers_grid
from ttscale.samplers import sample_images
from ttscale.seeds import gaussian


def _size(family: Family, height: int | None, width: int | None) -> tuple[int, int]:
    default_h, default_w = family.default_size()
    h, w = height or default_h, width or default_w
    if min(family.latent_shape(h, w)[1:]) < 1:
        raise TTScaleError(f"resolution {h}x{w} is too small for {type(family.pipe).__name__}")
    return h, w


class DiffusersGenerator:
    """A supported diffusers pipeline through the step-level interface (encode / noise / denoise / decode).

    x lives in the denoiser's input space: the pipeline's latents after its scheduler's input scaling
    (so x_t = alpha x0 + sigma eps holds for VP models too; SANA-Sprint's latents / sigma_data), kept in
    float32 whatever the model dtype.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        name: str | None = None,
        steps: int = 20,
        guidance: float | None = None,
        height: int | None = None,
        width: int | None = None,
        batch_size: int = 8,
    ):
        self.pipe = pipe
        self.family = require_family(pipe)
        self.name = name or type(pipe).__name__
        self.steps, self.batch_size = steps, batch_size
        self.guidance = float(call_default(pipe, "guidance_scale") if guidance is None else guidance)
        self.height, self.width = _size(self.family, height, width)
        self.cfg = self.family.uses_cfg(self.guidance)
        self.nfe_per_call = 2 if self.cfg else 1
        self.device = self.family.device
        grid = diffusers_grid(
            pipe.scheduler,
            steps,
            self.family.flow,
            **self.family.timestep_kwargs(steps, self.height, self.width),
        )
        self._schedule, self._prediction, self._noise_scale = grid.schedule, grid.prediction, grid.noise_scale
        self._timesteps = grid.timesteps.to(self.device)
        self._cond: tuple[str, Cond] | None = None
        self.flops_per_nfe = self._measure_flops()

    @torch.no_grad()
    def _measure_flops(self) -> float:
        """FLOPs of one denoiser evaluation of one sample (one CFG branch), counted on a real forward."""
        cond = self.family.encode("", False, self.height, self.width)
        x = self.noise([0])
        return count_flops(
            lambda: self.family.forward(x, self._timesteps[0], cond.positive, cond.shared, self.guidance)
        )

    def encode(self, prompt: str) -> Cond:
        """The pipeline's own prompt encoding, once per prompt (the last prompt's is cached for its batches)."""
        if self._cond is None or self._cond[0] != prompt:
            with torch.no_grad():
                self._cond = (prompt, self.family.encode(prompt, self.cfg, self.height, self.width))
        return self._cond[1]

    def gaussians(self, seeds: Sequence[int]) -> torch.Tensor:
        """Each seed's standard gaussian in the pipeline's latent layout: what `pipe(latents=...)` takes."""
        return self.family.pack(gaussian(list(seeds), self.family.latent_shape(self.height, self.width)))

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        return (self.gaussians(seeds) * self._noise_scale).to(self.device)

    def schedule(self) -> Schedule:
        return self._schedule

    def _inputs(self, cond: Cond, b: int) -> dict[str, torch.Tensor]:
        """Per-branch inputs expanded over b candidates, [negative, positive] as the pipelines stack them."""
        out = {}
        for key, pos in cond.positive.items():
            pos_b = pos.expand(b, *pos.shape[1:])
            if cond.negative is None:
                out[key] = pos_b
            else:
                neg = cond.negative[key]
                out[key] = torch.cat([neg.expand(b, *neg.shape[1:]), pos_b])
        return out

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, step: int, cond: Cond) -> torch.Tensor:
        b = x.shape[0]
        inputs = self._inputs(cond, b)
        model_in = torch.cat([x, x]) if self.cfg else x
        out = self.family.forward(model_in, self._timesteps[step], inputs, cond.shared, self.guidance).float()
        if self.cfg:
            uncond, text = out.chunk(2)
            out = uncond + self.guidance * (text - uncond)
        if self.family.learned_sigma and out.shape[1] == 2 * x.shape[1]:
            out = out.chunk(2, dim=1)[0]
        alpha, sigma = float(self._schedule.alpha[step]), float(self._schedule.sigma[step])
        if self._prediction == "flow":
            return x - sigma * out
        if self._prediction == "epsilon":
            return (x - sigma * out) / alpha
        if self._prediction == "v_prediction":
            return alpha * x - sigma * out
        return out

    @torch.no_grad()
    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Latents to images in [0, 1] through the pipeline's VAE (or DC-AE) and its own postprocess."""
        image = self.family.decode_latents(x0.to(self.family.latent_dtype), self.height, self.width)
        return self.pipe.image_processor.postprocess(image, output_type="pt").float()

    def nfe_per_sample(self) -> int:
        return self.steps * self.nfe_per_call

    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        return sample_images(self, prompt, seeds, self.batch_size)


class DiffusersBlackBox:
    """Any diffusers text-to-image pipeline through its own `__call__`: the black-box Generator.

    For a supported family the noise goes in as `latents=` (the same gaussians as the step-level path);
    for any other pipeline, and for a family that re-noises at every step (SANA-Sprint), as one CPU
    `torch.Generator` per seed, which draws the same numbers in float32 (and the same step noise after them).
    """

    def __init__(
        self,
        pipe: Any,
        *,
        name: str | None = None,
        steps: int = 20,
        guidance: float | None = None,
        height: int | None = None,
        width: int | None = None,
        batch_size: int = 8,
    ):
        self.pipe = pipe
        self.name = name or type(pipe).__name__
        self.steps, self.batch_size = steps, batch_size
        self.guidance = float(call_default(pipe, "guidance_scale") if guidance is None else guidance)
        family = family_for(pipe)
        self.family = family(pipe) if family is not None else None
        if self.family is not None:
            self.height, self.width = _size(self.family, height, width)
            self._cfg = self.family.uses_cfg(self.guidance)
        else:
            default = call_default(pipe, "height")
            self.height, self.width = height or default, width or call_default(pipe, "width")
            self._cfg = self.guidance > 1.0  # an estimate for the NFE count: most pipelines run CFG above 1
        pipe.set_progress_bar_config(disable=True)

    def nfe_per_sample(self) -> int:
        return self.steps * (2 if self._cfg else 1)

    @torch.no_grad()
    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        out = []
        for start in range(0, len(seeds), self.batch_size):
            batch = list(seeds[start : start + self.batch_size])
            kwargs: dict[str, Any] = {
                "prompt": prompt,
                "num_inference_steps": self.steps,
                "guidance_scale": self.guidance,
                "height": self.height,
                "width": self.width,
                "num_images_per_prompt": len(batch),
                "output_type": "pt",
            }
            f = self.family
            if f is not None:
                kwargs |= f.call_kwargs_for(self.steps)
            if f is not None and not f.step_noise:
                z = f.pack(gaussian(batch, f.latent_shape(self.height, self.width)))
                kwargs["latents"] = z.to(f.device, f.latent_dtype)
            else:
                kwargs["generator"] = [torch.Generator().manual_seed(s) for s in batch]
            out.append(self.pipe(**kwargs).images.float())
        return torch.cat(out)
