"""A candidate: one image a search drew, with everything needed to re-create and audit it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Candidate:
    """`seed` makes the initial noise; `path` lists what a step-level strategy did after it
    (e.g. [["branch", step, seed], ["resample", step, parent]]), empty for plain sampling."""

    seed: int
    image: torch.Tensor  # (3, H, W) in [0, 1]
    scores: dict[str, float]
    score: float  # the ranking metric
    nfe: int  # NFEs spent on this candidate's own trajectory
    round: int = 0
    path: list[list[Any]] = field(default_factory=list)
    rank: int = -1
    kept: bool = False

    def record(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "seed": self.seed,
            "round": self.round,
            "path": self.path,
            "nfe": self.nfe,
            "score": self.score,
            "scores": self.scores,
            "rank": self.rank,
            "kept": self.kept,
        }


def rank_and_keep(candidates: list[Candidate], k: int) -> list[Candidate]:
    """Rank by score (ties: earlier drawn first; NaN, e.g. a failed judgement, last) and mark the top k kept.

    Returns the kept candidates in rank order.
    """
    order = sorted(range(len(candidates)), key=lambda i: (math.isnan(candidates[i].score), -candidates[i].score, i))
    for r, i in enumerate(order):
        candidates[i].rank = r
        candidates[i].kept = r < k
    return [candidates[i] for i in order[:k]]
