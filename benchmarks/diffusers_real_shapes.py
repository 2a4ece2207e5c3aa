"""Real-shape diffusers pipelines through ttscale on a GPU: one best-of-4 search per family, next to diffusers.

Every family ttscale's DiffusersGenerator runs step-level, at its released architecture and resolution,
built from its config with random weights in bf16 directly on the GPU (no download), so the figures are
the architectures' compute and memory, not image quality (FAMILIES below, cheapest first):
    sd15              SD1.5 U-Net (0.86B) + CLIP-L, 512 px, DDIM 50 steps, CFG 7.5
    sana-600m         SANA-600M + Gemma-2-2B, DC-AE f32c32, 512 px, DPM-Solver++(2M) 20 steps, CFG 4.5
    sana-sprint-1.6b  SANA-Sprint 1.6B (sCM), Gemma-2-2B, DC-AE, 1024 px, 2 steps, embedded guidance 4.5
    pixart-sigma      PixArt-Sigma XL/2 (0.61B) + T5-XXL, 1024 px, DPM-Solver++(2M) 20 steps, CFG 4.5
    sdxl              SDXL base U-Net (2.57B) + CLIP-L + CLIP-bigG, 1024 px, Euler 30 steps, CFG 5.0
    sd3-medium        SD3-medium MMDiT (2.03B) + CLIP-L + CLIP-bigG + T5-XXL, 1024 px, 28 steps, CFG 7.0
    sana-1.5-4.8b     SANA-1.5 4.8B, Gemma-2-2B, DC-AE, 1024 px, DPM-Solver++(2M) 20 steps, CFG 4.5
    flux-schnell      FLUX.1-schnell (11.9B) + CLIP-L + T5-XXL, 1024 px, 4 steps, no guidance
    flux-dev          FLUX.1-dev (11.9B) + CLIP-L + T5-XXL, 1024 px, 28 steps, distilled guidance 3.5
For each family it reports seconds per candidate and peak GPU memory of (a) ttscale's step-level
best-of-4 search (runner, strategy, lab verifier with random weights, folder output) and (b) diffusers'
own batched call `pipe(num_images_per_prompt=4, generator=[...])` and (c) the naive loop of one `pipe()` call
per candidate, the two baselines in shared/ANCHORS.md.
All warm up at the timed shapes first; each way is timed `--repeats` times (default 1) and the median is
reported, since single runs of the same call differ by up to 50% on the lent machines. ttscale's time is
also split per candidate into encode (the prompt), denoise (the sampling loop, initial noise included),
decode (VAE and postprocess), verify (the judge) and rest (mostly writing the output folder: uint8
conversion, PNG encoding, jsonl), each waiting for the GPU; every timed search encodes its prompt, as
every diffusers call does. One JSON line per family; a family that fails prints {"family": ..., "error": ...}
and the rest go on. `--smoke` runs a tiny SANA and SANA-Sprint on the CPU, to check the script in CI.

`--check-shapes` needs no GPU: it builds every pipeline on the meta device (no memory, no weights),
prints each component's parameter count and compares denoisers and text encoders with the released
checkpoints' (REFERENCE_B), exiting 1 on a mismatch.

Run on the lent GPU machine (torch 2.11, transformers 5.17; diffusers is not installed there, so carry
its wheel and importlib_metadata's and zipp's in the git-ignored .whl/):
    here:   .venv/bin/pip download --no-deps -d .whl diffusers==0.42.1 importlib_metadata zipp
    device: python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/diffusers-*.whl \
                .whl/importlib_metadata-*.whl .whl/zipp-*.whl && \
            PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/diffusers_real_shapes.py --out "$OUT"
    (with carry=[".whl"]; --families sd15,sdxl for a subset)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from random_weights import PROMPT, built_on


def word_tokenizer(max_length: int) -> Any:
    """A word-level tokenizer made on the spot; random weights make the real vocabularies pointless."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set((PROMPT + " user prompt enhanced given a the of").lower().replace(",", " ").split()))
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", model_max_length=max_length
    )


# Text encoders and VAEs shared between families (call them inside `built_on`).


def t5_xxl() -> Any:
    """T5-v1.1-XXL's encoder (4.76B): FLUX, SD3 and PixArt's long-prompt encoder."""
    import transformers

    config = transformers.T5Config(
        vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu"
    )
    return transformers.T5EncoderModel(config)


