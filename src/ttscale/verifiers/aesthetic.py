"""The LAION aesthetic predictor: a small head on CLIP ViT-L/14's normalised image embedding.

The head is a file users download once (improved-aesthetic-predictor's `sac+logos+ava1-l14-linearMSE.pth`,
an MLP, or the older linear `sa_0_4_vit_l_14_linear.pth`); both are stacks of linear layers with
no activations in between, so the head is rebuilt from whatever linear layers the file holds.
The prompt is ignored: this is a prompt-free quality score (`aesthetic`, roughly 1-10).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ttscale.budget import count_flops
from ttscale.errors import TTScaleError
from ttscale.images import to_uint8
from ttscale.optional import require
from ttscale.verifiers.pretrained import default_dtype, load, to_device

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
HEAD_SOURCE = (
    "download sac+logos+ava1-l14-linearMSE.pth from github.com/christophschuhmann/improved-aesthetic-predictor"
)


def _layer_index(key: str) -> int:
    numbers = re.findall(r"\d+", key)
    return int(numbers[-1]) if numbers else 0


def load_head(path: Path) -> nn.Sequential:
    """The linear layers of a .pth / .safetensors head, in order (dropouts are no-ops at inference)."""
    if not path.is_file():
        raise TTScaleError(f"aesthetic head {path} does not exist; {HEAD_SOURCE}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    weights = sorted((k for k, v in state.items() if k.endswith("weight") and v.ndim == 2), key=_layer_index)
    if not weights:
        raise TTScaleError(f"aesthetic head {path} holds no linear layers; {HEAD_SOURCE}")
    layers = []
    for key in weights:
        w = state[key]
        layer = nn.Linear(w.shape[1], w.shape[0])
        layer.weight.data.copy_(w)
        layer.bias.data.copy_(state[key[: -len("weight")] + "bias"])
        layers.append(layer)
    dims = [(layer.in_features, layer.out_features) for layer in layers]
    if any(a[1] != b[0] for a, b in pairwise(dims)) or dims[-1][1] != 1:
        raise TTScaleError(f"aesthetic head {path}: its layers {dims} do not chain to one output")
    return nn.Sequential(*layers).eval()


class AestheticScorer:
    """`aesthetic` = head(CLIP image embedding / its norm); batched, half precision on GPU."""

    metrics: tuple[str, ...] = ("aesthetic",)

    def __init__(
        self,
        clip: Any,
        processor: Any,
        head: nn.Sequential,
        name: str,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
    ):
        width = clip.config.projection_dim
        if head[0].in_features != width:
            raise TTScaleError(
                f"{name}: the head expects {head[0].in_features}-d embeddings but the CLIP model gives {width}-d; "
                f"use {DEFAULT_CLIP} (ViT-L/14), which the LAION heads were trained on"
            )
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.clip, self.processor = clip.eval().to(self.device), processor
        self.dtype = next(clip.parameters()).dtype
        self.head = head.to(self.device)
        self.flops_per_image = count_flops(lambda: self._forward(torch.zeros(1, 3, 224, 224)))

    @classmethod
    def from_pretrained(
        cls,
        head: str | Path,
        *,
        clip: str = DEFAULT_CLIP,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 64,
    ) -> AestheticScorer:
        transformers = require("transformers", "the aesthetic verifier")
        dev = torch.device(device)
        mlp = load_head(Path(head))
        config = load(transformers.AutoConfig.from_pretrained, clip, "aesthetic CLIP model")
        # the vision tower alone; a full CLIP config keeps the projection width at its top level
        vision = getattr(config, "vision_config", config)
        vision.projection_dim = getattr(config, "projection_dim", vision.projection_dim)
        model = load(
            transformers.CLIPVisionModelWithProjection.from_pretrained,
            clip,
            "aesthetic CLIP model",
            config=vision,
            dtype=dtype or default_dtype(dev),
        )
        proc = load(transformers.AutoImageProcessor.from_pretrained, clip, "aesthetic CLIP processor")
        return cls(model, proc, mlp, name=f"aesthetic:{head}", device=dev, batch_size=batch_size)

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = to_device(self.processor(images=to_uint8(images), return_tensors="pt"), self.device, self.dtype)
        embeds = self.clip(pixel_values=pixels["pixel_values"]).image_embeds.float()
        return self.head(embeds / embeds.norm(dim=-1, keepdim=True)).squeeze(-1)

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        out = [self._forward(images[s : s + self.batch_size]) for s in range(0, images.shape[0], self.batch_size)]
        return {"aesthetic": torch.cat(out).cpu()}
