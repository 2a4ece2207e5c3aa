"""Verifier throughput at real shapes on a GPU, next to the generators', so users see what verification costs.

Each verifier is ttscale's own class (the code a search runs) around a model built from its real
architecture's config with random weights, in bf16, with a word-level tokenizer made on the spot (no
download): CLIPScore and the LAION aesthetic head on CLIP ViT-L/14 @224, PickScore's and HPS v2's CLIP-H/14 @224, ImageReward's BLIP ViT-L/16 + BERT-base @224,
SigLIP so400m/14 @384, and a Qwen2-VL-2B-shaped yes/no judge @448 px (256 image tokens, logits at one
position). Inputs are 512 px candidates as SANA-600M makes them. For each it reports images/s of
`score()` end to end (uint8 conversion and the processor on the CPU included, as in a search) and of the
model alone on preprocessed inputs, FLOPs per image, and the share of a candidate's cost that is
verification next to generating it. The generator is measured in the same run, on the same GPU:
SANA-600M at 512 px (20 steps, CFG 4.5, N=32, random bf16 weights, built as benchmarks/diffusers_real_shapes.py
builds it) in shared/ANCHORS.md's two baselines, the naive loop of one `pipe()` per candidate and diffusers'
batched call, in ttscale's step-level sampling, and at its physical limit (its FLOPs at the bf16 matmul peak
measured here); and the lab generator.

Run on the lent GPU machine (transformers 5.17 and torch 2.11 are there; carry diffusers' wheel as
benchmarks/diffusers_real_shapes.py says). Qwen2-VL's processor needs torchvision; if the machine lacks it,
carry the wheel that matches its torch (and Python):
    here:   .venv/bin/pip download --no-deps -d .whl torchvision==0.26.0 --python-version 3.12 \
                --platform manylinux_2_28_x86_64 --only-binary=:all:
    device: python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl; \
            PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/verifier_throughput.py --out "$OUT"
`--smoke` runs tiny shapes (a one-block SANA among them) on the CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers_real_shapes import sana
from random_weights import PROMPT, built_on

QWEN_SPECIAL = [
    *(
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    )
]


def word_tokenizer(special: list[str], max_length: int, **kwargs: Any) -> Any:
    """A word-level tokenizer made on the spot; random weights make the real vocabularies pointless."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    question = "Does this image match the description: {prompt}? Answer yes or no."
    words = [*question.replace("{prompt}?", "? ").split(), "user", "assistant", *PROMPT.replace(",", " ").split()]
    vocab = {w: i for i, w in enumerate(dict.fromkeys([*special, "<unk>", *words, "Yes", "No"]))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", model_max_length=max_length, **kwargs)


def clip_config(smoke: bool, huge: bool = False) -> Any:
    from transformers import CLIPConfig

    if smoke:
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=14)
        return CLIPConfig(text_config=text | {"vocab_size": 64}, vision_config=vision, projection_dim=16)
    if huge:  # PickScore: CLIP ViT-H/14 (laion2B)
        text = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
        vision = dict(
            hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14
        )
        return CLIPConfig(text_config=text, vision_config=vision, projection_dim=1024)
    text = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, patch_size=14)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)


