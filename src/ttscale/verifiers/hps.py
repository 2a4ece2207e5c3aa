"""HPS v2 / v2.1 (Wu et al. 2023) on transformers' CLIPModel, from the official open_clip checkpoint.

HPS is OpenCLIP's ViT-H/14 fine-tuned on human preferences. The hpsv2 package needs open_clip and
torchvision (CUDA wheels that break the CPU install), so its checkpoint (HPS_v2_compressed.pt or
HPS_v2.1_compressed.pt, open_clip names) is renamed here onto CLIPModel, built from the config of
the CLIP-H it was tuned from, whose processor does hpsv2's preprocessing (shorter side to 224 bicubic,
centre crop, OpenAI mean/std) and tokenisation. `hps` = 100 x cosine: hpsv2.score returns the bare
cosine, its benchmark tables the cosine x 100.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ttscale.errors import TTScaleError
from ttscale.optional import require
from ttscale.verifiers.clip import EmbeddingScorer
from ttscale.verifiers.pretrained import default_dtype, load

DEFAULT_CONFIG = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
CONFIG_FILES = "config.json preprocessor_config.json tokenizer.json tokenizer_config.json vocab.json merges.txt"

_MODULES = {
    "visual.conv1": "vision_model.embeddings.patch_embedding",
    "visual.ln_pre": "vision_model.pre_layrnorm",  # transformers' spelling
    "visual.ln_post": "vision_model.post_layernorm",
    "token_embedding": "text_model.embeddings.token_embedding",
    "ln_final": "text_model.final_layer_norm",
}
_TENSORS = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "logit_scale": "logit_scale",
}
# open_clip multiplies by these (x @ proj); an nn.Linear stores the transpose
_PROJECTIONS = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}
_BLOCK = {
    "ln_1": "layer_norm1",
    "attn.out_proj": "self_attn.out_proj",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_BLOCK_KEY = re.compile(r"(visual\.)?transformer\.resblocks\.(\d+)\.(.+)\.(\w+)")


HPS_SOURCE = (
    "download HPS_v2.1_compressed.pt (or HPS_v2_compressed.pt) from the hub repo xswu/HPSv2 "
    "(hf download xswu/HPSv2 HPS_v2.1_compressed.pt --local-dir DIR) and give the config and tokenizer "
    f"of {DEFAULT_CONFIG} as hps:CHECKPOINT@CONFIG_DIR (hf download {DEFAULT_CONFIG} {CONFIG_FILES} "
    "--local-dir CONFIG_DIR)"
)


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip CLIP names -> transformers' CLIPModel names; the fused in_proj is split into q, k, v.

    Dropped: `attn_mask` (the text tower's causal mask, a constant that transformers builds itself).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        block = _BLOCK_KEY.fullmatch(key)
        if block:
            layer = f"{'vision' if block[1] else 'text'}_model.encoder.layers.{block[2]}."
            module, param = block[3], block[4]
            if module == "attn" and param.startswith("in_proj_"):
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                    out[f"{layer}self_attn.{name}.{param.removeprefix('in_proj_')}"] = part
            else:
                out[f"{layer}{_BLOCK.get(module, module)}.{param}"] = value
        elif key in _PROJECTIONS:
            out[_PROJECTIONS[key]] = value.t()
        elif key in _TENSORS:
            out[_TENSORS[key]] = value
        elif key != "attn_mask":
            module, _, param = key.rpartition(".")
            out[f"{_MODULES.get(module, module)}.{param}"] = value  # an unknown name is left for the strict load
    return out


def load_hps(
    checkpoint: str | Path,
    config: str = DEFAULT_CONFIG,
    *,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    batch_size: int = 64,
) -> EmbeddingScorer:
    """An HPS scorer: the checkpoint renamed into a CLIPModel built from `config` (a folder or hub id)."""
    transformers = require("transformers", "the hps verifier")
    path, name = Path(checkpoint), f"hps:{checkpoint}"
    if not path.is_file():
        raise TTScaleError(f"{name}: {path} does not exist; {HPS_SOURCE}")
    clip_config = load(transformers.CLIPConfig.from_pretrained, config, "hps CLIP-H config")
    processor = load(transformers.AutoProcessor.from_pretrained, config, "hps CLIP-H processor")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state = convert_state_dict(saved.get("state_dict", saved))  # hpsv2 saves {"state_dict": ...}
    model = transformers.CLIPModel(clip_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise TTScaleError(f"{name}: the checkpoint does not fit {config}'s CLIP ({first[0].strip()[:300]})") from None
    dev = torch.device(device)
    model = model.to(dev, dtype=dtype or default_dtype(dev))
    return EmbeddingScorer(model, processor, "clip", name=name, device=dev, batch_size=batch_size, metric="hps")