def clip_l(projection: bool = False) -> Any:
    """OpenAI CLIP ViT-L/14's text tower (0.12B); with its projection for SD3's pooled embedding."""
    import transformers

    config = transformers.CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        projection_dim=768,
        hidden_act="quick_gelu",
        eos_token_id=2,  # the word tokenizer's </s>
    )
    return transformers.CLIPTextModelWithProjection(config) if projection else transformers.CLIPTextModel(config)


def clip_bigg() -> Any:
    """OpenCLIP ViT-bigG/14's text tower with its projection (0.69B): SDXL and SD3's second encoder."""
    import transformers

    config = transformers.CLIPTextConfig(
        vocab_size=49408,
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=20,
        max_position_embeddings=77,
        projection_dim=1280,
        hidden_act="gelu",
        eos_token_id=2,
    )
    return transformers.CLIPTextModelWithProjection(config)


def kl_vae(latent_channels: int, scaling_factor: float, shift_factor: float | None = None) -> Any:
    """The SD-lineage AutoencoderKL (f8): 4 latent channels with quant convs (SD, SDXL, PixArt), 16 without (FLUX, SD3)."""
    import diffusers

    quant = latent_channels == 4
    return diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=latent_channels,
        use_quant_conv=quant,
        use_post_quant_conv=quant,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
    )


# SD1.x / SDXL's training noise schedule, as their scheduler configs have it
SD_BETAS: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}


def sd15(device: str) -> Any:
    import diffusers

    with built_on(device, torch.bfloat16):
        # UNet2DConditionModel's defaults are SD1.x's blocks (320, 640, 1280, 1280), 8 heads, 2 layers per block
        unet = diffusers.UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        text_encoder = clip_l()
        vae = kl_vae(4, scaling_factor=0.18215)
    # SD1.5 ships PNDM, which ttscale's step-level path runs on DDIM's grid and diffusers with one extra
    # call (51 for 50 steps): DDIM on the same config makes both paths do the same 50 NFEs.
    scheduler = diffusers.DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False)
    return diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(77),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# SANA's transformer shapes (NVlabs' model_kwargs): self-attention heads x 32, depth, cross-attention heads x dim
SANA_SHAPES: dict[str, dict[str, int]] = {
    "600M": dict(num_attention_heads=36, num_layers=28, num_cross_attention_heads=16, cross_attention_head_dim=72),
    "1600M": dict(num_attention_heads=70, num_layers=20, num_cross_attention_heads=20, cross_attention_head_dim=112),
    "4800M": dict(num_attention_heads=70, num_layers=60, num_cross_attention_heads=20, cross_attention_head_dim=112),
    "tiny": dict(num_attention_heads=2, num_layers=1, num_cross_attention_heads=2, cross_attention_head_dim=32),
}


