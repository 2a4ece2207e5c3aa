"""Reward models loaded from their ORIGINAL checkpoints: tiny random state dicts in the authors' naming,
saved as they ship, loaded through the public path and checked against a forward written here from
the original names (so a wrong rename or a mis-split fused matrix shows up as a different number)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertTokenizerFast,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    PreTrainedTokenizerFast,
)

from ttscale.errors import TTScaleError
from ttscale.images import to_uint8
from ttscale.registry import load_verifier
from ttscale.verifiers import hps
from ttscale.verifiers import image_reward as ir

WORDS = ["a", "photo", "of", "red", "green", "blue", "circle", "square", "cat", "dog", "left", "right", "##s"]
PROMPTS = ["a red circle", "a photo of a blue square", "a cat left of a dog", "green dogs"]
VIT = dict(width=128, layers=2, patch=16, grid=2, mlp=256)  # 2 heads of 64 (BLIP's head width), 32 px
BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def bert_tokenizer() -> BertTokenizerFast:
    """A WordPiece vocabulary with BERT's special tokens and BERT's normaliser and template."""
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


def _linear(out: int, inp: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(out, inp, generator=g) / inp**0.5, 0.1 * torch.randn(out, generator=g)


def original_state(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ImageReward.pt in the package's names (BLIP ViT + med BERT + MLP), with its unused extras."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def lin(name: str, out: int, inp: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = _linear(out, inp, g)

    def norm(name: str, dim: int) -> None:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(dim, generator=g)
        sd[f"{name}.bias"] = 0.1 * torch.randn(dim, generator=g)

    d, p, h = VIT["width"], "blip.visual_encoder.", BERT["hidden_size"]
    sd[p + "cls_token"] = torch.randn(1, 1, d, generator=g)
    sd[p + "pos_embed"] = torch.randn(1, VIT["grid"] ** 2 + 1, d, generator=g)
    sd[p + "patch_embed.proj.weight"] = torch.randn(d, 3, VIT["patch"], VIT["patch"], generator=g) / 16
    sd[p + "patch_embed.proj.bias"] = 0.1 * torch.randn(d, generator=g)
    for i in range(VIT["layers"]):
        b = f"{p}blocks.{i}."
        norm(b + "norm1", d)
        lin(b + "attn.qkv", 3 * d, d)
        lin(b + "attn.proj", d, d)
        norm(b + "norm2", d)
        lin(b + "mlp.fc1", VIT["mlp"], d)
        lin(b + "mlp.fc2", d, VIT["mlp"])
    norm(p + "norm", d)
    t = "blip.text_encoder."
    sd[t + "embeddings.word_embeddings.weight"] = torch.randn(vocab, h, generator=g)
    sd[t + "embeddings.position_embeddings.weight"] = torch.randn(40, h, generator=g)
    sd[t + "embeddings.position_ids"] = torch.arange(40)[None]
    norm(t + "embeddings.LayerNorm", h)
    for i in range(BERT["num_hidden_layers"]):
        b = f"{t}encoder.layer.{i}."
        for att, kv in (("attention", h), ("crossattention", d)):
            lin(f"{b}{att}.self.query", h, h)
            lin(f"{b}{att}.self.key", h, kv)
            lin(f"{b}{att}.self.value", h, kv)
            lin(f"{b}{att}.output.dense", h, h)
            norm(f"{b}{att}.output.LayerNorm", h)
        lin(b + "intermediate.dense", BERT["intermediate_size"], h)
        lin(b + "output.dense", h, BERT["intermediate_size"])
        norm(b + "output.LayerNorm", h)
    lin("blip.vision_proj", 16, d)  # BLIP's contrastive projections: in the file, unused by the reward
    lin("blip.text_proj", 16, h)
    for i, (out, inp) in zip((0, 2, 4, 6, 7), ((1024, h), (128, 1024), (64, 128), (16, 64), (1, 16)), strict=True):
        lin(f"mlp.layers.{i}", out, inp)
    return sd


@pytest.fixture(scope="session")
def reward_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ImageReward.pt, med_config.json and tokenizer/ laid out as the missing-file message asks."""
    root = tmp_path_factory.mktemp("imagereward")
    tok = bert_tokenizer()
    tok.save_pretrained(root / "tokenizer")
    vocab = len(tok) + 2  # BLIP adds [DEC] and [ENC]
    torch.save(original_state(vocab), root / "ImageReward.pt")
    med = dict(BERT, architectures=["BertModel"], model_type="bert", vocab_size=vocab, max_position_embeddings=40)
    med |= dict(hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0, encoder_width=768, add_cross_attention=True)
    (root / "med_config.json").write_text(json.dumps(med))
    return root


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None) -> torch.Tensor:
    b, n, d = q.shape
    q, k, v = (x.reshape(b, -1, heads, d // heads).transpose(1, 2) for x in (q, k, v))
    scores = q @ k.transpose(-1, -2) / (d // heads) ** 0.5
    if mask is not None:
        scores = scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)


def reference_reward(sd: dict[str, torch.Tensor], pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
    """ImageReward's raw reward computed straight from the original names (timm ViT, BLIP med BERT, MLP)."""

    def lin(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def ln(x: torch.Tensor, name: str, eps: float) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    p = "blip.visual_encoder."
    x = F.conv2d(pixels, sd[p + "patch_embed.proj.weight"], sd[p + "patch_embed.proj.bias"], stride=VIT["patch"])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd[p + "cls_token"].expand(len(x), -1, -1), x], 1) + sd[p + "pos_embed"]
    heads = VIT["width"] // 64
    for i in range(VIT["layers"]):
        b = f"{p}blocks.{i}."
        q, k, v = lin(ln(x, b + "norm1", 1e-6), b + "attn.qkv").chunk(3, dim=-1)
        x = x + lin(_attend(q, k, v, heads, None), b + "attn.proj")
        x = x + lin(F.gelu(lin(ln(x, b + "norm2", 1e-6), b + "mlp.fc1")), b + "mlp.fc2")
    image = ln(x, p + "norm", 1e-6)

    t = "blip.text_encoder."
    y = (
        sd[t + "embeddings.word_embeddings.weight"][ids]
        + sd[t + "embeddings.position_embeddings.weight"][: ids.shape[1]]
    )
    y = ln(y, t + "embeddings.LayerNorm", 1e-12)
    pad = (1.0 - mask[:, None, None, :].float()) * -10000.0  # med.py's extended mask
    for i in range(BERT["num_hidden_layers"]):
        b = f"{t}encoder.layer.{i}."
        for att, kv, m in (("attention", None, pad), ("crossattention", image, None)):
            src = y if kv is None else kv
            q, k, v = lin(y, f"{b}{att}.self.query"), lin(src, f"{b}{att}.self.key"), lin(src, f"{b}{att}.self.value")
            out = lin(_attend(q, k, v, BERT["num_attention_heads"], m), f"{b}{att}.output.dense")
            y = ln(out + y, f"{b}{att}.output.LayerNorm", 1e-12)
        y = ln(lin(F.gelu(lin(y, b + "intermediate.dense")), b + "output.dense") + y, b + "output.LayerNorm", 1e-12)
    r = y[:, 0]
    for i in (0, 2, 4, 6, 7):
        r = lin(r, f"mlp.layers.{i}")
    return r.squeeze(-1)


def images(n: int, h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_imagereward_conversion_loads_strictly_and_drops_only_the_unused_keys(reward_folder: Path) -> None:
    sd = torch.load(reward_folder / "ImageReward.pt", weights_only=True)
    converted = ir.convert_state_dict(sd)
    dropped = set(sd) - {k for k in sd if any(converted_v is sd[k] for converted_v in converted.values())}
    assert dropped == {
        "blip.vision_proj.weight",
        "blip.vision_proj.bias",
        "blip.text_proj.weight",
        "blip.text_proj.bias",
        "blip.text_encoder.embeddings.position_ids",
    }
    assert (
        converted["vision.encoder.layers.1.self_attn.qkv.weight"] is sd["blip.visual_encoder.blocks.1.attn.qkv.weight"]
    )
    assert converted["vision.post_layernorm.bias"] is sd["blip.visual_encoder.norm.bias"]
    assert converted["head.7.weight"] is sd["mlp.layers.7.weight"]
    med = json.loads((reward_folder / "med_config.json").read_text())
    net = ir.build_net(sd, med, "test")  # load_state_dict(strict=True) inside
    assert net.vision.config.num_attention_heads == 2 and net.vision.config.image_size == 32
    assert net.vision.config.layer_norm_eps == 1e-6 and net.text.config.encoder_hidden_size == VIT["width"]
    broken = {k: v for k, v in sd.items() if "blocks.1.mlp.fc2" not in k}
    with pytest.raises(TTScaleError, match=r"does not fit ImageReward \(Missing key"):
        ir.build_net(broken, med, "test")
    with pytest.raises(TTScaleError, match="not an ImageReward checkpoint"):
        ir.build_net({"visual.proj": torch.zeros(1)}, med, "test")


def test_imagereward_equals_the_original_forward_and_is_normalised(reward_folder: Path) -> None:
    ver = load_verifier(f"imagereward:{reward_folder}")
    assert isinstance(ver, ir.ImageRewardScorer) and ver.metrics == ("image_reward",) and ver.flops_per_image > 0
    ims = images(3)
    got = ver.score(ims, PROMPTS[:3])["image_reward"]
    sd = torch.load(reward_folder / "ImageReward.pt", weights_only=True)
    tokens = ver.tokenizer(PROMPTS[:3], padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    assert tokens["input_ids"].shape == (3, 35) and (tokens["input_ids"][:, 0] == 2).all()  # [CLS] kept, as the package
    pixels = ir.preprocess(ims, 32)
    with torch.no_grad():
        raw = ver.net(pixels, tokens["input_ids"], tokens["attention_mask"])  # the converted modules
        ref = reference_reward(sd, pixels, tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(raw, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, (ref - 0.16717362830052426) / 1.0333394966054072, atol=1e-5, rtol=1e-5)


def test_imagereward_batches_agree_and_prompts_matter(reward_folder: Path) -> None:
    ver = ir.ImageRewardScorer.from_pretrained(reward_folder, batch_size=4)
    ims = images(4, seed=1)
    batch = ver.score(ims, PROMPTS)["image_reward"]
    assert batch.shape == (4,) and batch.dtype == torch.float32 and torch.isfinite(batch).all()
    single = torch.cat([ver.score(ims[i : i + 1], PROMPTS[i : i + 1])["image_reward"] for i in range(4)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)
    swapped = ver.score(ims, PROMPTS[::-1])["image_reward"]
    assert (swapped - batch).abs().min() > 1e-4
    assert len(set(ver.score(ims[:1].expand(4, -1, -1, -1), PROMPTS)["image_reward"].tolist())) == 4
    half = ir.ImageRewardScorer.from_pretrained(reward_folder, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.net.head[0].weight.dtype == torch.float32
    torch.testing.assert_close(half.score(ims, PROMPTS)["image_reward"], batch, atol=0.1, rtol=0.05)


def test_imagereward_preprocessing_matches_the_packages_pil_pipeline() -> None:
    """Resize(n, BICUBIC) + CenterCrop(n) on a PIL image, as the package runs it, within one uint8 level."""
    rng = np.random.default_rng(0)
    for h, w in ((37, 53), (53, 37), (20, 24), (300, 400)):
        size = 224 if h > 100 else 32
        noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        long = int(size * max(h, w) / min(h, w))
        pil = np.asarray(Image.fromarray(noise).resize((long, size) if h <= w else (size, long), Image.BICUBIC))
        top, left = round((pil.shape[0] - size) / 2), round((pil.shape[1] - size) / 2)
        want = torch.from_numpy(pil[top : top + size, left : left + size].copy()).permute(2, 0, 1).float() / 255
        got = ir.preprocess(torch.from_numpy(noise).permute(2, 0, 1)[None].float() / 255, size)[0]
        got = got * torch.tensor(ir.PIXEL_STD).view(3, 1, 1) + torch.tensor(ir.PIXEL_MEAN).view(3, 1, 1)
        diff = (got - want).abs() * 255
        assert diff.max() <= 1.0 + 1e-3 and (diff > 0.5).float().mean() < 0.01


def test_imagereward_missing_files_say_what_to_download(reward_folder: Path, tmp_path: Path) -> None:
    for name in (f"imagereward:{tmp_path / 'nothing'}", "imagereward:"):
        with pytest.raises(TTScaleError) as err:
            load_verifier(name)
        msg = str(err.value)
        assert "\n" not in msg and "THUDM/ImageReward" in msg and "bert-base-uncased" in msg
        assert "ImageReward.pt" in msg and "med_config.json" in msg
    (tmp_path / "no-tok").mkdir()
    for f in ("ImageReward.pt", "med_config.json"):
        (tmp_path / "no-tok" / f).symlink_to(reward_folder / f)
    with pytest.raises(TTScaleError, match=r"tokenizer not found; download .*bert-base-uncased"):
        load_verifier(f"imagereward:{tmp_path / 'no-tok'}")
    ver = load_verifier(f"imagereward:{tmp_path / 'no-tok'}@{reward_folder / 'tokenizer'}")
    assert ver.score(images(1), PROMPTS[:1])["image_reward"].shape == (1,)


CLIP_W, CLIP_E, CLIP_CTX = 32, 16, 16  # both towers 32 wide with 2 heads; 32 px images in 8 px patches


def clip_tokenizer() -> PreTrainedTokenizerFast:
    """CLIP's layout: pad id 0, start/end of text around the prompt, end of text the largest id (open_clip's argmax)."""
    vocab = {w: i for i, w in enumerate(["!", "<unk>", *WORDS, "<|startoftext|>", "<|endoftext|>"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bos, eos = len(vocab) - 2, len(vocab) - 1
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="!", bos_token="<|startoftext|>", eos_token="<|endoftext|>"
    )


def open_clip_state(vocab: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """A random HPS checkpoint's state dict in open_clip's names."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def lin(name: str, out: int, inp: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = _linear(out, inp, g)

    def norm(name: str) -> None:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(CLIP_W, generator=g)
        sd[f"{name}.bias"] = 0.1 * torch.randn(CLIP_W, generator=g)

    def blocks(prefix: str) -> None:
        for i in range(2):
            b = f"{prefix}transformer.resblocks.{i}."
            norm(b + "ln_1")
            sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"] = _linear(3 * CLIP_W, CLIP_W, g)
            lin(b + "attn.out_proj", CLIP_W, CLIP_W)
            norm(b + "ln_2")
            lin(b + "mlp.c_fc", 64, CLIP_W)
            lin(b + "mlp.c_proj", CLIP_W, 64)

    sd["visual.conv1.weight"] = torch.randn(CLIP_W, 3, 8, 8, generator=g) / 14
    sd["visual.class_embedding"] = torch.randn(CLIP_W, generator=g)
    sd["visual.positional_embedding"] = torch.randn(17, CLIP_W, generator=g)
    norm("visual.ln_pre")
    blocks("visual.")
    norm("visual.ln_post")
    sd["visual.proj"] = torch.randn(CLIP_W, CLIP_E, generator=g) / CLIP_W**0.5
    sd["token_embedding.weight"] = torch.randn(vocab, CLIP_W, generator=g)
    sd["positional_embedding"] = torch.randn(CLIP_CTX, CLIP_W, generator=g)
    blocks("")
    norm("ln_final")
    sd["text_projection"] = torch.randn(CLIP_W, CLIP_E, generator=g) / CLIP_W**0.5
    sd["logit_scale"] = torch.tensor(4.6052)
    return sd


@pytest.fixture(scope="session")
def hps_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """HPS.pt as hpsv2 saves it ({"state_dict": ...}) and a CLIP config + processor folder standing in for CLIP-H."""
    root = tmp_path_factory.mktemp("hps")
    tok = clip_tokenizer()
    tower = dict(
        hidden_size=CLIP_W, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, hidden_act="gelu"
    )
    text = tower | dict(vocab_size=len(tok), max_position_embeddings=CLIP_CTX, pad_token_id=0)
    text |= dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    CLIPConfig(
        text_config=text, vision_config=tower | dict(image_size=32, patch_size=8), projection_dim=CLIP_E
    ).save_pretrained(root / "clip-h")
    pixels = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=pixels, tokenizer=tok).save_pretrained(root / "clip-h")
    torch.save({"state_dict": open_clip_state(len(tok))}, root / "HPS.pt")
    return root / "HPS.pt", root / "clip-h"


def reference_hps(sd: dict[str, torch.Tensor], pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """100 x cosine computed straight from open_clip's names (the fused in_proj, x @ proj, argmax pooling)."""

    def lin(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-5)

    def tower(x: torch.Tensor, prefix: str, mask: torch.Tensor | None) -> torch.Tensor:
        for i in range(2):
            b = f"{prefix}transformer.resblocks.{i}."
            qkv = F.linear(ln(x, b + "ln_1"), sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"])
            x = x + lin(_attend(*qkv.chunk(3, dim=-1), 2, mask), b + "attn.out_proj")
            x = x + lin(F.gelu(lin(ln(x, b + "ln_2"), b + "mlp.c_fc")), b + "mlp.c_proj")
        return x

    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=8).flatten(2).transpose(1, 2)
    x = torch.cat([sd["visual.class_embedding"].expand(len(x), 1, -1), x], 1) + sd["visual.positional_embedding"]
    x = tower(ln(x, "visual.ln_pre"), "visual.", None)
    image = ln(x[:, 0], "visual.ln_post") @ sd["visual.proj"]
    n = ids.shape[1]
    causal = torch.full((n, n), float("-inf")).triu(1)
    y = tower(sd["token_embedding.weight"][ids] + sd["positional_embedding"][:n], "", causal)
    text = ln(y, "ln_final")[torch.arange(len(ids)), ids.argmax(-1)] @ sd["text_projection"]
    return 100 * F.cosine_similarity(image, text, dim=-1)


def test_hps_conversion_splits_in_proj_and_transposes_projections(hps_files: tuple[Path, Path]) -> None:
    sd = torch.load(hps_files[0], weights_only=True)["state_dict"]
    converted = hps.convert_state_dict(sd)
    _, k, _ = sd["visual.transformer.resblocks.1.attn.in_proj_weight"].chunk(3)
    assert converted["vision_model.encoder.layers.1.self_attn.k_proj.weight"].equal(k)
    assert converted["text_model.encoder.layers.0.self_attn.v_proj.bias"].equal(
        sd["transformer.resblocks.0.attn.in_proj_bias"][64:]
    )
    assert converted["visual_projection.weight"].equal(sd["visual.proj"].t())
    assert len(converted) == len(sd) + 2 * 2 * 2 * 2  # each in_proj weight and bias became three tensors
    model = CLIPModel(CLIPConfig.from_pretrained(hps_files[1]))
    model.load_state_dict(converted, strict=True)
    torch.save({"state_dict": {k: v for k, v in sd.items() if k != "ln_final.bias"}}, hps_files[0].parent / "bad.pt")
    with pytest.raises(TTScaleError, match=r"does not fit .*Missing key"):
        load_verifier(f"hps:{hps_files[0].parent / 'bad.pt'}@{hps_files[1]}")


def test_hps_equals_the_original_forward_batches_agree_and_prompts_matter(hps_files: tuple[Path, Path]) -> None:
    ver = load_verifier(f"hps:{hps_files[0]}@{hps_files[1]}")
    assert ver.metrics == ("hps",) and ver.flops_per_image > 0
    ims = images(4, seed=2)
    got = ver.score(ims, PROMPTS)["hps"]
    proc = CLIPProcessor.from_pretrained(hps_files[1])
    batch = proc(text=PROMPTS, images=to_uint8(ims), padding="max_length", max_length=CLIP_CTX, return_tensors="pt")
    sd = torch.load(hps_files[0], weights_only=True)["state_dict"]
    want = reference_hps(sd, batch["pixel_values"], batch["input_ids"])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    single = torch.cat([ver.score(ims[i : i + 1], PROMPTS[i : i + 1])["hps"] for i in range(4)])
    torch.testing.assert_close(got, single, atol=1e-5, rtol=0)
    assert (ver.score(ims, PROMPTS[::-1])["hps"] - got).abs().min() > 1e-4


def test_hps_missing_checkpoint_says_what_to_download(tmp_path: Path) -> None:
    for name in (f"hps:{tmp_path / 'HPS_v2.1_compressed.pt'}", "hps:"):
        with pytest.raises(TTScaleError) as err:
            load_verifier(name)
        assert "\n" not in str(err.value) and "xswu/HPSv2" in str(err.value) and hps.DEFAULT_CONFIG in str(err.value)