def clip_processor(size: int) -> Any:
    from transformers import CLIPImageProcessor, CLIPProcessor

    tok = word_tokenizer(["<pad>", "<s>", "</s>"], 77, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    images = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return CLIPProcessor(image_processor=images, tokenizer=tok)


def make_clip(device: str, smoke: bool, kind: str = "clip") -> Any:
    from transformers import CLIPModel

    from ttscale.verifiers.clip import EmbeddingScorer

    with built_on(device, torch.float32 if smoke else torch.bfloat16):
        model = CLIPModel(clip_config(smoke, huge=kind == "pickscore")).eval()
    return EmbeddingScorer(model, clip_processor(224), kind, f"{kind} (random)", device, batch_size=64)  # type: ignore[arg-type]


def make_aesthetic(device: str, smoke: bool) -> Any:
    from transformers import CLIPVisionModelWithProjection

    from ttscale.verifiers.aesthetic import AestheticScorer

    cfg = clip_config(smoke)
    vision = cfg.vision_config
    vision.projection_dim = cfg.projection_dim
    with built_on(device, torch.float32 if smoke else torch.bfloat16):
        model = CLIPVisionModelWithProjection(vision).eval()
    width = cfg.projection_dim
    head = torch.nn.Sequential(
        torch.nn.Linear(width, 1024),
        torch.nn.Linear(1024, 128),
        torch.nn.Linear(128, 64),
        torch.nn.Linear(64, 16),
        torch.nn.Linear(16, 1),
    )
    return AestheticScorer(model, clip_processor(224).image_processor, head, "aesthetic (random)", device)


def make_siglip(device: str, smoke: bool) -> Any:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from ttscale.verifiers.clip import EmbeddingScorer

    if smoke:
        layer = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        size = 56
    else:  # so400m-patch14-384
        layer = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16)
        size = 384
    config = SiglipConfig(
        text_config=layer | {"vocab_size": 32000, "max_position_embeddings": 64},
        vision_config=layer | {"image_size": size, "patch_size": 14},
    )
    with built_on(device, torch.float32 if smoke else torch.bfloat16):
        model = SiglipModel(config).eval()
    tok = word_tokenizer(["</s>"], 64, pad_token="</s>", eos_token="</s>")
    proc = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": size, "width": size}), tokenizer=tok)
    return EmbeddingScorer(model, proc, "siglip", "siglip (random)", device, batch_size=64)


def make_image_reward(device: str, smoke: bool) -> Any:
    """ImageReward: BLIP ViT-L/16 @224 and a BERT-base text encoder cross-attending to its 197 image tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertTokenizerFast, BlipTextConfig, BlipVisionConfig

    from ttscale.verifiers.image_reward import ImageRewardNet, ImageRewardScorer

    if smoke:
        vit = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        bert = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    else:
        vit = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
        bert = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    vision = BlipVisionConfig(**vit, image_size=224, patch_size=16, hidden_act="gelu", layer_norm_eps=1e-6)
    text = BlipTextConfig(**bert, vocab_size=30524, encoder_hidden_size=vision.hidden_size, is_decoder=True)
    words = sorted(set(PROMPT.replace(",", " ").split()))
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    bert_tok = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]")
    with built_on(device, torch.float32 if smoke else torch.bfloat16):
        net = ImageRewardNet(vision, text).eval()
    net.head.float()  # as ImageRewardScorer.from_pretrained leaves it
    return ImageRewardScorer(net, bert_tok, "imagereward (random)", device=device, batch_size=32)


def make_qwen_judge(device: str, smoke: bool) -> Any:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor

    from ttscale.verifiers.vlm import YesNoJudge

    tok = word_tokenizer(
        QWEN_SPECIAL,
        4096,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=QWEN_SPECIAL[1:],
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    if smoke:
        text = dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
        )
        vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2)
        mrope = [2, 3, 3]
    else:  # Qwen2-VL-2B-Instruct
        text = dict(
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
        )
        vision = dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16)
        mrope = [16, 24, 24]
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope}
    config = Qwen2VLConfig(
        text_config=text | {"vocab_size": 151936, "rope_parameters": rope, "max_position_embeddings": 32768},
        vision_config=vision | {"mlp_ratio": 4, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    with built_on(device, torch.float32 if smoke else torch.bfloat16):
        model = Qwen2VLForConditionalGeneration(config).eval()
    pixels = 448 * 448  # every 512 px candidate is resized to 448 x 448: 32 x 32 patches, 256 tokens after merging
    images = Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels)
    chat = (
        "{% for m in messages %}<|im_start|> {{ m['role'] }} {% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<|vision_start|> <|image_pad|> <|vision_end|> {% else %}{{ c['text'] }} {% endif %}{% endfor %}<|im_end|> "
        "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
    )
    try:  # transformers 5.x requires a video processor even for image-only use
        from transformers import Qwen2VLVideoProcessor

        video: Any = Qwen2VLVideoProcessor()
    except ImportError:
        video = None
    proc = Qwen2VLProcessor(image_processor=images, tokenizer=tok, video_processor=video, chat_template=chat)
    return YesNoJudge(model, proc, "qwen2-vl-2b yes/no (random)", device=device, batch_size=32)


def model_only(verifier: Any, images: torch.Tensor, prompts: list[str]) -> Callable[[], Any]:
    """The model's forward on inputs preprocessed once, to separate GPU time from CPU preprocessing."""
    from ttscale.images import to_uint8
    from ttscale.verifiers.pretrained import to_device

    if hasattr(verifier, "net"):  # ImageReward: BLIP on pixels and prompt tokens prepared once
        from ttscale.verifiers.image_reward import MAX_LENGTH, preprocess

        pixels = preprocess(images.to(verifier.device), verifier.image_size).to(verifier.dtype)
        tokens = verifier.tokenizer(prompts, padding="max_length", max_length=MAX_LENGTH, return_tensors="pt")
        ids, mask = tokens["input_ids"].to(verifier.device), tokens["attention_mask"].to(verifier.device)
        return lambda: verifier.net(pixels, ids, mask)
    if hasattr(verifier, "yes_ids"):
        texts = [verifier.chat(p) for p in prompts]
        batch = verifier.processor(text=texts, images=to_uint8(images), padding=True, return_tensors="pt")
        inputs = to_device(batch, verifier.device, verifier.dtype) | {"logits_to_keep": 1}
        return lambda: verifier.model(**inputs).logits
    processor = (
        verifier.processor.image_processor if hasattr(verifier.processor, "image_processor") else verifier.processor
    )
    pixels = to_device(processor(images=to_uint8(images), return_tensors="pt"), verifier.device, verifier.dtype)
    if hasattr(verifier, "head"):
        return lambda: verifier.head(verifier.clip(pixel_values=pixels["pixel_values"]).image_embeds.float())
    return lambda: verifier.model.get_image_features(pixel_values=pixels["pixel_values"])


