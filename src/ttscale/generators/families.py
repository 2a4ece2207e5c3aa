"""What differs between diffusers pipeline families: prompt encoding, the denoiser call, latent layout, decoding.

Each class mirrors its pipeline's own `__call__` (diffusers 0.42) line for line where it matters: the
same `encode_prompt` arguments, timestep format, CFG batch order ([negative, positive]), latent packing
and VAE scaling. So the step-level adapter computes what the pipeline computes, and only the sampler
loop (ttscale.samplers instead of `scheduler.step`) is ours.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ttscale.errors import TTScaleError


@dataclass
class Cond:
    """One prompt's encoding with batch size 1: denoiser inputs per CFG branch, and inputs shared by both.

    `negative` is None when the pipeline runs without CFG (guidance <= 1, or FLUX's distilled guidance).
    """

    positive: dict[str, torch.Tensor]
    negative: dict[str, torch.Tensor] | None
    shared: dict[str, Any] = field(default_factory=dict)


def call_default(pipe: Any, name: str) -> Any:
    """The default of one of the pipeline's `__call__` arguments, so encoding matches a plain `pipe(prompt)`."""
    return inspect.signature(type(pipe).__call__).parameters[name].default


class Family:
    """The base: a pipeline whose denoiser is `pipe.transformer` and whose latents need no packing."""

    pipelines: ClassVar[tuple[str, ...]]  # diffusers class names this family mirrors
    flow: ClassVar[bool]  # True: rectified-flow velocity; False: VP epsilon / v (the scheduler's prediction_type)
    learned_sigma: ClassVar[bool] = False  # the denoiser also outputs a variance to drop (PixArt, SANA)
    # extra `pipe(...)` arguments that make `__call__` run exactly what the step-level path runs
    call_kwargs: ClassVar[dict[str, Any]] = {}
    # the sampler re-noises at every step (a consistency model), drawing from the per-sample generators; so
    # `pipe(...)` gets the seeds as `generator=` (which draws the initial noise too) rather than `latents=`
    step_noise: ClassVar[bool] = False

    def __init__(self, pipe: Any):
        self.pipe = pipe

    @property
    def denoiser(self) -> Any:
        return self.pipe.transformer

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device

    @property
    def latent_dtype(self) -> torch.dtype:
        """The dtype the pipeline keeps its latents in, for `latents=` passed to `__call__`."""
        return self.denoiser.dtype

    def uses_cfg(self, guidance: float) -> bool:
        return guidance > 1.0

    def default_size(self) -> tuple[int, int]:
        size = getattr(self.pipe, "default_sample_size", None) or self.denoiser.config.sample_size
        side = int(size) * int(self.pipe.vae_scale_factor)
        return side, side

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The shape one candidate's standard gaussian is drawn in (before any packing)."""
        f = int(self.pipe.vae_scale_factor)
        return (int(self.denoiser.config.in_channels), height // f, width // f)

    def pack(self, z: torch.Tensor) -> torch.Tensor:
        """Drawn gaussians (B, *latent_shape) to the pipeline's latent layout."""
        return z

    def timestep_kwargs(self, steps: int, height: int, width: int) -> dict[str, Any]:
        """What the pipeline passes to `scheduler.set_timesteps` besides the step count (custom sigmas, mu)."""
        return {}

    def call_kwargs_for(self, steps: int) -> dict[str, Any]:
        """`call_kwargs` and what `__call__` needs besides for this step count."""
        return dict(self.call_kwargs)

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        """The raw denoiser output for a batch (both CFG branches stacked when CFG is on)."""
        raise NotImplementedError

    def decode_latents(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Latents to the VAE's output in [-1, 1] (before the pipeline's postprocess)."""
        vae = self.pipe.vae
        return vae.decode(x.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]


def _masked(embeds: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"encoder_hidden_states": embeds, "encoder_attention_mask": mask}


class Sana(Family):
    """SANA / SANA-1.5 (SanaPipeline): Gemma-2 text encoder, linear DiT, DC-AE; flow matching."""

    pipelines = ("SanaPipeline",)
    flow = True
    learned_sigma = True
    call_kwargs: ClassVar[dict[str, Any]] = {"use_resolution_binning": False, "clean_caption": False}

    @property
    def latent_dtype(self) -> torch.dtype:
        return torch.float32  # SanaPipeline keeps latents in float32 whatever the model dtype

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, pm, ne, nm = p.encode_prompt(
            prompt,
            cfg,
            negative_prompt=call_default(p, "negative_prompt"),
            num_images_per_prompt=1,
            device=self.device,
            clean_caption=False,
            max_sequence_length=call_default(p, "max_sequence_length"),
            complex_human_instruction=call_default(p, "complex_human_instruction"),
        )
        return Cond(_masked(pe, pm), _masked(ne, nm) if cfg else None)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        tr = self.denoiser
        return tr(
            x.to(tr.dtype),
            encoder_hidden_states=inputs["encoder_hidden_states"].to(tr.dtype),
            encoder_attention_mask=inputs["encoder_attention_mask"],
            timestep=t.expand(x.shape[0]) * tr.config.get("timestep_scale", 1.0),
            return_dict=False,
        )[0]


class SanaSprint(Sana):
    """SANA-Sprint (SanaSprintPipeline): SANA distilled into a few-step consistency model (sCM, TrigFlow).

    The guidance scale is embedded (no CFG branches: one NFE per call), and the transformer is wrapped as
    the pipeline wraps it: input scaled by sqrt(c^2 + (1 - c)^2), c = sin t / (cos t + sin t), output turned
    into the TrigFlow velocity. `forward` returns that velocity in units of x = latents / sigma_data (the
    pipeline's own latents_model_input), where it is v-prediction on the grid alpha = cos t, sigma = sin t
    (see `ttscale.generators.schedules`), and the sampler is SCMScheduler's re-noising consistency step.
    """

    pipelines = ("SanaSprintPipeline",)
    flow = False
    learned_sigma = False
    step_noise = True

    def uses_cfg(self, guidance: float) -> bool:
        return False

    def grid_kwargs(self, steps: int) -> dict[str, Any]:
        """`__call__`'s grid arguments, which it hands to `SCMScheduler.set_timesteps`; their defaults, except
        that the intermediate timestep applies to 2 steps only (the scheduler refuses it for any other count)."""
        p = self.pipe
        intermediate = call_default(p, "intermediate_timesteps") if steps == 2 else None
        return {"max_timesteps": call_default(p, "max_timesteps"), "intermediate_timesteps": intermediate}

    def timestep_kwargs(self, steps: int, height: int, width: int) -> dict[str, Any]:
        return self.grid_kwargs(steps)

    def call_kwargs_for(self, steps: int) -> dict[str, Any]:
        return super().call_kwargs_for(steps) | self.grid_kwargs(steps)

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, pm = p.encode_prompt(
            prompt,
            num_images_per_prompt=1,
            device=self.device,
            clean_caption=False,
            max_sequence_length=call_default(p, "max_sequence_length"),
            complex_human_instruction=call_default(p, "complex_human_instruction"),
        )
        return Cond(_masked(pe, pm), None)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        tr = self.denoiser
        n, embeds = x.shape[0], inputs["encoder_hidden_states"]
        g = torch.full([1], guidance, device=x.device, dtype=torch.float32).expand(n).to(embeds.dtype)
        timestep = t.expand(n)
        c = torch.sin(timestep) / (torch.cos(timestep) + torch.sin(timestep))
        c4 = c.view(-1, 1, 1, 1)
        scaled = x * torch.sqrt(c4**2 + (1 - c4) ** 2)
        out = tr(
            scaled.to(tr.dtype),
            encoder_hidden_states=embeds.to(tr.dtype),
            encoder_attention_mask=inputs["encoder_attention_mask"],
            guidance=g * tr.config.guidance_embeds_scale,
            timestep=c,
            return_dict=False,
        )[0]
        return ((1 - 2 * c4) * scaled + (1 - 2 * c4 + 2 * c4**2) * out) / torch.sqrt(c4**2 + (1 - c4) ** 2)


class Flux(Family):
    """FLUX.1 dev and schnell (FluxPipeline): CLIP-L pooled + T5 tokens, packed 2x2 latents, flow matching.

    FLUX-dev embeds the guidance scale (guidance-distilled), so there are no CFG branches: one NFE per call.
    """

    pipelines = ("FluxPipeline",)
    flow = True

    def uses_cfg(self, guidance: float) -> bool:
        return False

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        f = 2 * int(self.pipe.vae_scale_factor)
        return (int(self.denoiser.config.in_channels) // 4, 2 * (height // f), 2 * (width // f))

    def pack(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        return self.pipe._pack_latents(z, b, c, h, w)

    def timestep_kwargs(self, steps: int, height: int, width: int) -> dict[str, Any]:
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        cfg = self.pipe.scheduler.config
        _, h, w = self.latent_shape(height, width)
        mu = calculate_shift(
            (h // 2) * (w // 2),
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        sigmas = None if cfg.get("use_flow_sigmas") else np.linspace(1.0, 1 / steps, steps)
        return {"sigmas": sigmas, "mu": mu}

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, pooled, text_ids = p.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=call_default(p, "max_sequence_length"),
        )
        _, h, w = self.latent_shape(height, width)
        image_ids = p._prepare_latent_image_ids(1, h // 2, w // 2, self.device, pe.dtype)
        return Cond(
            {"encoder_hidden_states": pe, "pooled_projections": pooled},
            None,
            {"txt_ids": text_ids, "img_ids": image_ids},
        )

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        tr = self.denoiser
        dtype = inputs["encoder_hidden_states"].dtype  # FluxPipeline's latents and timesteps use the prompt's dtype
        b = x.shape[0]
        g = None
        if tr.config.guidance_embeds:
            g = torch.full([1], guidance, device=x.device, dtype=torch.float32).expand(b)
        return tr(
            hidden_states=x.to(dtype),
            timestep=t.expand(b).to(dtype) / 1000,
            guidance=g,
            pooled_projections=inputs["pooled_projections"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            txt_ids=shared["txt_ids"],
            img_ids=shared["img_ids"],
            return_dict=False,
        )[0]

    def decode_latents(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        z = self.pipe._unpack_latents(x, height, width, self.pipe.vae_scale_factor)
        z = z / vae.config.scaling_factor + vae.config.shift_factor
        return vae.decode(z.to(vae.dtype), return_dict=False)[0]


class SD3(Family):
    """Stable Diffusion 3 / 3.5 (StableDiffusion3Pipeline): two CLIPs + T5, MMDiT; flow matching with CFG."""

    pipelines = ("StableDiffusion3Pipeline",)
    flow = True

    def timestep_kwargs(self, steps: int, height: int, width: int) -> dict[str, Any]:
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        cfg = self.pipe.scheduler.config
        if not cfg.get("use_dynamic_shifting", None):
            return {}
        _, h, w = self.latent_shape(height, width)
        patch = int(self.denoiser.config.patch_size)
        mu = calculate_shift(
            (h // patch) * (w // patch),
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.16),
        )
        return {"mu": mu}

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, ne, pp, npp = p.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=cfg,
            max_sequence_length=call_default(p, "max_sequence_length"),
        )
        pos = {"encoder_hidden_states": pe, "pooled_projections": pp}
        return Cond(pos, {"encoder_hidden_states": ne, "pooled_projections": npp} if cfg else None)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        tr = self.denoiser
        return tr(
            hidden_states=x.to(inputs["encoder_hidden_states"].dtype),
            timestep=t.expand(x.shape[0]),
            encoder_hidden_states=inputs["encoder_hidden_states"],
            pooled_projections=inputs["pooled_projections"],
            return_dict=False,
        )[0]

    def decode_latents(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        z = x / vae.config.scaling_factor + vae.config.shift_factor
        return vae.decode(z.to(vae.dtype), return_dict=False)[0]


class SD(Family):
    """Stable Diffusion 1.x / 2.x (StableDiffusionPipeline): CLIP text encoder, U-Net; epsilon or v prediction."""

    pipelines = ("StableDiffusionPipeline",)
    flow = False

    @property
    def denoiser(self) -> Any:
        return self.pipe.unet

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        pe, ne = self.pipe.encode_prompt(prompt, self.device, 1, cfg, None)
        return Cond({"encoder_hidden_states": pe}, {"encoder_hidden_states": ne} if cfg else None)

    def timestep_cond(self, n: int, guidance: float, device: torch.device) -> torch.Tensor | None:
        """The guidance embedding of guidance-distilled U-Nets (LCM-style `time_cond_proj_dim`), as the pipeline builds it."""
        dim = self.denoiser.config.time_cond_proj_dim
        if dim is None:
            return None
        w = torch.tensor(guidance - 1).repeat(n)
        return self.pipe.get_guidance_scale_embedding(w, embedding_dim=dim).to(device=device, dtype=self.latent_dtype)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        unet = self.denoiser
        return unet(
            x.to(unet.dtype),
            t,
            encoder_hidden_states=inputs["encoder_hidden_states"],
            timestep_cond=self.timestep_cond(x.shape[0], guidance, x.device),
            added_cond_kwargs=self.added_cond(inputs),
            return_dict=False,
        )[0]

    def added_cond(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        return None


class SDXL(SD):
    """Stable Diffusion XL (StableDiffusionXLPipeline): two CLIPs, U-Net with size/crop micro-conditioning."""

    pipelines = ("StableDiffusionXLPipeline",)

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, ne, pp, npp = p.encode_prompt(
            prompt=prompt, prompt_2=None, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=cfg
        )
        proj = int(pp.shape[-1]) if p.text_encoder_2 is None else p.text_encoder_2.config.projection_dim
        time_ids = p._get_add_time_ids(
            (height, width), (0, 0), (height, width), dtype=pe.dtype, text_encoder_projection_dim=proj
        ).to(self.device)
        pos = {"encoder_hidden_states": pe, "text_embeds": pp, "time_ids": time_ids}
        return Cond(pos, {"encoder_hidden_states": ne, "text_embeds": npp, "time_ids": time_ids} if cfg else None)

    def added_cond(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        return {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}

    def decode_latents(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        upcast = vae.dtype == torch.float16 and vae.config.force_upcast  # SDXL's VAE overflows in fp16
        if upcast:
            vae.to(dtype=torch.float32)
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, len(mean), 1, 1)
            mean_t = torch.tensor(mean).view(shape).to(x.device, x.dtype)
            std_t = torch.tensor(std).view(shape).to(x.device, x.dtype)
            z = x * std_t / vae.config.scaling_factor + mean_t
        else:
            z = x / vae.config.scaling_factor
        try:
            return vae.decode(z.to(vae.dtype), return_dict=False)[0]
        finally:
            if upcast:
                vae.to(dtype=torch.float16)


class PixArt(Family):
    """PixArt-α and PixArt-Σ: T5 text encoder, DiT with learned variance; epsilon prediction."""

    pipelines = ("PixArtAlphaPipeline", "PixArtSigmaPipeline")
    flow = False
    learned_sigma = True
    call_kwargs: ClassVar[dict[str, Any]] = {"use_resolution_binning": False, "clean_caption": False}

    def encode(self, prompt: str, cfg: bool, height: int, width: int) -> Cond:
        p = self.pipe
        pe, pm, ne, nm = p.encode_prompt(
            prompt,
            cfg,
            negative_prompt=call_default(p, "negative_prompt"),
            num_images_per_prompt=1,
            device=self.device,
            clean_caption=False,
            max_sequence_length=call_default(p, "max_sequence_length"),
        )
        extra: dict[str, torch.Tensor] = {}
        if type(p).__name__ == "PixArtAlphaPipeline" and self.denoiser.config.sample_size == 128:
            # PixArt-α 1024px conditions on resolution and aspect ratio
            extra = {
                "resolution": torch.tensor([[height, width]]).to(dtype=pe.dtype, device=self.device),
                "aspect_ratio": torch.tensor([[float(height / width)]]).to(dtype=pe.dtype, device=self.device),
            }
        return Cond(_masked(pe, pm) | extra, _masked(ne, nm) | extra if cfg else None)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, inputs: dict[str, torch.Tensor], shared: dict[str, Any], guidance: float
    ) -> torch.Tensor:
        tr = self.denoiser
        return tr(
            x.to(tr.dtype),
            encoder_hidden_states=inputs["encoder_hidden_states"],
            encoder_attention_mask=inputs["encoder_attention_mask"],
            timestep=t.reshape(1).expand(x.shape[0]),
            added_cond_kwargs={"resolution": inputs.get("resolution"), "aspect_ratio": inputs.get("aspect_ratio")},
            return_dict=False,
        )[0]


FAMILIES: tuple[type[Family], ...] = (Sana, SanaSprint, Flux, SD3, SDXL, SD, PixArt)


def family_for(pipe: Any) -> type[Family] | None:
    """The family that mirrors this pipeline's class, or None (then only the black-box path applies)."""
    cls = type(pipe).__name__
    return next((f for f in FAMILIES if cls in f.pipelines), None)


def require_family(pipe: Any) -> Family:
    family = family_for(pipe)
    if family is None:
        names = ", ".join(n for f in FAMILIES for n in f.pipelines)
        raise TTScaleError(
            f"{type(pipe).__name__} has no step-level adapter (supported: {names}); "
            "use it black-box (add ?black_box=1 to the generator name) with best-of-n, random-search, rounds or adaptive"
        )
    return family(pipe)
