"""Real diffusers pipelines through ttscale, on tiny random-initialised pipelines of every supported family.

Each family's pipeline is built once per session from small configs (a tokenizer made on the spot, a
couple of layers everywhere), saved with `save_pretrained` and loaded back through `load_generator`,
fully offline. Per family: the step-level path reproduces the pipeline's own `__call__` for the same
seeds, and best-of-n and zero-order search run end to end into the usual output folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.budget import Budget, Meter
from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.folder import read_jsonl
from ttscale.generator import StepGenerator
from ttscale.generators.diffusers_generator import DiffusersBlackBox, DiffusersGenerator
from ttscale.generators.schedules import diffusers_grid
from ttscale.images import load_image, to_uint8
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.registry import load_generator
from ttscale.runner import run
from ttscale.samplers import advance, sample
from ttscale.search import Search, StrategyParams
from ttscale.seeds import gaussian
from ttscale.strategies import particles, paths, pruning
from ttscale.strategies.best_of_n import Params as BestOfNParams
from ttscale.strategies.best_of_n import best_of_n
from ttscale.strategies.particles import particle_filter
from ttscale.strategies.paths import search_over_paths
from ttscale.strategies.pruning import early_pruning

os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: the loader never downloads (local_files_only) anyway

SIZE = 32  # pixels; every tiny VAE downsamples by 2, so latents are 16x16
STEPS = 3
PROMPTS = prompt_suite("test")[:1]
WORDS = sorted({w for p in prompt_suite("test") for w in p["prompt"].lower().split()})


def _tokenizer(max_length: int) -> Any:
    """A word-level tokenizer over the lab prompts' words (others map to <unk>), made without any download."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "</s>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", model_max_length=max_length
    )


VOCAB = len(WORDS) + 3


def _clip(hidden: int = 32, projection: bool = False) -> Any:
    cfg = transformers.CLIPTextConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    return transformers.CLIPTextModelWithProjection(cfg) if projection else transformers.CLIPTextModel(cfg)


def _t5(d_model: int = 32) -> Any:
    cfg = transformers.T5Config(
        vocab_size=VOCAB,
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return transformers.T5EncoderModel(cfg)


def _vae(latent_channels: int = 4, **kwargs: Any) -> Any:
    return diffusers.AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=latent_channels,
        norm_num_groups=2,
        **kwargs,
    )


def _unet(**kwargs: Any) -> Any:
    return diffusers.UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=2,
        **kwargs,
    )


# The scheduler configs the released checkpoints ship (Sana_*_diffusers, PixArt-Sigma-XL-2-*-MS), less the
# keys that are DPMSolverMultistepScheduler's defaults anyway: DPM-Solver++(2M), midpoint, lower_order_final,
# final_sigmas_type "zero", linspace spacing.
SANA_SCHEDULER: dict[str, Any] = {
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
    "prediction_type": "flow_prediction",
}
PIXART_SCHEDULER: dict[str, Any] = {
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "prediction_type": "epsilon",
}


def _sana_transformer(**kwargs: Any) -> Any:
    return diffusers.SanaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=4,
        num_cross_attention_heads=2,
        cross_attention_head_dim=4,
        cross_attention_dim=8,
        caption_channels=8,
        sample_size=16,
        **kwargs,
    )


def _dc_ae() -> Any:
    return diffusers.AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        encoder_qkv_multiscales=((), (5,)),
        decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1),
        decoder_layers_per_block=(1, 1),
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )


def _gemma() -> Any:
    return transformers.Gemma2Model(
        transformers.Gemma2Config(
            vocab_size=VOCAB,
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=4,
            max_position_embeddings=1024,
        )
    )


def build_sana(**config: Any) -> Any:
    """SANA; with `qk_norm="rms_norm_across_heads"`, SANA-1.5 as its checkpoints ship it (same pipeline)."""
    transformer, vae, gemma = _sana_transformer(**config), _dc_ae(), _gemma()
    scheduler = diffusers.DPMSolverMultistepScheduler(**SANA_SCHEDULER)
    return diffusers.SanaPipeline(
        tokenizer=_tokenizer(512), text_encoder=gemma, vae=vae, transformer=transformer, scheduler=scheduler
    )


