"""ImageReward (Xu et al. 2023) on transformers' own BLIP classes, from the official checkpoint.

ImageReward is BLIP's ViT-L/16 image encoder and BERT text encoder (cross-attending to the image
tokens) with a small linear head on the text's first hidden state. The image-reward package cannot
run offline next to a CPU torch (it needs torchvision, timm and transformers < 4.56, and fetches
bert-base-uncased when built), so the official `ImageReward.pt` is renamed here onto
`BlipVisionModel` + `BlipTextModel`; the forward pass is the package's `score`. `image_reward` is
its normalised reward ((r - mean) / std over the authors' data, so 0 is their average image).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ttscale.budget import count_flops
from ttscale.errors import TTScaleError
from ttscale.optional import require
from ttscale.verifiers.pretrained import default_dtype, load

REWARD_MEAN, REWARD_STD = 0.16717362830052426, 1.0333394966054072
PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_LENGTH = 35  # the package pads and truncates every prompt to 35 tokens
HEAD_DIM = 64  # BLIP's ViT-B and ViT-L both use 64-d heads; the head count is not in the checkpoint
CHECKPOINT, MED_CONFIG, TOKENIZER_DIR = "ImageReward.pt", "med_config.json", "tokenizer"

# BLIP's timm-style ViT names -> BlipVisionModel's (the renames of transformers' BLIP conversion script).
_VIT_TOP = {
    "cls_token": "embeddings.class_embedding",
    "pos_embed": "embeddings.position_embedding",
    "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
    "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
    "norm.weight": "post_layernorm.weight",
    "norm.bias": "post_layernorm.bias",
}
_VIT_BLOCK = {
    "norm1": "layer_norm1",
    "attn.qkv": "self_attn.qkv",  # one fused (3 x width) matrix, split q|k|v, in both implementations
    "attn.proj": "self_attn.projection",
    "norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)")
# BLIP's med.py BERT already uses BlipTextModel's names; the head's Sequential indices carry over.
_PREFIXES = {"blip.visual_encoder.": "vision.", "blip.text_encoder.": "text.", "mlp.layers.": "head."}
_BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "hidden_act",
    "layer_norm_eps",
    "pad_token_id",
)


def source_hint(folder: str | Path) -> str:
    return (
        f"download ImageReward.pt and med_config.json from the hub repo THUDM/ImageReward into {folder} "
        f"(hf download THUDM/ImageReward ImageReward.pt med_config.json --local-dir {folder}) and bert-base-uncased's "
        f"tokenizer into {Path(folder) / TOKENIZER_DIR} (hf download bert-base-uncased vocab.txt tokenizer.json "
        f"tokenizer_config.json --local-dir {Path(folder) / TOKENIZER_DIR})"
    )


def _vision_key(key: str) -> str:
    block = _BLOCK_KEY.fullmatch(key)
    if block:
        return f"encoder.layers.{block[1]}.{_VIT_BLOCK[block[2]]}.{block[3]}"
    return _VIT_TOP.get(key, key)  # an unknown name passes through for the strict load to report


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ImageReward.pt's names -> `ImageRewardNet`'s (`vision.*`, `text.*`, `head.*`); tensors are shared.

    Dropped: BLIP's contrastive projections (`blip.vision_proj`, `blip.text_proj`, unused by the reward,
    which the package also loads non-strictly) and `position_ids` buffers (transformers rebuilds them).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is None or key.endswith("position_ids"):
            continue
        rest = key[len(prefix) :]
        out[_PREFIXES[prefix] + (_vision_key(rest) if prefix == "blip.visual_encoder." else rest)] = value
    return out


def vision_config(state: Mapping[str, torch.Tensor]) -> Any:
    """The ViT's shape, read off the converted weights (ImageReward ships no vision config)."""
    from transformers import BlipVisionConfig

    width = state["vision.embeddings.class_embedding"].shape[-1]
    patch = state["vision.embeddings.patch_embedding.weight"].shape[-1]
    grid = math.isqrt(state["vision.embeddings.position_embedding"].shape[1] - 1)
    layers = sum(1 for k in state if re.fullmatch(r"vision\.encoder\.layers\.\d+\.layer_norm1\.weight", k))
    return BlipVisionConfig(
        hidden_size=width,
        intermediate_size=state["vision.encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=layers,
        num_attention_heads=max(1, width // HEAD_DIM),
        image_size=grid * patch,
        patch_size=patch,
        hidden_act="gelu",
        layer_norm_eps=1e-6,  # timm's ViT as BLIP builds it; transformers' default is 1e-5
    )


def text_config(med_config: Mapping[str, Any], encoder_width: int) -> Any:
    """BLIP's med_config.json as a BlipTextConfig; the cross-attention width is the ViT's, as BLIP sets it."""
    from transformers import BlipTextConfig

    fields = {k: med_config[k] for k in _BERT_FIELDS if k in med_config}
    # is_decoder builds the cross-attention layers; the forward runs bidirectionally (is_decoder=False).
    return BlipTextConfig(**fields, encoder_hidden_size=encoder_width, is_decoder=True)


class ImageRewardNet(nn.Module):
    """BLIP image encoder, image-grounded text encoder and ImageReward's head; returns the raw reward."""

    def __init__(self, vision: Any, text: Any):
        super().__init__()
        from transformers import BlipTextModel, BlipVisionModel

        self.vision = BlipVisionModel(vision)
        self.image_size: int = vision.image_size
        self.text = BlipTextModel(text, add_pooling_layer=False)
        # the package's MLP: linear layers without activations, dropouts at indices 1, 3 and 5
        self.head = nn.Sequential(
            nn.Linear(text.hidden_size, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        image = self.vision(pixel_values=pixel_values).last_hidden_state
        image_mask = torch.ones(image.shape[:2], dtype=torch.long, device=image.device)
        hidden = self.text(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image,
            encoder_attention_mask=image_mask,
            is_decoder=False,
        ).last_hidden_state
        return self.head(hidden[:, 0].float()).squeeze(-1)


def build_net(state: Mapping[str, torch.Tensor], med_config: Mapping[str, Any], name: str) -> ImageRewardNet:
    """An ImageRewardNet holding an original-format state dict, loaded strictly after conversion."""
    converted = convert_state_dict(state)
    try:
        vision = vision_config(converted)
    except KeyError as err:
        raise TTScaleError(f"{name}: not an ImageReward checkpoint (no {err.args[0]!r} after conversion)") from None
    net = ImageRewardNet(vision, text_config(med_config, vision.hidden_size))
    try:
        net.load_state_dict(converted, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise TTScaleError(f"{name}: the checkpoint does not fit ImageReward ({first[0].strip()[:300]})") from None
    return net.eval()


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL's bicubic resize: antialiased (PIL's kernel), width then height, rounded to uint8 after each pass."""
    for shape in ((x.shape[-2], width), (height, width)):
        x = nn.functional.interpolate(x, size=shape, mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp(0, 255).round()
    return x


def preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """The package's PIL pipeline in torch: shorter side to `size` (bicubic), centre crop, CLIP normalisation.

    Images are taken as the uint8 pixels a run saves, and resized as PIL does (within one level on
    a fraction of a percent of pixels), so scores match those of the saved PNGs through the package.
    """
    x = (images.float().clamp(0, 1) * 255).round()
    h, w = x.shape[-2:]
    if min(h, w) != size:
        long = int(size * max(h, w) / min(h, w))  # torchvision truncates the long side
        x = _resize(x, *((size, long) if h <= w else (long, size)))
    top, left = round((x.shape[-2] - size) / 2), round((x.shape[-1] - size) / 2)
    x = x[..., top : top + size, left : left + size] / 255
    mean = torch.tensor(PIXEL_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def load_tokenizer(source: str, name: str) -> Any:
    """bert-base-uncased with BLIP's added [DEC] (bos) and [ENC] tokens, as the package builds it."""
    transformers = require("transformers", "the imagereward verifier")
    tokenizer = load(transformers.BertTokenizerFast.from_pretrained, source, f"{name} tokenizer")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


class ImageRewardScorer:
    """`image_reward` for (image, prompt) pairs; batched, half precision on GPU (the head stays in fp32)."""

    metrics: tuple[str, ...] = ("image_reward",)

    def __init__(
        self, net: ImageRewardNet, tokenizer: Any, name: str, device: str | torch.device = "cpu", batch_size: int = 32
    ):
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.net, self.tokenizer = net.eval().to(self.device), tokenizer
        self.dtype = next(net.vision.parameters()).dtype
        self.image_size = net.image_size
        probe = torch.zeros(1, 3, self.image_size, self.image_size)
        self.flops_per_image = count_flops(lambda: self._forward(probe, ["a photo of a cat"]))

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        tokenizer: str | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 32,
    ) -> ImageRewardScorer:
        """FOLDER holds ImageReward.pt and med_config.json; the tokenizer is FOLDER/tokenizer unless given."""
        require("transformers", "the imagereward verifier")
        root, name = Path(folder), f"imagereward:{folder}"
        default_tok = root / TOKENIZER_DIR
        needed = [root / CHECKPOINT, root / MED_CONFIG] + ([default_tok] if tokenizer is None else [])
        missing = [p.name for p in needed if not p.exists()]
        if missing:
            raise TTScaleError(f"{name}: {', '.join(missing)} not found; {source_hint(root)}")
        tok = load_tokenizer(tokenizer or str(default_tok), name)
        state = torch.load(root / CHECKPOINT, map_location="cpu", weights_only=True)
        med_config = json.loads((root / MED_CONFIG).read_text())
        net = build_net(state, med_config, name)
        dev = torch.device(device)
        dt = dtype or default_dtype(dev)
        net.to(dt).head.float()  # the package scores the text feature in fp32
        return cls(net, tok, name=name, device=dev, batch_size=batch_size)

    def _forward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        pixels = preprocess(images.to(self.device), self.image_size).to(self.dtype)
        raw = self.net(pixels, tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))
        return (raw - REWARD_MEAN) / REWARD_STD

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        out = [
            self._forward(images[s : s + self.batch_size], prompts[s : s + self.batch_size])
            for s in range(0, len(prompts), self.batch_size)
        ]
        return {"image_reward": torch.cat(out).cpu()}
