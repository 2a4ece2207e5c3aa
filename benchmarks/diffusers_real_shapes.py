"""Real-shape diffusers pipelines through ttscale on a GPU: one best-of-4 search per family, next to diffusers.

SANA-600M at 512 px (Gemma-2-2B, DC-AE f32c32, 20 steps, CFG 4.5) and FLUX.1-dev at 1024 px (T5-XXL + CLIP-L,
28 steps, distilled guidance 3.5) are built from their configs with random weights in bf16 (no download),
so the figures are the architectures' compute and memory, not image quality. For each family it reports
seconds per candidate and peak GPU memory of (a) ttscale's step-level best-of-4 search (runner, strategy,
lab verifier with random weights, folder output) and (b) diffusers' own batched call
`pipe(num_images_per_prompt=4, generator=[...])`, the baseline in shared/ANCHORS.md.

Run on the lent GPU machine (diffusers is not installed there; carry its wheel and importlib_metadata's):
    here:   .venv/bin/pip download --no-deps -d .whl diffusers==0.42.1 importlib_metadata zipp
    device: python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/diffusers-*.whl \
                .whl/importlib_metadata-*.whl .whl/zipp-*.whl && \
            PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/diffusers_real_shapes.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

PROMPT = "a red fox sitting in tall grass at sunrise, soft light"  # ten words, as in ANCHORS.md


@contextlib.contextmanager
def built_on(device: str, dtype: torch.dtype) -> Iterator[None]:
    """Initialise modules directly on the GPU in bf16: a 12B model never exists in fp32 or on the CPU."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


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


def sana_600m(device: str) -> Any:
    import diffusers
    import transformers

    with built_on(device, torch.bfloat16):
        transformer = diffusers.SanaTransformer2DModel(
            in_channels=32,
            out_channels=32,
            num_attention_heads=36,
            attention_head_dim=32,
            num_layers=28,
            num_cross_attention_heads=16,
            cross_attention_head_dim=72,
            cross_attention_dim=1152,
            caption_channels=2304,
            mlp_ratio=2.5,
            sample_size=16,
            patch_size=1,
            norm_elementwise_affine=False,
            norm_eps=1e-6,
        )
        blocks = ("ResBlock",) * 3 + ("EfficientViTBlock",) * 3
        vae = diffusers.AutoencoderDC(
            latent_channels=32,
            attention_head_dim=32,
            encoder_block_types=blocks,
            decoder_block_types=blocks,
            encoder_layers_per_block=(2, 2, 2, 3, 3, 3),
            decoder_layers_per_block=(3, 3, 3, 3, 3, 3),
            upsample_block_type="interpolate",
            downsample_block_type="Conv",
            scaling_factor=0.41407,
        )
        gemma = transformers.Gemma2Model(
            transformers.Gemma2Config(
                vocab_size=256000,
                hidden_size=2304,
                intermediate_size=9216,
                num_hidden_layers=26,
                num_attention_heads=8,
                num_key_value_heads=4,
                head_dim=256,
                query_pre_attn_scalar=256,
                sliding_window=4096,
                max_position_embeddings=8192,
            )
        )
    scheduler = diffusers.DPMSolverMultistepScheduler(
        use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction", solver_order=2
    )
    return diffusers.SanaPipeline(
        tokenizer=word_tokenizer(8192), text_encoder=gemma, vae=vae, transformer=transformer, scheduler=scheduler
    )


def flux_dev(device: str) -> Any:
    import diffusers
    import transformers

    with built_on(device, torch.bfloat16):
        transformer = diffusers.FluxTransformer2DModel(guidance_embeds=True)  # the defaults are FLUX.1-dev's
        t5 = transformers.T5EncoderModel(
            transformers.T5Config(
                vocab_size=32128,
                d_model=4096,
                d_kv=64,
                d_ff=10240,
                num_layers=24,
                num_heads=64,
                feed_forward_proj="gated-gelu",
            )
        )
        clip = transformers.CLIPTextModel(
            transformers.CLIPTextConfig(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                projection_dim=768,
                hidden_act="quick_gelu",
                eos_token_id=2,
            )
        )
        vae = diffusers.AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=16,
            use_quant_conv=False,
            use_post_quant_conv=False,
            scaling_factor=0.3611,
            shift_factor=0.1159,
        )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        text_encoder=clip,
        tokenizer=word_tokenizer(77),
        text_encoder_2=t5,
        tokenizer_2=word_tokenizer(512),
        transformer=transformer,
        vae=vae,
    )