def build_sana_sprint() -> Any:
    """SANA-Sprint as its checkpoints ship it: guidance embedded, qk norm, the SCMScheduler's defaults."""
    transformer = _sana_transformer(guidance_embeds=True, qk_norm="rms_norm_across_heads")
    vae, gemma = _dc_ae(), _gemma()
    return diffusers.SanaSprintPipeline(
        tokenizer=_tokenizer(512),
        text_encoder=gemma,
        vae=vae,
        transformer=transformer,
        scheduler=diffusers.SCMScheduler(),
    )


def build_flux(guidance_embeds: bool = True) -> Any:
    transformer = diffusers.FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
        guidance_embeds=guidance_embeds,
    )
    vae = _vae(use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    if guidance_embeds:  # FLUX.1-dev: resolution-dependent shift
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
            shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
        )
    else:  # FLUX.1-schnell
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0)
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        text_encoder=_clip(),
        tokenizer=_tokenizer(77),
        text_encoder_2=_t5(),
        tokenizer_2=_tokenizer(512),
        transformer=transformer,
        vae=vae,
    )


def build_sd3() -> Any:
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=16,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,
        pooled_projection_dim=64,
        out_channels=4,
    )
    return diffusers.StableDiffusion3Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=_clip(projection=True),
        tokenizer=_tokenizer(77),
        text_encoder_2=_clip(projection=True),
        tokenizer_2=_tokenizer(77),
        text_encoder_3=_t5(64),
        tokenizer_3=_tokenizer(512),
        transformer=transformer,
        vae=_vae(use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035),
    )


def _ddpm_config() -> dict[str, Any]:
    return {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def build_sdxl() -> Any:
    unet = _unet(
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=8 * 6 + 32,
        cross_attention_dim=64,
    )
    return diffusers.StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_clip(),
        text_encoder_2=_clip(projection=True),
        tokenizer=_tokenizer(77),
        tokenizer_2=_tokenizer(77),
        unet=unet,
        # what SDXL ships: Euler over Karras-style sigmas, leading spacing
        scheduler=diffusers.EulerDiscreteScheduler(**_ddpm_config(), timestep_spacing="leading"),
        add_watermarker=False,
    )