def timed(fn: Callable[[], Any], device: str, repeats: int, warm_up: Callable[[], Any] | None = None) -> float:
    """Seconds per call, after one warm-up call (of `fn`, unless a cheaper one at the same shapes is given)."""
    with torch.no_grad():
        (warm_up or fn)()
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def matmul_tflops(device: str, smoke: bool) -> float:
    """The practical bf16 peak: TFLOP/s of an 8192^3 matmul (ANCHORS.md's ~770-800 on an H100)."""
    k = 256 if smoke else 8192
    dtype = torch.float32 if smoke else torch.bfloat16
    a, b = (torch.randn(k, k, device=device, dtype=dtype) for _ in range(2))
    return 2 * k**3 / timed(lambda: a @ b, device, 3 if smoke else 20) / 1e12


def sana_seconds(device: str, smoke: bool, n: int, peak_tflops: float) -> tuple[dict[str, float], float]:
    """SANA-600M's seconds per 512 px candidate at N=n, 20 steps, CFG 4.5: ANCHORS.md's two baselines, ttscale's
    step-level sampling (encode, noise, denoise, decode) and the physical limit at `peak_tflops`; all in this
    run. Also its TFLOP per image (20 steps x 2 CFG branches)."""
    from ttscale.generators.diffusers_generator import DiffusersGenerator

    side, steps = (64, 2) if smoke else (512, 20)
    pipe = sana(device, size="tiny" if smoke else "600M", side=side)
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator(pipe, steps=steps, guidance=4.5, height=side, width=side, batch_size=n)
    call = {"num_inference_steps": steps, "guidance_scale": 4.5, "height": side, "width": side, "output_type": "pt"}
    call |= gen.family.call_kwargs_for(steps)

    def batched() -> Any:
        return pipe(
            PROMPT, num_images_per_prompt=n, generator=[torch.Generator().manual_seed(s) for s in range(n)], **call
        )

    def one(seed: int) -> Any:
        return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **call)

    seconds = {
        "naive loop": timed(lambda: [one(s) for s in range(n)], device, 1, warm_up=lambda: one(n)) / n,
        "diffusers batched": timed(batched, device, 1) / n,
        # warmed up on another prompt string (the same tokens): the timed call encodes its prompt, as diffusers' do
        "ttscale step-level": timed(
            lambda: gen.sample(PROMPT, list(range(n))),
            device,
            1,
            warm_up=lambda: gen.sample(PROMPT + " ", list(range(n))),
        )
        / n,
    }
    tflop = gen.flops_per_nfe * gen.nfe_per_sample() / 1e12
    seconds["physical limit"] = tflop / peak_tflops
    return seconds, tflop  # the pipeline goes with this frame: the caller collects it before the verifiers load


