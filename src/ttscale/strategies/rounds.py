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

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from ttscale.candidate import Candidate
from ttscale.search import Round, Search, SearchResult, StrategyParams
from ttscale.verifier import Verifier, scores_for


class Params(StrategyParams):
    strategy: Literal["rounds"] = "rounds"
    rounds: int = Field(4, ge=1, description="rounds of fresh samples")
    samples: int = Field(8, ge=1, description="fresh candidates per round")
    confirm: str | None = Field(None, description="a second verifier that re-scores each round's top (e.g. lab-clip)")
    top: int = Field(4, ge=1, description="candidates per round the confirming verifier re-scores")
    weight: float = Field(0.5, ge=0.0, le=1.0, description="share of the main verifier in `combined`")

    n_field: ClassVar[str | None] = "samples"
    judges: ClassVar[tuple[str, ...]] = ("confirm",)


def rounds(search: Search, params: Params = Params()) -> SearchResult:
    """`rounds` rounds of `samples` fresh candidates; with `confirm`, each round's `top` are re-scored by it."""
    checker = search.judge(params, "confirm")
    nfe_each = search.generator.nfe_per_sample()
    confirms = params.top if checker is not None else 0

    def cost(n: int) -> dict[str, int]:  # a round of n samples, confirmations included
        return {"nfe": n * nfe_each, "verifier_calls": n + min(confirms, n)}

    candidates: list[Candidate] = []
    records: list[Round] = []
    best, best_main = float("-inf"), float("-inf")
    for r in range(params.rounds):
        pool = search.draw([search.seed(len(candidates) + j) for j in range(search.most(params.samples, cost))], r)
        if not pool:
            break
        best_main = max(best_main, *(c.score for c in pool))
        extra: dict[str, Any] = {"best_of_round_main": max(c.score for c in pool)}
        if checker is not None:
            extra |= _confirm(search, checker, pool, params)
        candidates += pool
        best = max(best, *(c.score for c in pool))
        records.append(search.record(r, len(pool), best, **extra, best_main=best_main))
        if len(pool) < params.samples:
            break
    return SearchResult(candidates, records)


def _confirm(search: Search, checker: Verifier, pool: list[Candidate], params: Params) -> dict[str, Any]:
    """Re-score the round's best by the main verifier with `checker` and rank the pool by `combined`."""
    by_main = sorted(pool, key=lambda c: -c.score)
    count = search.most(min(params.top, len(pool)), lambda m: {"verifier_calls": m})
    chosen, rest = by_main[:count], by_main[count:]
    confirm_scores: list[float] = []
    for start in range(0, len(chosen), search.batch_size):
        batch = chosen[start : start + search.batch_size]
        ranking, metrics = scores_for(checker, torch.stack([c.image for c in batch]), search.prompt)
        for j, c in enumerate(batch):
            for key, values in metrics.items():
                c.scores[key if key not in c.scores else f"confirm_{key}"] = float(values[j])
            confirm_scores.append(float(ranking[j]))
    main_rank, confirm_rank = _rank_norm([c.score for c in chosen]), _rank_norm(confirm_scores)
    for c, m, v in zip(chosen, main_rank, confirm_rank, strict=True):
        c.scores["combined"] = params.weight * m + (1 - params.weight) * v
    for c, m in zip(rest, _rank_norm([c.score for c in rest]), strict=True):
        c.scores["combined"] = -2.0 + m
    for c in pool:
        c.score = c.scores["combined"]
    return {"confirmed": len(chosen), "best_of_round_confirm": max(confirm_scores)} if chosen else {}


def _rank_norm(values: list[float]) -> list[float]:
    """Ranks scaled to [0, 1], higher value -> higher rank; ties share their mean rank; one value -> 1."""
    if len(values) == 1:
        return [1.0]
    ranks = [sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]
    return [rank / (len(values) - 1) for rank in ranks]