def build_sd() -> Any:
    return diffusers.StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_clip(),
        tokenizer=_tokenizer(77),
        unet=_unet(cross_attention_dim=32),
        # what SD1.5 ships: PNDM (its grid repeats a timestep, so the adapter falls back to DDIM's)
        scheduler=diffusers.PNDMScheduler(**_ddpm_config(), skip_prk_steps=True, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_pixart() -> Any:
    transformer = diffusers.PixArtTransformer2DModel(
        sample_size=16,
        num_layers=1,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=2,
        caption_channels=32,
        in_channels=4,
        cross_attention_dim=16,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    )
    return diffusers.PixArtSigmaPipeline(
        tokenizer=_tokenizer(512),
        text_encoder=_t5(),
        vae=_vae(),
        transformer=transformer,
        scheduler=diffusers.DPMSolverMultistepScheduler(**PIXART_SCHEDULER),
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "sana": build_sana,
    "sana-1.5": lambda: build_sana(qk_norm="rms_norm_across_heads"),
    "sana-sprint": build_sana_sprint,
    "flux-dev": build_flux,
    "flux-schnell": lambda: build_flux(guidance_embeds=False),
    "sd3": build_sd3,
    "sdxl": build_sdxl,
    "sd15": build_sd,
    "pixart-sigma": build_pixart,
}

# The pipeline's own solver where the adapter's update is not the same: PNDM (SD1.5) keeps its grid in the
# adapter but not its PLMS update (DPM-Solver++(2M), SANA's and PixArt's, is the adapter's own). DDIM is set
# up as SD's own config has it (leading spacing) with a clean last step (set_alpha_to_one).
AGREEMENT_SCHEDULER: dict[str, Callable[[Any], Any]] = {
    "sd15": lambda config: diffusers.DDIMScheduler.from_config(
        config, set_alpha_to_one=True, clip_sample=False, timestep_spacing="leading"
    ),
}
GUIDANCE = 4.0
EMBEDDED_GUIDANCE = ("flux-dev", "flux-schnell", "sana-sprint")  # no CFG branch: one NFE per step


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The folder of a family's tiny pipeline, built and saved on first use, once per session."""
    built: dict[str, Path] = {}

    def folder(family: str) -> Path:
        if family not in built:
            torch.manual_seed(0)
            path = tmp_path_factory.mktemp(family)
            BUILDERS[family]().save_pretrained(path)
            built[family] = path
        return built[family]

    return folder


def _load(folder: Path, steps: int = STEPS, batch_size: int = 2, options: str = "resolution=32") -> Any:
    return load_generator(
        f"diffusers:{folder}?{options}", steps=steps, guidance=GUIDANCE, device="cpu", batch_size=batch_size
    )


@pytest.mark.parametrize("family", list(BUILDERS))
def test_step_level_sampling_reproduces_the_pipeline_call(family: str, tiny_pipeline: Callable[[str], Path]) -> None:
    gen = _load(tiny_pipeline(family))
    assert isinstance(gen, DiffusersGenerator) and isinstance(gen, StepGenerator)
    pipe = gen.pipe
    if family in AGREEMENT_SCHEDULER:
        pipe.scheduler = AGREEMENT_SCHEDULER[family](pipe.scheduler.config)
        gen = DiffusersGenerator(pipe, steps=STEPS, guidance=GUIDANCE, height=SIZE, width=SIZE, batch_size=2)
    black_box = DiffusersBlackBox(pipe, steps=STEPS, guidance=GUIDANCE, height=SIZE, width=SIZE, batch_size=2)
    seeds = [11, 12, 13]  # two batches: batching must not change a candidate
    ours, theirs = gen.sample(PROMPTS[0]["prompt"], seeds), black_box.sample(PROMPTS[0]["prompt"], seeds)
    assert ours.shape == theirs.shape == (3, 3, SIZE, SIZE)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0
    # fp32 on the CPU: equal up to rounding (our update recombines x0 and eps; diffusers steps x directly)
    assert float((ours - theirs).abs().max()) < 1e-4
    assert float((ours[0] - ours[1]).abs().max()) > 0.05  # seeds matter, so the agreement says something
    assert gen.nfe_per_sample() == black_box.nfe_per_sample() == STEPS * (1 if family in EMBEDDED_GUIDANCE else 2)
    assert gen.flops_per_nfe > 0


def _toy_output(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth stand-in for a denoiser's raw output that depends on x and the timestep, as a model's does."""
    return 0.7 * torch.sin(1.3 * x) + 0.2 * x * (float(t) / 1000) + 0.1


TOY_SCHEDULERS: dict[str, dict[str, Any]] = {
    "sana": SANA_SCHEDULER,
    "pixart": PIXART_SCHEDULER,
    "karras-v": {"use_karras_sigmas": True, "prediction_type": "v_prediction", **_ddpm_config()},
}


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 25), config=st.sampled_from(list(TOY_SCHEDULERS)), split=st.integers(0, 25))
def test_dpmpp_2m_matches_the_schedulers_own_steps(steps: int, config: str, split: int) -> None:
    """samplers' DPM-Solver++(2M) over diffusers_grid reproduces DPMSolverMultistepScheduler.step on a toy model,
    for step counts on both sides of diffusers' lower_order_final threshold (15), and stopping part-way with
    `advance` and going on from its last estimate changes nothing."""
    scheduler = diffusers.DPMSolverMultistepScheduler(**TOY_SCHEDULERS[config])
    grid = diffusers_grid(scheduler, steps, flow=config == "sana")
    sched = grid.schedule
    assert sched.solver == "dpmpp-2m"

    def denoise(x: torch.Tensor, i: int) -> torch.Tensor:
        out, alpha, sigma = _toy_output(x, grid.timesteps[i]), sched.alpha[i], sched.sigma[i]
        if grid.prediction == "flow":
            return x - sigma * out
        if grid.prediction == "epsilon":
            return (x - sigma * out) / alpha
        return alpha * x - sigma * out

    noise = gaussian([0, 1], (4, 8, 8))
    scheduler.set_timesteps(steps)
    theirs = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        theirs = scheduler.step(_toy_output(theirs, t), t, theirs).prev_sample
    ours = sample(denoise, noise * grid.noise_scale, sched)
    scale = max(1.0, float(theirs.abs().max()))  # epsilon models' x0 grows large on this toy output
    assert float((ours - theirs).abs().max()) / scale < 1e-5
    if steps >= 3:  # the first-order update on the same grid is measurably different
        first = sample(denoise, noise * grid.noise_scale, dataclasses.replace(sched, solver="euler"))
        assert float((first - theirs).abs().max()) / scale > 1e-4
    part, last = advance(denoise, noise * grid.noise_scale, sched, 0, min(split, steps))
    assert torch.equal(advance(denoise, part, sched, min(split, steps), steps, last)[0], ours)


@pytest.mark.parametrize("family", ["sana", "pixart-sigma"])
def test_dpm_solver_families_reproduce_the_pipeline_call_over_more_steps(
    family: str, tiny_pipeline: Callable[[str], Path]
) -> None:
    """SANA and PixArt with the DPMSolverMultistepScheduler they ship: five steps take three 2M ones."""
    gen = _load(tiny_pipeline(family), steps=5)
    assert gen.schedule().solver == "dpmpp-2m"
    black_box = DiffusersBlackBox(gen.pipe, steps=5, guidance=GUIDANCE, height=SIZE, width=SIZE)
    prompt, seeds = PROMPTS[0]["prompt"], [7, 8]
    theirs = black_box.sample(prompt, seeds)
    assert float((gen.sample(prompt, seeds) - theirs).abs().max()) < 1e-4
    gen._schedule = dataclasses.replace(gen.schedule(), solver="euler")  # what the adapter did before 2M
    assert float((gen.sample(prompt, seeds) - theirs).abs().max()) > 1e-3


@pytest.mark.parametrize("steps", [2, 4])
def test_sana_sprint_reproduces_the_pipeline_call_with_per_sample_generators(
    steps: int, tiny_pipeline: Callable[[str], Path]
) -> None:
    """SANA-Sprint's consistency sampler re-noises at every step from the per-sample generators; the step-level
    path draws the same noise from each seed's stream, so it gives `pipe(...)`'s images for the same seeds."""
    gen = _load(tiny_pipeline("sana-sprint"), steps=steps)
    sched = gen.schedule()
    assert sched.solver == "consistency" and sched.steps == steps and float(sched.sigma[-1]) == 0.0
    assert gen.nfe_per_call == 1 and gen.nfe_per_sample() == steps
    prompt, seeds = PROMPTS[0]["prompt"], [21, 22, 23]
    theirs = gen.pipe(
        prompt,
        num_inference_steps=steps,
        intermediate_timesteps=1.3 if steps == 2 else None,  # the pipeline's default, for 2 steps only
        guidance_scale=GUIDANCE,
        height=SIZE,
        width=SIZE,
        num_images_per_prompt=len(seeds),
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        use_resolution_binning=False,
        output_type="pt",
    ).images
    ours = gen.sample(prompt, seeds)
    assert float((ours - theirs).abs().max()) < 1e-4
    assert float((ours[0] - ours[1]).abs().max()) > 0.05
    gen._schedule = dataclasses.replace(sched, solver="euler")  # DDIM keeps x's noise: a different image
    assert float((gen.sample(prompt, seeds) - theirs).abs().max()) > 1e-3


def test_sana_sprint_candidates_are_deterministic_and_strategies_with_own_noise_run(
    tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path]
) -> None:
    """The same run seed gives the same candidates, pixel for pixel; early pruning finishes the kept ones as
    their seeds' plain runs (each row's step noise follows its seed); paths and particles re-noise with their
    own streams."""
    gen = _load(tiny_pipeline("sana-sprint"), steps=4)
    verifier = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    prompt = PROMPTS[0]["prompt"]

    def search() -> Search:
        return Search.metered(gen, verifier, Meter(Budget()), prompt, prompt_index=0, batch_size=2)

    first, again = (
        best_of_n(search(), BestOfNParams(n=3)).candidates,
        best_of_n(search(), BestOfNParams(n=3)).candidates,
    )
    assert [c.seed for c in first] == [c.seed for c in again]
    assert all(torch.equal(a.image, b.image) for a, b in zip(first, again, strict=True))
    pruned = early_pruning(search(), pruning.Params(n=3, at=0.5, keep=2)).candidates
    plain = gen.sample(prompt, [c.seed for c in pruned])
    assert float((plain - torch.stack([c.image for c in pruned])).abs().max()) < 1e-5
    for strategy, params in [
        (search_over_paths, paths.Params(n=2, width=2, keep=1, branch_at=(1,))),
        (particle_filter, particles.Params(particles=2, resample_every=1)),
    ]:
        meter = Meter(Budget())
        runs = [strategy(Search.metered(gen, verifier, meter, prompt, batch_size=2), params) for _ in range(2)]
        assert len(runs[0].candidates) == 2
        assert all(torch.equal(a.image, b.image) for a, b in zip(*(r.candidates for r in runs), strict=True))
    assert meter.spent.nfe == 2 * 2 * 4  # two runs of two particles, one NFE per step


def test_early_pruning_with_dpm_solver_finishes_the_kept_as_their_plain_runs(
    tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path]
) -> None:
    """Stopping at the look-ahead and going on keeps each trajectory's solver history: a kept candidate is
    the image its seed gives in a plain run (and so in the pipeline's own call)."""
    gen = _load(tiny_pipeline("sana"), steps=5)
    verifier = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    search = Search.metered(gen, verifier, Meter(Budget()), PROMPTS[0]["prompt"], prompt_index=0, batch_size=2)
    result = early_pruning(search, pruning.Params(n=3, at=0.4, keep=2))
    assert [c.path for c in result.candidates] == [[["pruned_at", 2, r]] for r in range(2)]
    plain = gen.sample(PROMPTS[0]["prompt"], [c.seed for c in result.candidates])
    assert float((plain - torch.stack([c.image for c in result.candidates])).abs().max()) < 1e-5


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        (search_over_paths, paths.Params(n=2, width=1, keep=2, eta=0.0, branch_at=(1, 2))),
        (particle_filter, particles.Params(particles=2, resample_every=1, ess_threshold=0.0, eta=0.0)),
    ],
)
def test_branching_strategies_without_fresh_noise_keep_the_multistep_history(
    strategy: Callable[[Search, Any], Any],
    params: StrategyParams,
    tiny_pipeline: Callable[[str], Path],
    tiny_models: dict[str, Path],
) -> None:
    """With eta 0 (and one child per parent, or no resampling) branching and scoring change no trajectory, so
    each candidate is its seed's plain 2M run: the solver history goes through every branch point."""
    gen = _load(tiny_pipeline("pixart-sigma"), steps=5)
    verifier = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    search = Search.metered(gen, verifier, Meter(Budget()), PROMPTS[0]["prompt"], prompt_index=0, batch_size=2)
    result = strategy(search, params)
    assert len(result.candidates) == 2 and result.rounds
    plain = gen.sample(PROMPTS[0]["prompt"], [c.seed for c in result.candidates])
    assert float((plain - torch.stack([c.image for c in result.candidates])).abs().max()) < 1e-5