def lab_generator_seconds(device: str, n: int) -> float:
    from ttscale.lab.generator import LabGenerator

    gen = LabGenerator.from_pretrained("lab-small", steps=20, device=device, batch_size=n)
    return timed(lambda: gen.sample("a photo of a red circle", list(range(n))), device, 2) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("verifier-throughput"))
    ap.add_argument("--batch", type=int, default=32, help="candidates scored per call (one prompt)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU: checks the script, not speed")
    args = ap.parse_args()
    device = "cpu" if args.smoke else "cuda"
    batch = 2 if args.smoke else args.batch
    size = 64 if args.smoke else 512
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    prompts = [PROMPT] * batch
    makers: dict[str, Callable[[str, bool], Any]] = {
        "CLIPScore, CLIP ViT-L/14 @224": make_clip,
        "LAION aesthetic, CLIP ViT-L/14 @224 + MLP": make_aesthetic,
        "PickScore and HPS v2, CLIP ViT-H/14 @224": lambda d, s: make_clip(d, s, "pickscore"),
        "ImageReward, BLIP ViT-L/16 @224 + BERT-base": make_image_reward,
        "SigLIP so400m/14 @384": make_siglip,
        "Qwen2-VL-2B-shaped yes/no judge @448": make_qwen_judge,
    }
    rows: list[dict[str, Any]] = []
    gen_s = lab_generator_seconds(device, 256 if not args.smoke else 4)
    peak = matmul_tflops(device, args.smoke)
    sana_s, sana_tflop = sana_seconds(device, args.smoke, batch, peak)
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    print(json.dumps({"sana_600m_s_per_image": sana_s}), flush=True)
    for label, make in makers.items():
        try:
            verifier = make(device, args.smoke)
        except Exception as err:  # e.g. Qwen2-VL's processor without torchvision: report, go on
            rows.append({"verifier": label, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"})
            print(f"{label}: not measured ({rows[-1]['error']})", flush=True)
            continue
        end_to_end = timed(lambda v=verifier: v.score(images, prompts), device, args.repeats) / batch
        alone = timed(model_only(verifier, images, prompts), device, args.repeats) / batch
        row = {
            "verifier": label,
            "batch": batch,
            "s_per_image": end_to_end,
            "images_per_s": 1 / end_to_end,
            "model_s_per_image": alone,
            "model_images_per_s": 1 / alone,
            "tflop_per_image": verifier.flops_per_image / 1e12,
            "share_vs_sana": {k: end_to_end / (end_to_end + v) for k, v in sana_s.items()},
            "share_vs_lab_generator": end_to_end / (end_to_end + gen_s),
        }
        if device == "cuda":
            row["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        rows.append(row)
        print(json.dumps(row), flush=True)
        del verifier
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "bf16_matmul_tflops": peak,
        "sana_600m_tflop_per_image": sana_tflop,
        "sana_600m_s_per_image": sana_s,
        "lab_small_s_per_image": gen_s,
        "verifiers": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "verifier_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['device']}: seconds per 512 px candidate; share = verification / (verification + generation)")
    print(
        "| verifier | img/s (score) | img/s (model) | TFLOP/img "
        "| share vs SANA naive / batched / ttscale / limit | vs lab-small |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['verifier']} | not measured: {r['error']} | | | | |")
            continue
        shares = " / ".join(f"{v:.0%}" for v in r["share_vs_sana"].values())
        print(
            f"| {r['verifier']} | {r['images_per_s']:.0f} | {r['model_images_per_s']:.0f} | "
            f"{r['tflop_per_image']:.3f} | {shares} | {r['share_vs_lab_generator']:.0%} |"
        )
    rates = ", ".join(f"{1 / v:.1f} {k}" for k, v in sana_s.items())
    print(f"| SANA-600M 20 steps (here) | {rates} | | | | |")
    print(f"| lab-small 20 steps (here) | {1 / gen_s:.1f} | | | | |")


if __name__ == "__main__":
    main()
