"""Rounds with an optional confirming verifier (Scale-RAE style): each round draws fresh samples, ranks
them by the main verifier, and a second verifier re-scores the round's top few, so one judge's blind
spots are less likely to pick the final image.

Confirmed candidates are ranked by `combined` = weight * main + (1 - weight) * confirm, both
rank-normalised within the round's confirmed set to [0, 1] (1 = best there; a lone value is 1; ties share
their mean rank), so scores of different scales mix fairly. The rest get `combined` = -2 + their main
score rank-normalised over the round's unconfirmed candidates, i.e. in [-2, -1], below every confirmed one.
Black-box: only `search.draw` and the verifiers are used.
"""

from __future__ import annotations

from typing import Any

import torch

from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.registry import shared_verifier
from ttscale.search import Search, SearchResult
from ttscale.verifier import MeteredVerifier, scores_for


def _rank_norm(values: list[float]) -> list[float]:
    """Ranks scaled to [0, 1], higher value -> higher rank; ties share their mean rank; one value -> 1."""
    if len(values) == 1:
        return [1.0]
    ranks = [sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]
    return [rank / (len(values) - 1) for rank in ranks]


def rounds(
    search: Search,
    *,
    rounds: int = 4,
    samples: int = 8,
    confirm: str | None = None,
    top: int = 4,
    weight: float = 0.5,
) -> SearchResult:
    """`rounds` rounds of `samples` fresh candidates; with `confirm`, each round's `top` are re-scored by it."""
    if samples < 1 or top < 1 or not 0.0 <= weight <= 1.0:
        raise TTScaleError(f"rounds: need samples >= 1, top >= 1 and 0 <= weight <= 1 (got {samples}, {top}, {weight})")
    checker = None
    if confirm is not None:
        device = str(getattr(search.generator, "device", "cpu"))
        checker = MeteredVerifier(shared_verifier(confirm, device=str(device)), search.meter)
    nfe_each = search.generator.nfe_per_sample()
    candidates: list[Candidate] = []
    records: list[dict[str, Any]] = []
    best, best_main = float("-inf"), float("-inf")
    for r in range(rounds):
        # the largest round the budget pays in full, confirmations included
        n = samples
        confirms = min(top, n) if checker is not None else 0
        while n > 0 and not search.meter.affords(nfe=n * nfe_each, verifier_calls=n + confirms):
            n -= 1
            confirms = min(top, n) if checker is not None else 0
        if n == 0:
            break
        pool = search.draw([search.seed(len(candidates) + j) for j in range(n)], round=r)
        if not pool:
            break
        best_main = max(best_main, *(c.score for c in pool))
        record: dict[str, Any] = {"round": r, "pool": len(pool), "best_of_round_main": max(c.score for c in pool)}
        if checker is not None:
            by_main = sorted(pool, key=lambda c: -c.score)
            confirms = min(top, len(pool))
            while confirms > 0 and not search.meter.affords(verifier_calls=confirms):
                confirms -= 1
            chosen, rest = by_main[:confirms], by_main[confirms:]
            confirm_scores: list[float] = []
            for start in range(0, len(chosen), search.batch_size):
                batch = chosen[start : start + search.batch_size]
                ranking, metrics = scores_for(checker, torch.stack([c.image for c in batch]), search.prompt)
                for j, c in enumerate(batch):
                    for key, values in metrics.items():
                        c.scores[key if key not in c.scores else f"confirm_{key}"] = float(values[j])
                    confirm_scores.append(float(ranking[j]))
            if chosen:
                main_rank = _rank_norm([c.score for c in chosen])
                confirm_rank = _rank_norm(confirm_scores)
                for c, m, v in zip(chosen, main_rank, confirm_rank, strict=True):
                    c.scores["combined"] = weight * m + (1 - weight) * v
                record["confirmed"] = len(chosen)
                record["best_of_round_confirm"] = max(confirm_scores)
            if rest:
                for c, m in zip(rest, _rank_norm([c.score for c in rest]), strict=True):
                    c.scores["combined"] = -2.0 + m
            for c in pool:
                c.score = c.scores["combined"]
        candidates += pool
        best = max(best, *(c.score for c in pool))
        records.append(
            record
            | {
                "best": best,
                "best_main": best_main,
                "nfe": search.meter.spent.nfe,
                "verifier_calls": search.meter.spent.verifier_calls,
            }
        )
        if len(pool) < samples:
            break
    return SearchResult(candidates, records)