def test_black_box_of_an_unsupported_pipeline_seeds_like_the_step_level_path(
    tiny_pipeline: Callable[[str], Path],
) -> None:
    """A pipeline class without an adapter runs black-box, seeded through torch.Generator: the same noise."""
    gen = _load(tiny_pipeline("sdxl"))
    custom_cls = type("CustomPipeline", (diffusers.StableDiffusionXLPipeline,), {})
    custom = custom_cls(**gen.pipe.components)
    with pytest.raises(TTScaleError, match="black_box=1"):
        DiffusersGenerator(custom)
    black_box = DiffusersBlackBox(custom, steps=STEPS, guidance=GUIDANCE, height=SIZE, width=SIZE)
    assert black_box.family is None
    images = black_box.sample(PROMPTS[0]["prompt"], [5, 6])
    assert float((images - gen.sample(PROMPTS[0]["prompt"], [5, 6])).abs().max()) < 1e-4


def test_bf16_stays_as_close_to_fp32_as_the_pipeline_call(tiny_pipeline: Callable[[str], Path]) -> None:
    folder = tiny_pipeline("flux-dev")
    gen = _load(folder, options="resolution=32&dtype=bf16")
    assert gen.pipe.transformer.dtype == torch.bfloat16
    prompt, seeds = PROMPTS[0]["prompt"], [3, 4]
    ours = gen.sample(prompt, seeds)
    theirs = DiffusersBlackBox(gen.pipe, steps=STEPS, guidance=GUIDANCE, height=SIZE, width=SIZE).sample(prompt, seeds)
    full = _load(folder).sample(prompt, seeds)
    # bf16 rounding separates both from fp32 by the same order; ours keeps x in fp32 between steps
    assert float((ours - full).abs().max()) < 0.05 and float((theirs - full).abs().max()) < 0.05