def sana(device: str, *, size: str, side: int, sprint: bool = False, qk_norm: bool = False) -> Any:
    """SANA (SanaPipeline, DPM-Solver++ on flow sigmas) or SANA-Sprint (SanaSprintPipeline, SCM), with Gemma-2-2B
    and DC-AE f32c32; SANA-1.5 and Sprint add RMS q/k norm, Sprint embeds the guidance scale. `size="tiny"` is a
    CPU-sized stand-in (one block, a 2-layer Gemma, a 2-stage DC-AE) for benchmarks' `--smoke` paths."""
    import diffusers
    import transformers

    tiny = size == "tiny"
    dtype = torch.float32 if tiny else torch.bfloat16
    with built_on(device, dtype):
        shape = SANA_SHAPES[size]
        width = shape["num_attention_heads"] * 32
        transformer = diffusers.SanaTransformer2DModel(
            in_channels=32,
            out_channels=32,
            attention_head_dim=32,
            cross_attention_dim=width,
            caption_channels=64 if tiny else 2304,
            mlp_ratio=2.5,
            sample_size=side // 32,
            patch_size=1,
            norm_elementwise_affine=False,
            norm_eps=1e-6,
            qk_norm="rms_norm_across_heads" if qk_norm else None,
            guidance_embeds=sprint,
            **shape,
        )
        stages = 2 if tiny else 6
        blocks = ("ResBlock",) * (stages // 2) + ("EfficientViTBlock",) * (stages - stages // 2)
        vae = diffusers.AutoencoderDC(
            latent_channels=32,
            attention_head_dim=32,
            encoder_block_types=blocks,
            decoder_block_types=blocks,
            encoder_block_out_channels=(32, 64) if tiny else (128, 256, 512, 512, 1024, 1024),
            decoder_block_out_channels=(32, 64) if tiny else (128, 256, 512, 512, 1024, 1024),
            encoder_layers_per_block=(1, 1) if tiny else (2, 2, 2, 3, 3, 3),
            decoder_layers_per_block=(1, 1) if tiny else (3, 3, 3, 3, 3, 3),
            encoder_qkv_multiscales=((), (5,)) if tiny else ((),) * 3 + ((5,),) * 3,
            decoder_qkv_multiscales=((), (5,)) if tiny else ((),) * 3 + ((5,),) * 3,
            upsample_block_type="interpolate",
            downsample_block_type="Conv",
            scaling_factor=0.41407,
        )
        gemma = transformers.Gemma2Model(
            transformers.Gemma2Config(
                vocab_size=1024 if tiny else 256000,
                hidden_size=64 if tiny else 2304,
                intermediate_size=128 if tiny else 9216,
                num_hidden_layers=2 if tiny else 26,
                num_attention_heads=2 if tiny else 8,
                num_key_value_heads=1 if tiny else 4,
                head_dim=32 if tiny else 256,
                query_pre_attn_scalar=256,
                sliding_window=4096,
                max_position_embeddings=8192,
            )
        )
    parts = {"tokenizer": word_tokenizer(8192), "text_encoder": gemma, "vae": vae, "transformer": transformer}
    if sprint:  # the released Sprint pipelines' scheduler config: TrigFlow with sigma_data 0.5
        return diffusers.SanaSprintPipeline(**parts, scheduler=diffusers.SCMScheduler())
    scheduler = diffusers.DPMSolverMultistepScheduler(
        use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction", solver_order=2
    )
    return diffusers.SanaPipeline(**parts, scheduler=scheduler)


def pixart_sigma(device: str) -> Any:
    import diffusers

    with built_on(device, torch.bfloat16):
        transformer = diffusers.PixArtTransformer2DModel(  # PixArt-Sigma-XL-2-1024-MS
            num_attention_heads=16,
            attention_head_dim=72,
            num_layers=28,
            cross_attention_dim=1152,
            caption_channels=4096,
            sample_size=128,
            patch_size=2,
            in_channels=4,
            out_channels=8,
            norm_type="ada_norm_single",
            use_additional_conditions=False,
        )
        text_encoder = t5_xxl()
        vae = kl_vae(4, scaling_factor=0.13025)  # PixArt-Sigma decodes with SDXL's VAE
    # DPM-Solver++ (order 2) over DiT's linear betas (0.0001 to 0.02): the scheduler's defaults
    scheduler = diffusers.DPMSolverMultistepScheduler()
    return diffusers.PixArtSigmaPipeline(
        tokenizer=word_tokenizer(512), text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def sdxl(device: str) -> Any:
    import diffusers

    with built_on(device, torch.bfloat16):
        unet = diffusers.UNet2DConditionModel(  # SDXL base 1.0
            sample_size=128,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),  # diffusers' legacy name: these are head counts
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,  # 6 size/crop ids x 256 + bigG's 1280 pooled
        )
        text_encoder, text_encoder_2 = clip_l(), clip_bigg()
        vae = kl_vae(4, scaling_factor=0.13025)
    scheduler = diffusers.EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="leading")
    return diffusers.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=word_tokenizer(77),
        tokenizer_2=word_tokenizer(77),
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def sd3_medium(device: str) -> Any:
    import diffusers

    with built_on(device, torch.bfloat16):
        transformer = diffusers.SD3Transformer2DModel(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            out_channels=16,
            num_layers=24,
            attention_head_dim=64,
            num_attention_heads=24,
            joint_attention_dim=4096,
            caption_projection_dim=1536,
            pooled_projection_dim=2048,
            pos_embed_max_size=192,
        )
        text_encoder, text_encoder_2, text_encoder_3 = clip_l(projection=True), clip_bigg(), t5_xxl()
        vae = kl_vae(16, scaling_factor=1.5305, shift_factor=0.0609)
    return diffusers.StableDiffusion3Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(77),
        text_encoder_2=text_encoder_2,
        tokenizer_2=word_tokenizer(77),
        text_encoder_3=text_encoder_3,
        tokenizer_3=word_tokenizer(512),
        transformer=transformer,
        vae=vae,
    )


