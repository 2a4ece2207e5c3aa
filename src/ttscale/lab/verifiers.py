"""The lab verifiers as ttscale Verifiers: `lab-visa` (yes-probability) and `lab-clip` (cosine)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ttscale.budget import count_flops
from ttscale.cuda_graphs import GraphedCall
from ttscale.lab.nets import DualEncoder, YesNoJudge, tokenize
from ttscale.lab.weights import load_judge


class LabVerifier:
    """Scores (image, prompt) pairs with a lab judge; images are (B, 3, H, W) in [0, 1].

    Images of another size are area-resized to the judge's 32x32 first, as real verifiers resize to their
    input size: a judge has only seen 32x32 scenes, `flops_per_image` is its cost at that size, and at 1024 px
    its CNN would do ~1000x that work (and one with position embeddings would not run at all).

    On a GPU the judge replays as CUDA graphs, like the lab generator: step-level strategies score a few
    look-aheads at every step.
    """

    def __init__(
        self,
        net: YesNoJudge | DualEncoder,
        name: str,
        device: str | torch.device = "cpu",
        batch_size: int = 512,
        cuda_graphs: bool = True,
    ):
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.metrics: tuple[str, ...] = ("yes_prob",) if isinstance(net, YesNoJudge) else ("clip_score",)
        probe, ids = torch.zeros(1, 3, 32, 32), tokenize(["a photo of a red circle"])
        self.flops_per_image = count_flops(lambda: self._forward(net, probe, ids))
        self.net = net.to(self.device)
        self._graphed = GraphedCall(lambda images, ids: self._forward(self.net, images, ids), enabled=cuda_graphs)

    @classmethod
    def from_pretrained(cls, name_or_path: str = "lab-visa", **kwargs: object) -> LabVerifier:
        net, _ = load_judge(name_or_path)
        return cls(net, name=name_or_path, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _forward(net: YesNoJudge | DualEncoder, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if isinstance(net, YesNoJudge):
            return torch.sigmoid(net(images, ids))
        return (net.embed_images(images) * net.embed_texts(ids)).sum(-1)

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        ids = tokenize(prompts).to(self.device)
        side = self.net.image.resolution
        out = []
        for s in range(0, len(prompts), self.batch_size):
            batch = images[s : s + self.batch_size].to(self.device).float()
            if batch.shape[-2:] != (side, side):
                batch = F.interpolate(batch, size=(side, side), mode="area")
            out.append(self._graphed(batch, ids[s : s + self.batch_size]))
        return {self.metrics[0]: torch.cat(out).float().cpu()}