def _check_folder(out: Path, n: int, gen: Any) -> list[dict[str, Any]]:
    folder = out / "00000"
    records = read_jsonl(folder / "candidates.jsonl")
    assert [r["index"] for r in records] == list(range(n))
    assert sorted(r["rank"] for r in records) == list(range(n))
    assert [r["rank"] for r in records if r["kept"]] == [0]
    assert all(r["nfe"] == gen.nfe_per_sample() and "yes_prob" in r["scores"] for r in records)
    assert sorted(p.name for p in (folder / "candidates").iterdir()) == [f"{j:05d}.png" for j in range(n)]
    assert read_jsonl(folder / "metadata.jsonl") == [PROMPTS[0]]
    top = next(r["index"] for r in records if r["kept"])
    assert (folder / "samples" / "00000.png").read_bytes() == (folder / "candidates" / f"{top:05d}.png").read_bytes()
    totals = json.loads((out / "run.json").read_text())["totals"]
    assert totals["nfe"] == n * gen.nfe_per_sample()
    assert totals["generator_flops"] == pytest.approx(totals["nfe"] * gen.flops_per_nfe)
    return records


@pytest.mark.parametrize("family", list(BUILDERS))
def test_best_of_n_end_to_end(
    family: str, tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    gen = _load(tiny_pipeline(family), steps=2)
    verifier = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    cfg = SearchConfig(generator=gen.name, verifier="tiny", params={"n": 2}, steps=2, guidance=GUIDANCE, batch_size=2)
    totals = run(cfg, PROMPTS, tmp_path, gen, verifier)
    assert totals.candidates == 2
    records = _check_folder(tmp_path, 2, gen)
    # a candidate is re-created from its recorded seed alone, pixel for pixel
    again = to_uint8(gen.sample(PROMPTS[0]["prompt"], [records[1]["seed"]]))[0]
    assert (again == load_image(tmp_path / "00000" / "candidates" / "00001.png")).all()
    assert again.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("family", ["flux-schnell", "sd3"])
def test_best_of_n_without_guidance(
    family: str, tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """guidance 0, FLUX.1-schnell's setting: no CFG branch (one NFE per step), as the pipeline's own call runs it."""
    cfg = SearchConfig(params={"n": 2}, steps=2, guidance=0.0, batch_size=2)
    gen = load_generator(
        f"diffusers:{tiny_pipeline(family)}?resolution=32", steps=2, guidance=cfg.guidance, batch_size=2
    )
    totals = run(cfg, PROMPTS, tmp_path, gen, LabVerifier.from_pretrained(str(tiny_models["visa"])))
    assert totals.candidates == 2 and gen.nfe_per_sample() == cfg.steps
    records = _check_folder(tmp_path, 2, gen)
    black_box = DiffusersBlackBox(gen.pipe, steps=2, guidance=0.0, height=SIZE, width=SIZE)
    prompt, seeds = PROMPTS[0]["prompt"], [r["seed"] for r in records]
    assert black_box.nfe_per_sample() == cfg.steps
    assert float((gen.sample(prompt, seeds) - black_box.sample(prompt, seeds)).abs().max()) < 1e-4


@pytest.mark.parametrize("family", list(BUILDERS))
def test_zero_order_search_end_to_end(
    family: str, tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    gen = _load(tiny_pipeline(family), steps=2)
    verifier = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    cfg = SearchConfig(
        strategy="zero-order", params={"rounds": 1, "neighbours": 2}, steps=2, guidance=GUIDANCE, batch_size=2
    )
    totals = run(cfg, PROMPTS, tmp_path, gen, verifier)
    assert totals.candidates == 3  # the centre and its two neighbours
    records = _check_folder(tmp_path, 3, gen)
    assert records[0]["path"] == [] and [r["path"][0][0] for r in records[1:]] == ["perturb", "perturb"]


def test_cli_search_with_a_diffusers_folder(
    tiny_pipeline: Callable[[str], Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ttscale.cli import app

    name = f"diffusers:{tiny_pipeline('sd3')}?resolution=32"
    args = [
        "search",
        "--out",
        str(tmp_path),
        "--limit",
        "1",
        "--generator",
        name,
        "--verifier",
        str(tiny_models["visa"]),
    ]
    result = CliRunner().invoke(app, [*args, "--n", "2", "--steps", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "00000" / "candidates.jsonl")) == 2


def test_missing_models_give_one_line_errors(tiny_pipeline: Callable[[str], Path], tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "no" / "such-model"): "does not exist",
        f"diffusers:{tmp_path}": "no model_index.json",
        "ttscale-tests/not-downloaded": "hf download ttscale-tests/not-downloaded",
        "diffusers:org/model?steps=3": "unknown option 'steps'",
    }
    incomplete = tmp_path / "incomplete"
    shutil.copytree(tiny_pipeline("sd15"), incomplete)
    for weights in (incomplete / "unet").glob("*.safetensors"):
        weights.unlink()
    cases[str(incomplete)] = "weights are incomplete"
    for name, message in cases.items():
        with pytest.raises(TTScaleError, match=message) as err:
            load_generator(name)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("scheduler", "exact"),
    [
        (diffusers.DDIMScheduler(), True),
        (diffusers.EulerDiscreteScheduler(), True),
        (diffusers.DPMSolverMultistepScheduler(), True),
        (diffusers.PNDMScheduler(skip_prk_steps=True), False),
        (diffusers.DPMSolverMultistepScheduler(solver_order=3), False),
        (diffusers.UniPCMultistepScheduler(), False),
    ],
)
def test_a_scheduler_ttscale_only_approximates_is_named_in_a_warning(scheduler: Any, exact: bool) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = diffusers_grid(scheduler, 10, flow=False)
    ours = [w for w in caught if "no exact counterpart" in str(w.message)]
    assert len(grid.schedule.t) == 11
    assert len(ours) == (0 if exact else 1)
    if not exact:
        assert type(scheduler).__name__ in str(ours[0].message) and "from_config" in str(ours[0].message)
