"""Embedding scorers through transformers: CLIPScore, PickScore and SigLIP, one code path.

Each embeds the images and the prompt and compares them. CLIP reports `clip_score` = 100 x cosine
(CLIPScore's scale; not clipped at 0, so ranks stay strict), PickScore (a CLIP-H fine-tune) reports
`pick_score` = its logit scale x cosine as its authors do, and SigLIP reports `siglip_score` =
sigmoid(scale x cosine + bias), the match probability it was trained to give. Images are scored as
the uint8 pixels a run saves, so `ttscale pick` on the saved PNGs reproduces the scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from ttscale.budget import count_flops
from ttscale.errors import TTScaleError
from ttscale.images import to_uint8
from ttscale.optional import require
from ttscale.verifiers.pretrained import default_dtype, load, to_device

Kind = Literal["clip", "siglip", "pickscore"]

DEFAULT_MODELS: dict[str, str] = {
    "clip": "openai/clip-vit-large-patch14",
    "siglip": "google/siglip-so400m-patch14-384",
    "pickscore": "yuvalkirstain/PickScore_v1",
}
# PickScore's checkpoint ships without a processor; its authors load the one of the CLIP-H it was tuned from.
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
METRICS: dict[str, str] = {"clip": "clip_score", "siglip": "siglip_score", "pickscore": "pick_score"}
MODEL_TYPES: dict[str, tuple[str, ...]] = {"clip": ("clip",), "siglip": ("siglip", "siglip2"), "pickscore": ("clip",)}


def _pooled(out: Any) -> torch.Tensor:
    """transformers 5 returns the projected embedding as `pooler_output`; older versions return the tensor."""
    return out if torch.is_tensor(out) else out.pooler_output


class EmbeddingScorer:
    """Scores (image, prompt) pairs by embedding similarity; batched, the prompt embedded once per batch."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        kind: Kind,
        name: str,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        metric: str | None = None,
    ):
        model_type = model.config.model_type
        if model_type not in MODEL_TYPES[kind]:
            fits = next((k for k, types in MODEL_TYPES.items() if model_type in types), None)
            hint = f"load it as {fits}:<model>" if fits else "give a CLIP or SigLIP checkpoint"
            raise TTScaleError(f"{name}: the checkpoint is a {model_type!r} model; {hint}")
        self.model, self.processor, self.kind = model.eval(), processor, kind
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.dtype = next(model.parameters()).dtype
        self.metrics: tuple[str, ...] = (metric or METRICS[kind],)  # a fine-tune (HPS) reports under its own name
        text_config = model.config.text_config
        self.max_length = int(getattr(text_config, "max_position_embeddings", 77))
        probe = torch.zeros(1, 3, 224, 224)
        self.flops_per_image = count_flops(lambda: self._forward(probe, ["a photo of a cat"]))

    @classmethod
    def from_pretrained(
        cls,
        model: str | None = None,
        *,
        kind: Kind = "clip",
        processor: str | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 64,
    ) -> EmbeddingScorer:
        """A local folder or hub id (default: the kind's reference checkpoint); the processor from the same place."""
        transformers = require("transformers", f"the {kind} verifier")
        model = model or DEFAULT_MODELS[kind]
        processor = processor or (
            PICKSCORE_PROCESSOR if kind == "pickscore" and model == DEFAULT_MODELS[kind] else model
        )
        dev = torch.device(device)
        net = load(transformers.AutoModel.from_pretrained, model, f"{kind} model", dtype=dtype or default_dtype(dev))
        proc = load(transformers.AutoProcessor.from_pretrained, processor, f"{kind} processor")
        return cls(net.to(dev), proc, kind, name=f"{kind}:{model}", device=dev, batch_size=batch_size)

    def _embed_texts(self, prompts: Sequence[str]) -> torch.Tensor:
        # SigLIP was trained on texts padded to its full length (and reads no attention mask): pad the same way.
        padding = "max_length" if self.kind == "siglip" else True
        tokens = self.processor.tokenizer(
            list(prompts), padding=padding, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return torch.nn.functional.normalize(_pooled(self.model.get_text_features(**inputs)).float(), dim=-1)

    def _embed_images(self, images: torch.Tensor) -> torch.Tensor:
        pixels = self.processor.image_processor(images=to_uint8(images), return_tensors="pt")
        inputs = to_device(pixels, self.device, self.dtype)
        features = self.model.get_image_features(pixel_values=inputs["pixel_values"])
        return torch.nn.functional.normalize(_pooled(features).float(), dim=-1)

    def _forward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        unique = list(dict.fromkeys(prompts))
        texts = self._embed_texts(unique)[[unique.index(p) for p in prompts]]
        cosine = (self._embed_images(images) * texts).sum(-1)
        if self.kind == "clip":
            return 100 * cosine
        scale = self.model.logit_scale.float().exp()
        if self.kind == "pickscore":
            return scale * cosine
        return torch.sigmoid(scale * cosine + self.model.logit_bias.float())

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        out = [
            self._forward(images[s : s + self.batch_size], prompts[s : s + self.batch_size])
            for s in range(0, len(prompts), self.batch_size)
        ]
        return {self.metrics[0]: torch.cat(out).cpu()}
