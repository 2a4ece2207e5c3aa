"""Verifiers: `score(images, prompts) -> {metric: tensor}`, higher is better, batched.

A verifier declares its metrics (the first is the default ranking metric) and its cost, so a run
can count verifier calls, judge requests and FLOPs next to the generator's NFEs. `flops_per_image`
is NaN where unknown (a model behind an API). A judge that does not ask one request per image (an API
judge retrying, a pairwise tournament) also keeps a running count, `requests` (`CountsRequests`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from ttscale.budget import Meter, cost


@runtime_checkable
class Verifier(Protocol):
    name: str
    metrics: tuple[str, ...]
    flops_per_image: float

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class CountsRequests(Protocol):
    """Optional beside `Verifier`: the judge requests made so far, for a verifier that knows them better than
    "one per image" (see `budget.Spend` for what one is). Read before and after each call, so sharing is fine."""

    @property
    def requests(self) -> int: ...


def score_counting(
    verifier: Verifier, images: torch.Tensor, prompts: Sequence[str]
) -> tuple[dict[str, torch.Tensor], int]:
    """The verifier's scores and the judge requests they took: its own count where it keeps one, else one per image."""
    counter = verifier if isinstance(verifier, CountsRequests) else None
    before = 0 if counter is None else counter.requests
    scores = verifier.score(images, prompts)
    return scores, images.shape[0] if counter is None else counter.requests - before


class MeteredVerifier:
    """Charges a Meter for every image scored and every request its judge makes."""

    def __init__(self, inner: Verifier, meter: Meter):
        self.inner, self.meter = inner, meter
        self.name, self.metrics = inner.name, inner.metrics
        self.flops_per_image = inner.flops_per_image

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        n = images.shape[0]
        self.meter.charge(verifier_calls=n, verifier_flops=cost(self.flops_per_image, n))
        scores, requests = score_counting(self.inner, images, prompts)
        self.meter.count_requests(requests)
        return scores


def scores_for(
    verifier: Verifier, images: torch.Tensor, prompt: str, metric: str | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Score images of one prompt; return the ranking metric and all metrics (keyed by metric name)."""
    all_scores = verifier.score(images, [prompt] * images.shape[0])
    key = metric or verifier.metrics[0]
    if key not in all_scores:
        from ttscale.errors import TTScaleError

        raise TTScaleError(f"verifier {verifier.name!r} has no metric {key!r}; it reports {', '.join(all_scores)}")
    return all_scores[key].float().cpu(), {k: v.float().cpu() for k, v in all_scores.items()}