FAMILIES: dict[str, tuple[Callable[[str], Any], int, int, float]] = {
    # name: (builder, resolution, steps, guidance) as in ANCHORS.md
    "sana-600m": (sana_600m, 512, 20, 4.5),
    "flux-dev": (flux_dev, 1024, 28, 3.5),
}


def gb(nbytes: int) -> float:
    return round(nbytes / 2**30, 2)


def bench(name: str, n: int, device: str) -> dict[str, Any]:
    from ttscale.config import SearchConfig
    from ttscale.generators.diffusers_generator import DiffusersGenerator
    from ttscale.lab.nets import JudgeConfig, YesNoJudge
    from ttscale.lab.prompts import prompt_suite
    from ttscale.lab.verifiers import LabVerifier
    from ttscale.runner import run

    build, side, steps, guidance = FAMILIES[name]
    t0 = time.perf_counter()
    pipe = build(device)
    pipe.set_progress_bar_config(disable=True)
    built_s = time.perf_counter() - t0
    gen = DiffusersGenerator(pipe, steps=steps, guidance=guidance, height=side, width=side, batch_size=n)
    verifier = LabVerifier(YesNoJudge(JudgeConfig()), name="random-visa", device=device)
    metadata = prompt_suite("test")[0] | {"prompt": PROMPT}
    verifier.score(gen.sample(PROMPT, [0]), [PROMPT])  # warm-up: kernels, allocator, cuDNN
    torch.cuda.synchronize()

    torch.cuda.reset_peak_memory_stats()
    cfg = SearchConfig(strategy="best-of-n", params={"n": n}, steps=steps, guidance=guidance, batch_size=n)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        totals = run(cfg, [metadata], Path(out), gen, verifier)
        torch.cuda.synchronize()
        search_s = time.perf_counter() - t0
    search_peak = torch.cuda.max_memory_allocated()

    generators = [torch.Generator().manual_seed(s) for s in range(n)]
    call = {"num_inference_steps": steps, "guidance_scale": guidance, "height": side, "width": side}
    pipe(PROMPT, num_images_per_prompt=n, generator=generators, output_type="pt", **call)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    generators = [torch.Generator().manual_seed(s) for s in range(n)]
    t0 = time.perf_counter()
    pipe(PROMPT, num_images_per_prompt=n, generator=generators, output_type="pt", **call)
    torch.cuda.synchronize()
    diffusers_s = time.perf_counter() - t0
    diffusers_peak = torch.cuda.max_memory_allocated()

    result = {
        "family": name,
        "resolution": side,
        "steps": steps,
        "guidance": guidance,
        "candidates": totals.candidates,
        "nfe": totals.spend.nfe,
        "tflop_per_nfe": round(gen.flops_per_nfe / 1e12, 2),
        "ttscale_best_of_n_s_per_candidate": round(search_s / totals.candidates, 3),
        "ttscale_generator_tflops": round(totals.spend.generator_flops / search_s / 1e12, 1),
        "ttscale_peak_gb": gb(search_peak),
        "diffusers_batched_s_per_image": round(diffusers_s / n, 3),
        "diffusers_peak_gb": gb(diffusers_peak),
        "build_s": round(built_s, 1),
    }
    del pipe, gen, verifier
    gc.collect()
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated subset of {list(FAMILIES)}")
    parser.add_argument("--n", type=int, default=4, help="candidates per prompt (best-of-n) and diffusers' batch")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.families.split(","):
        result = bench(name, args.n, "cuda")
        print(json.dumps(result), flush=True)
        results.append(result)
    record = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}
    (args.out / "diffusers_real_shapes.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