def flux(device: str, *, dev: bool) -> Any:
    """FLUX.1-dev (guidance-distilled, resolution-dependent shift) or FLUX.1-schnell (timestep-distilled)."""
    import diffusers

    with built_on(device, torch.bfloat16):
        transformer = diffusers.FluxTransformer2DModel(guidance_embeds=dev)  # the defaults are FLUX.1's shape
        text_encoder, text_encoder_2 = clip_l(), t5_xxl()
        vae = kl_vae(16, scaling_factor=0.3611, shift_factor=0.1159)
    if dev:
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
            shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
        )
    else:
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(77),
        text_encoder_2=text_encoder_2,
        tokenizer_2=word_tokenizer(512),
        transformer=transformer,
        vae=vae,
    )


FAMILIES: dict[str, tuple[Callable[[str], Any], int, int, float]] = {
    # name: (builder, resolution, steps, guidance) as in ANCHORS.md / the model cards; cheapest first
    "sd15": (sd15, 512, 50, 7.5),
    "sana-600m": (partial(sana, size="600M", side=512), 512, 20, 4.5),
    "sana-sprint-1.6b": (partial(sana, size="1600M", side=1024, sprint=True, qk_norm=True), 1024, 2, 4.5),
    "pixart-sigma": (pixart_sigma, 1024, 20, 4.5),
    "sdxl": (sdxl, 1024, 30, 5.0),
    "sd3-medium": (sd3_medium, 1024, 28, 7.0),
    "sana-1.5-4.8b": (partial(sana, size="4800M", side=1024, qk_norm=True), 1024, 20, 4.5),
    "flux-schnell": (partial(flux, dev=False), 1024, 4, 0.0),
    "flux-dev": (partial(flux, dev=True), 1024, 28, 3.5),
}

# `--smoke`: the benchmark's code path on the CPU, with SANA's one-block stand-in (a tiny DC-AE, Gemma and
# transformer), one family per sampler kind: DPM-Solver++ with CFG, and SANA-Sprint's consistency steps.
SMOKE_FAMILIES: dict[str, tuple[Callable[[str], Any], int, int, float]] = {
    "sana-tiny": (partial(sana, size="tiny", side=64), 64, 2, 4.5),
    "sana-sprint-tiny": (partial(sana, size="tiny", side=64, sprint=True, qk_norm=True), 64, 2, 4.5),
}

# Released checkpoints' parameter counts in billions (model cards / their safetensors), keyed by `shape_key`.
REFERENCE_B: dict[str, float] = {
    "UNet2DConditionModel(768)": 0.86,  # SD1.5
    "UNet2DConditionModel(2048)": 2.57,  # SDXL base
    "PixArtTransformer2DModel(1152x28)": 0.61,  # PixArt-Sigma XL/2
    "SD3Transformer2DModel(1536x24)": 2.03,  # SD3-medium
    "FluxTransformer2DModel(4096x19)": 11.9,  # FLUX.1 dev and schnell
    "T5EncoderModel(4096x24)": 4.76,  # T5-v1.1-XXL encoder
    "CLIPTextModel(768)": 0.123,  # CLIP-L
    "CLIPTextModelWithProjection(768)": 0.124,  # CLIP-L with its projection
    "CLIPTextModelWithProjection(1280)": 0.695,  # OpenCLIP bigG
    "SanaTransformer2DModel(1152x28)": 0.59,  # SANA-600M
    "SanaTransformer2DModel(2240x20)": 1.6,  # SANA-1.6B and SANA-Sprint 1.6B (+6M for the guidance embedding)
    "SanaTransformer2DModel(2240x60)": 4.8,  # SANA-1.5 "4.8B": 60 of 1.6B's blocks, 4.72B counted
    "Gemma2Model(2304)": 2.61,  # Gemma-2-2B without its (tied) LM head
    "AutoencoderKL": 0.084,  # SD / SDXL's VAE and FLUX / SD3's 16-channel one alike
}
# relative, as the references are rounded: catches a wrong width, head layout or block type, but not
# always one layer too few (one of FLUX's 57 blocks or of SDXL's 10-deep stacks is ~1%)
TOLERANCE = 0.02


