"""The lab generators as a step-level ttscale Generator (pixel space, rectified flow, CFG inside)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ttscale.budget import count_flops
from ttscale.cuda_graphs import GraphedCall
from ttscale.generator import Schedule
from ttscale.lab.nets import FlowUNet, tokenize
from ttscale.lab.weights import load_unet
from ttscale.samplers import flow_schedule, sample_images
from ttscale.seeds import gaussian

Cond = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def measure_flops(net: FlowUNet) -> float:
    """FLOPs of one denoiser evaluation of one 32x32 sample (matrix products and convolutions)."""
    res = net.cfg.resolution
    with torch.no_grad():
        text = net.encode(tokenize(["a photo of a red circle"]))
    return count_flops(lambda: net(torch.zeros(1, 3, res, res), torch.zeros(1), text))


class LabGenerator:
    """x0 = x_t - t * v with v = v_uncond + w (v_cond - v_uncond); both CFG branches count as NFEs.

    As in diffusers, guidance w <= 1 means no CFG: v = v_cond, one NFE per step (w = 0 would otherwise sample
    the unconditional model, which no one asking for "no guidance" wants).

    On a GPU the U-Net runs as CUDA graphs (`cuda_graphs=False` to turn them off): at search's small batches
    this small net is bound by kernel launches, not by compute.
    """

    def __init__(
        self,
        net: FlowUNet,
        name: str = "lab",
        guidance: float = 3.0,
        steps: int = 20,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        cuda_graphs: bool = True,
    ):
        self.flops_per_nfe = measure_flops(net.cpu())
        self.net = net.to(device)
        self._velocity = GraphedCall(lambda x, t, *cond: self.net(x, t, cond), enabled=cuda_graphs)
        self.name, self.guidance, self.steps = name, guidance, steps
        self.device, self.batch_size = torch.device(device), batch_size
        self.nfe_per_call = 2 if guidance > 1.0 else 1
        self._schedule = flow_schedule(steps)

    @classmethod
    def from_pretrained(cls, name_or_path: str = "lab-small", **kwargs: object) -> LabGenerator:
        net, _ = load_unet(name_or_path)
        return cls(net, name=name_or_path, **kwargs)  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.net.cfg.resolution, self.net.cfg.resolution)

    def encode(self, prompt: str) -> Cond:
        with torch.no_grad():
            return self.net.encode(tokenize([prompt]).to(self.device))

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        return gaussian(list(seeds), self.shape).to(self.device)

    def schedule(self) -> Schedule:
        return self._schedule

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, step: int, cond: Cond) -> torch.Tensor:
        b = x.shape[0]
        t = self._schedule.t[step].to(self.device)
        ctx, pooled, mask = (c.expand(b, *c.shape[1:]) for c in cond)
        if self.nfe_per_call == 1:
            v = self._velocity(x, t.expand(b), ctx, pooled, mask)
        else:
            nctx, npooled, nmask = self.net.null(b)
            both = (torch.cat([ctx, nctx]), torch.cat([pooled, npooled]), torch.cat([mask, nmask]))
            vc, vu = self._velocity(torch.cat([x, x]), t.expand(2 * b), *both).chunk(2)
            v = vu + self.guidance * (vc - vu)
        return x - t * v

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        return ((x0 + 1) / 2).clamp(0, 1)

    def nfe_per_sample(self) -> int:
        return self.steps * self.nfe_per_call

    def sample(self, prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        return sample_images(self, prompt, seeds, self.batch_size)
