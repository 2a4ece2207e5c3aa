"""Verifier ensembles: rank averages (Ma et al. 2025) and weighted `combined` scores (Scale-RAE).

Ma et al. find single verifiers each have their blind spots and rank candidates by the average of
the ranks several verifiers give them; ranks make verifiers of different scales (a 0-1
probability, a 0-100 CLIPScore, a 0-10 rubric) comparable without tuning. `rank_mean` is each
image's rank within the batch under every member (0 = worst, 1 = best, ties averaged), averaged.
Scale-RAE instead ranks by a weighted sum of raw scores, `combined`; there the weights must absorb
the scales. A member's failed judgement (-inf or NaN) ranks last and makes `combined` -inf. Every
member metric is reported too, as `<member name>/<metric>`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.stats import rankdata

from ttscale.errors import TTScaleError
from ttscale.verifier import Verifier, score_counting


@dataclass(frozen=True)
class Member:
    """One verifier of an ensemble, the metric it contributes (default: its first) and its weight."""

    verifier: Verifier
    metric: str | None = None
    weight: float = 1.0

    @property
    def key(self) -> str:
        return self.metric or self.verifier.metrics[0]


def batch_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks within the batch scaled to [0, 1] (1 = highest; ties share their mean rank; NaN lowest)."""
    n = values.shape[0]
    if n == 1:
        return torch.ones(1)
    clean = torch.nan_to_num(values.double(), nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    return torch.from_numpy((rankdata(clean.numpy(), method="average") - 1) / (n - 1)).float()


class Ensemble:
    """A Verifier over several: `rank_mean` (Ma et al.) or `combined` (Scale-RAE) first, members' metrics after."""

    def __init__(self, members: Sequence[Member], mode: str = "rank_mean", name: str | None = None):
        if not members:
            raise TTScaleError("an ensemble needs at least one verifier")
        if mode not in ("rank_mean", "combined"):
            raise TTScaleError(f"ensemble mode {mode!r}: choose rank_mean or combined")
        for m in members:
            if m.key not in m.verifier.metrics:
                raise TTScaleError(
                    f"ensemble member {m.verifier.name!r} has no metric {m.key!r}; it has {', '.join(m.verifier.metrics)}"
                )
        self.members, self.mode = list(members), mode
        self.name = name or ("ensemble:" if mode == "rank_mean" else "combined:") + "+".join(
            m.verifier.name for m in members
        )
        self.metrics: tuple[str, ...] = (
            mode,
            *dict.fromkeys(f"{m.verifier.name}/{metric}" for m in members for metric in m.verifier.metrics),
        )
        self.flops_per_image = sum(m.verifier.flops_per_image for m in {id(m.verifier): m for m in members}.values())
        self.requests = 0  # every member's judge requests: two local members ask two per image

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        results: dict[int, dict[str, torch.Tensor]] = {}
        for m in self.members:  # a verifier named twice (e.g. for two of its metrics) scores once
            if id(m.verifier) not in results:
                scores, made = score_counting(m.verifier, images, prompts)
                self.requests += made
                results[id(m.verifier)] = {k: v.float().cpu() for k, v in scores.items()}
        chosen = [results[id(m.verifier)][m.key] for m in self.members]
        if self.mode == "rank_mean":
            head = torch.stack([batch_ranks(v) for v in chosen]).mean(0)
        else:
            head = sum((m.weight * v.double() for m, v in zip(self.members, chosen, strict=True)), torch.zeros(1))
            failed = torch.stack([~torch.isfinite(v) for v in chosen]).any(0)
            head = torch.where(failed, -math.inf, head).float()
        out = {self.mode: head}
        for m in self.members:
            out |= {f"{m.verifier.name}/{k}": v for k, v in results[id(m.verifier)].items()}
        return out