def shape_key(module: torch.nn.Module) -> str:
    """The module's class, width and (where its config names it) depth, which tell apart e.g. SD1.5's U-Net from
    SDXL's, CLIP-L from bigG and SANA-1.6B from SANA-1.5-4.8B."""
    config = getattr(module, "config", None)
    width = None
    for name in ("caption_projection_dim", "cross_attention_dim", "joint_attention_dim", "d_model", "hidden_size"):
        width = getattr(config, name, None) if config is not None else None
        if width is not None:
            break
    depth = getattr(config, "num_layers", None) if config is not None else None
    if width is None:
        return type(module).__name__
    return f"{type(module).__name__}({width})" if depth is None else f"{type(module).__name__}({width}x{depth})"


def check_shapes(names: list[str]) -> bool:
    """Build each family's pipeline on the meta device and compare parameter counts; True if all match."""
    ok = True
    for name in names:
        try:
            pipe = FAMILIES[name][0]("meta")
        except Exception as e:  # one bad config must not hide the others
            print(json.dumps({"family": name, "error": f"{type(e).__name__}: {e}"}), flush=True)
            ok = False
            continue
        components: dict[str, Any] = {}
        for part, module in pipe.components.items():
            if not isinstance(module, torch.nn.Module):
                continue
            key = shape_key(module)
            params = sum(p.numel() for p in module.parameters())
            entry: dict[str, Any] = {"module": key, "params_b": round(params / 1e9, 3)}
            if key in REFERENCE_B:
                entry["reference_b"] = REFERENCE_B[key]
                entry["match"] = abs(params / 1e9 / REFERENCE_B[key] - 1) <= TOLERANCE
                ok = ok and entry["match"]
            stray = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.device.type != "meta"]
            if stray:  # would be made on the CPU instead of the GPU by `built_on`
                entry["not_on_device"] = stray
                ok = False
            components[part] = entry
        print(json.dumps({"family": name, "pipeline": type(pipe).__name__, "components": components}), flush=True)
        del pipe
    return ok


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that it counts to the code that queued it."""
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else 0.0


def seconds(fn: Callable[[], Any], device: str, repeats: int) -> list[float]:
    """The wall times of `repeats` calls, each waiting for the GPU."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def timed(parts: dict[str, float], key: str, fn: Callable[..., Any], device: str) -> Callable[..., Any]:
    """`fn`, adding its seconds to parts[key]; it waits for the GPU, so its queued work counts to it."""

    def call(*args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        sync(device)
        parts[key] += time.perf_counter() - t0
        return out

    return call


def bench(name: str, n: int, device: str, repeats: int = 1, smoke: bool = False) -> dict[str, Any]:
    """One family: ttscale's best-of-n search, diffusers' batched call and the naive loop, each the median of
    `repeats` timed runs after a warm-up at the same shapes."""
    from ttscale.config import SearchConfig
    from ttscale.generators.diffusers_generator import DiffusersGenerator
    from ttscale.lab.nets import JudgeConfig, YesNoJudge
    from ttscale.lab.prompts import prompt_suite
    from ttscale.lab.verifiers import LabVerifier
    from ttscale.runner import run

    build, side, steps, guidance = (SMOKE_FAMILIES if smoke else FAMILIES)[name]
    t0 = time.perf_counter()
    pipe = build(device).to(device)  # a no-op unless some buffer was made off the device
    pipe.set_progress_bar_config(disable=True)
    built_s = time.perf_counter() - t0
    gen = DiffusersGenerator(pipe, steps=steps, guidance=guidance, height=side, width=side, batch_size=n)
    verifier = LabVerifier(YesNoJudge(JudgeConfig()), name="random-visa", device=device)
    cfg = SearchConfig(strategy="best-of-n", params={"n": n}, steps=steps, guidance=guidance, batch_size=n)
    # Warm-up at the timed run's shapes (kernels, cuDNN plans, allocator, the judge's CUDA graph), as diffusers'
    # own warm-up below is; on another prompt (the pipelines pad prompts to a fixed length, so the shapes are
    # the same), so that the timed run encodes its prompt as diffusers' timed call does.
    warm_up = prompt_suite("test")[0]
    with tempfile.TemporaryDirectory() as out:
        run(cfg, [warm_up], Path(out), gen, verifier)
    sync(device)

    # instance attributes shadow the methods, so the runner's metered wrappers and `sample` itself call these
    parts = dict.fromkeys(("sample", "encode", "decode", "verify"), 0.0)
    gen.sample = timed(parts, "sample", gen.sample, device)
    gen.encode = timed(parts, "encode", gen.encode, device)
    gen.decode = timed(parts, "decode", gen.decode, device)
    verifier.score = timed(parts, "verify", verifier.score, device)
    reset_peak(device)
    searched: list[Any] = []

    def search() -> None:
        # a new prompt string each repeat (the same tokens), so that each encodes its prompt as diffusers' calls do
        prompt = PROMPT + " " * len(searched)
        with tempfile.TemporaryDirectory() as out:
            searched.append(run(cfg, [warm_up | {"prompt": prompt}], Path(out), gen, verifier))
            sync(device)  # the folder is written before the directory goes

    search_times = seconds(search, device, repeats)
    search_s = statistics.median(search_times)
    search_peak = peak_gb(device)
    totals = searched[0]
    split = {  # summed over the repeats; reported as means
        "encode": parts["encode"],
        "denoise": parts["sample"] - parts["encode"] - parts["decode"],
        "decode": parts["decode"],
        "verify": parts["verify"],
        "rest": sum(search_times) - parts["sample"] - parts["verify"],
    }

    call = {"num_inference_steps": steps, "guidance_scale": guidance, "height": side, "width": side}
    call |= gen.family.call_kwargs_for(steps)  # e.g. no resolution binning: the same size as ttscale's path

    def batched() -> None:
        generators = [torch.Generator().manual_seed(s) for s in range(n)]
        pipe(PROMPT, num_images_per_prompt=n, generator=generators, output_type="pt", **call)

    def naive_loop() -> None:  # ANCHORS.md's other baseline: one call per candidate, as most user scripts do
        for seed in range(n):
            pipe(PROMPT, generator=torch.Generator().manual_seed(seed), output_type="pt", **call)

    batched()  # warm-up
    sync(device)
    reset_peak(device)
    diffusers_s = statistics.median(seconds(batched, device, repeats))
    diffusers_peak = peak_gb(device)
    naive_s = statistics.median(seconds(naive_loop, device, repeats))

    return {
        "family": name,
        "resolution": side,
        "steps": steps,
        "guidance": guidance,
        "repeats": repeats,
        "candidates": totals.candidates,
        "nfe": totals.spend.nfe,
        "tflop_per_nfe": round(gen.flops_per_nfe / 1e12, 2),
        "ttscale_best_of_n_s_per_candidate": round(search_s / totals.candidates, 3),
        "ttscale_split_s_per_candidate": {k: round(v / repeats / totals.candidates, 3) for k, v in split.items()},
        "ttscale_s_per_candidate_runs": [round(t / totals.candidates, 3) for t in search_times],
        "ttscale_generator_tflops": round(totals.spend.generator_flops / search_s / 1e12, 1),
        "ttscale_peak_gb": search_peak,
        "diffusers_batched_s_per_image": round(diffusers_s / n, 3),
        "diffusers_naive_loop_s_per_image": round(naive_s / n, 3),
        "diffusers_peak_gb": diffusers_peak,
        "build_s": round(built_s, 1),
    }


def free(device: str) -> None:
    """Give the last family's pipeline back to the GPU before the next is built (FLUX alone is ~35 GB)."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=None, help=f"comma-separated subset of {list(FAMILIES)}")
    parser.add_argument("--n", type=int, default=4, help="candidates per prompt (best-of-n) and diffusers' batch")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each way; the median is reported")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    parser.add_argument(
        "--check-shapes",
        action="store_true",
        help="no GPU: build the pipelines on the meta device and compare parameter counts with the released models",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny SANA and SANA-Sprint on the CPU: checks the script, not speed"
    )
    args = parser.parse_args()
    families = SMOKE_FAMILIES if args.smoke else FAMILIES
    names = args.families.split(",") if args.families else list(families)
    unknown = [n for n in names if n not in families]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(families)}")
    if args.check_shapes:
        if args.smoke:
            parser.error("--check-shapes compares the released sizes; leave out --smoke")
        raise SystemExit(0 if check_shapes(names) else 1)
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (or --smoke)")
    device = "cpu" if args.smoke else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        try:
            result = bench(name, args.n, device, args.repeats, args.smoke)
        except Exception as e:  # one bad config or an OOM must not lose the other families
            traceback.print_exc()
            result = {"family": name, "error": f"{type(e).__name__}: {e}"}
        free(device)
        print(json.dumps(result), flush=True)
        results.append(result)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)"
    record = {"device": name, "torch": torch.__version__, "results": results}
    (args.out / "diffusers_real_shapes.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
