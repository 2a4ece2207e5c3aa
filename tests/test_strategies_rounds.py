"""Round-based strategies on tiny random lab models: random search, rounds (+ confirm), zero-order, adaptive."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.budget import Budget, Meter
from ttscale.candidate import Candidate, rank_and_keep
from ttscale.errors import TTScaleError
from ttscale.generator import CallableGenerator, Generator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.verifiers import LabVerifier
from ttscale.samplers import sample
from ttscale.search import Search, SearchResult
from ttscale.seeds import gaussian
from ttscale.strategies.adaptive import Params as AdaptiveParams
from ttscale.strategies.adaptive import adaptive
from ttscale.strategies.random_search import Params as RandomParams
from ttscale.strategies.random_search import random_search
from ttscale.strategies.rounds import Params as RoundsParams
from ttscale.strategies.rounds import rounds
from ttscale.strategies.zero_order import Params as ZeroOrderParams
from ttscale.strategies.zero_order import zero_order
from ttscale.verifier import Verifier

PROMPT = "a photo of a red circle above a blue square"
STEPS = 4
NFE = STEPS * 2  # per sample: CFG counts two NFEs a step


@pytest.fixture(scope="module")
def lab(tiny_models: dict[str, Path]) -> dict[str, Any]:
    return {
        "generator": LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=STEPS, batch_size=8),
        "visa": LabVerifier.from_pretrained(str(tiny_models["visa"])),
        "clip": LabVerifier.from_pretrained(str(tiny_models["clip"])),
        "clip_path": str(tiny_models["clip"]),
        "visa_path": str(tiny_models["visa"]),
    }


def _search(
    generator: Generator,
    verifier: Verifier,
    budget: Budget | None = None,
    run_seed: int = 0,
    batch_size: int = 8,
    confirm: Verifier | None = None,
) -> Search:
    """A search of PROMPT; `confirm` is the judge the runner would resolve for rounds' `confirm` parameter."""
    judges = {} if confirm is None else {"confirm": confirm}
    meter = Meter(budget or Budget())
    return Search.metered(
        generator, verifier, meter, PROMPT, judges, prompt_index=0, run_seed=run_seed, batch_size=batch_size
    )


def _strategies(lab: dict[str, Any]) -> dict[str, Callable[[Search], SearchResult]]:
    """Each strategy with small parameters that bound the work on an unlimited budget."""
    return {
        "random_search": lambda s: random_search(s, RandomParams(rounds=3)),
        "rounds": lambda s: rounds(s, RoundsParams(rounds=2, samples=3, confirm=lab["clip_path"], top=2)),
        "zero_order": lambda s: zero_order(s, ZeroOrderParams(rounds=3, neighbours=2)),
        "adaptive": lambda s: adaptive(s, AdaptiveParams(threshold=2.0, batch=3, max_n=6)),
    }


def _check_result(search: Search, result: SearchResult) -> None:
    """Complete images only, every NFE accounted for by a candidate, JSON-able round records."""
    for c in result.candidates:
        assert c.image.shape == (3, 32, 32) and c.image.device.type == "cpu"
        assert float(c.image.min()) >= 0.0 and float(c.image.max()) <= 1.0
        assert c.nfe == NFE and math.isfinite(c.score)
    assert search.meter.spent.nfe == sum(c.nfe for c in result.candidates)
    lines = [r.line() for r in result.rounds]
    json.dumps(lines)
    assert sum(r["pool"] for r in lines) == len(result.candidates)
    for r, record in enumerate(lines):
        assert record["round"] == r and {"best", "nfe", "verifier_calls"} <= record.keys()
    if lines:
        assert lines[-1]["nfe"] == search.meter.spent.nfe
        assert lines[-1]["verifier_calls"] == search.meter.spent.verifier_calls


def _same(a: list[Candidate], b: list[Candidate]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.image, y.image) and x.scores == y.scores and x.score == y.score and x.path == y.path
        for x, y in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------- budget, determinism, verifiers, black-box


@pytest.mark.parametrize("name", ["random_search", "rounds", "zero_order", "adaptive"])
@settings(max_examples=12, deadline=None)
@given(nfe=st.none() | st.integers(0, 80), calls=st.none() | st.integers(0, 11))
def test_budget_is_respected_and_spent(lab: dict[str, Any], name: str, nfe: int | None, calls: int | None) -> None:
    if nfe is None and calls is None:
        calls = 5
    # parameters large enough that the budget is what binds
    run: dict[str, Callable[[Search], SearchResult]] = {
        "random_search": lambda s: random_search(s),
        "rounds": lambda s: rounds(s, RoundsParams(rounds=50, samples=3, confirm=lab["clip_path"], top=2)),
        "zero_order": lambda s: zero_order(s, ZeroOrderParams(rounds=50, neighbours=3)),
        "adaptive": lambda s: adaptive(s, AdaptiveParams(threshold=2.0, batch=3)),
    }
    search = _search(lab["generator"], lab["visa"], Budget(nfe=nfe, verifier_calls=calls), confirm=lab["clip"])
    result = run[name](search)
    _check_result(search, result)
    spent = search.meter.spent
    assert nfe is None or spent.nfe <= nfe
    assert calls is None or spent.verifier_calls <= calls
    confirmed = sum("clip_score" in c.scores for c in result.candidates)
    assert spent.verifier_calls == len(result.candidates) + confirmed
    # within one unit of work of the budget: one more sample (+ its confirmation) would not fit
    assert not search.meter.affords(nfe=NFE, verifier_calls=2 if name == "rounds" else 1)


@pytest.mark.parametrize("verifier", ["visa", "clip"])
@pytest.mark.parametrize("name", ["random_search", "rounds", "zero_order", "adaptive"])
def test_deterministic_under_a_seed_with_both_verifiers(lab: dict[str, Any], name: str, verifier: str) -> None:
    strategy = _strategies(lab)[name]
    first = strategy(s := _search(lab["generator"], lab[verifier], confirm=lab["clip"]))
    _check_result(s, first)
    again = strategy(_search(lab["generator"], lab[verifier], confirm=lab["clip"]))
    other = strategy(_search(lab["generator"], lab[verifier], run_seed=1, confirm=lab["clip"]))
    assert len(first.candidates) >= 6 and _same(first.candidates, again.candidates)
    assert first.rounds == again.rounds
    assert not torch.equal(first.candidates[0].image, other.candidates[0].image)
    metric = lab[verifier].metrics[0]
    assert all(metric in c.scores for c in first.candidates)
    if name != "rounds":
        assert all(c.score == c.scores[metric] for c in first.candidates)


@pytest.mark.parametrize("name", ["random_search", "rounds", "adaptive"])
def test_black_box_generators_give_the_same_candidates(lab: dict[str, Any], name: str) -> None:
    gen: LabGenerator = lab["generator"]
    black_box = CallableGenerator(gen.sample, name="api", nfe_per_sample=gen.nfe_per_sample())
    strategy = _strategies(lab)[name]
    result = strategy(s := _search(black_box, lab["visa"], confirm=lab["clip"]))
    _check_result(s, result)
    assert _same(result.candidates, strategy(_search(gen, lab["visa"], confirm=lab["clip"])).candidates)


def test_zero_order_refuses_black_box_generators(lab: dict[str, Any]) -> None:
    gen: LabGenerator = lab["generator"]
    black_box = CallableGenerator(gen.sample, name="api", nfe_per_sample=gen.nfe_per_sample())
    search = _search(black_box, lab["visa"])
    with pytest.raises(TTScaleError, match="step access"):
        zero_order(search)
    assert search.meter.spent.nfe == 0


# ---------------------------------------------------------------- random search


def test_random_search_pools_double_with_fresh_seeds(lab: dict[str, Any]) -> None:
    search = _search(lab["generator"], lab["visa"], batch_size=3)
    result = random_search(search, RandomParams(rounds=4))
    assert [r.pool for r in result.rounds] == [1, 2, 4, 8]
    assert [c.seed for c in result.candidates] == [search.seed(j) for j in range(15)]
    assert [c.round for c in result.candidates] == [0, 1, 1, 2, 2, 2, 2, *[3] * 8]
    for r, record in enumerate(result.rounds):
        pool = [c.score for c in result.candidates if c.round == r]
        seen = [c.score for c in result.candidates if c.round <= r]
        assert record.extra["best_of_round"] == max(pool) and record.best == max(seen)
        assert not record.extra["partial"]


def test_random_search_ends_with_a_partial_round_the_budget_pays(lab: dict[str, Any]) -> None:
    search = _search(lab["generator"], lab["visa"], Budget(nfe=NFE * 10 + NFE - 1))
    result = random_search(search)
    assert [r.pool for r in result.rounds] == [1, 2, 4, 3]
    assert [r.extra["partial"] for r in result.rounds] == [False, False, False, True]
    assert search.meter.spent.nfe == NFE * 10
    with pytest.raises(TTScaleError, match="budget"):
        random_search(_search(lab["generator"], lab["visa"]))


# ---------------------------------------------------------------- rounds with a confirming verifier


def _rank_norm(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = rank / (len(values) - 1) if len(values) > 1 else 1.0
    return out


@pytest.mark.parametrize("weight", [0.5, 1.0, 0.0])
def test_rounds_confirms_the_top_and_ranks_them_first(lab: dict[str, Any], weight: float) -> None:
    search = _search(lab["generator"], lab["visa"], confirm=lab["clip"])
    result = rounds(search, RoundsParams(rounds=2, samples=5, confirm=lab["clip_path"], top=3, weight=weight))
    assert [r.pool for r in result.rounds] == [5, 5]
    assert [r.extra["confirmed"] for r in result.rounds] == [3, 3]
    assert search.meter.spent.verifier_calls == 10 + 6
    assert [c.seed for c in result.candidates] == [search.seed(j) for j in range(10)]
    for r in range(2):
        pool = [c for c in result.candidates if c.round == r]
        by_main = sorted(pool, key=lambda c: -c.scores["yes_prob"])
        confirmed, rest = by_main[:3], by_main[3:]
        assert all("clip_score" in c.scores for c in confirmed) and not any("clip_score" in c.scores for c in rest)
        main = _rank_norm([c.scores["yes_prob"] for c in confirmed])
        check = _rank_norm([c.scores["clip_score"] for c in confirmed])
        for c, m, v in zip(confirmed, main, check, strict=True):
            assert c.score == c.scores["combined"] == pytest.approx(weight * m + (1 - weight) * v)
            assert 0.0 <= c.score <= 1.0
        assert all(c.score == c.scores["combined"] < -1.0 + 1e-9 for c in rest)
        assert [c.score for c in rest] == sorted((c.score for c in rest), reverse=True)
    kept = rank_and_keep(result.candidates, 6)
    assert all("clip_score" in c.scores for c in kept)


def test_rounds_without_confirm_is_plain_rounds(lab: dict[str, Any]) -> None:
    search = _search(lab["generator"], lab["clip"])
    result = rounds(search, RoundsParams(rounds=3, samples=2))
    assert [r.pool for r in result.rounds] == [2, 2, 2]
    assert all(c.score == c.scores["clip_score"] and "combined" not in c.scores for c in result.candidates)
    assert search.meter.spent.verifier_calls == 6
    # the same judge as confirmer keeps both readings apart
    params = RoundsParams(rounds=1, samples=2, confirm=lab["visa_path"], top=1)
    same = rounds(_search(lab["generator"], lab["visa"], confirm=lab["visa"]), params)
    confirmed = max(same.candidates, key=lambda c: c.scores["yes_prob"])
    assert confirmed.scores["confirm_yes_prob"] == pytest.approx(confirmed.scores["yes_prob"], abs=1e-6)
    assert confirmed.score == confirmed.scores["combined"] == 1.0


def test_rounds_budget_pays_the_confirmations_too(lab: dict[str, Any]) -> None:
    # 3 samples + 2 confirmations a round: 13 calls pay two full rounds (10) and a last round of 1 sample (+1)
    search = _search(lab["generator"], lab["visa"], Budget(verifier_calls=13), confirm=lab["clip"])
    result = rounds(search, RoundsParams(rounds=10, samples=3, confirm=lab["clip_path"], top=2))
    assert [r.pool for r in result.rounds] == [3, 3, 1]
    assert [r.extra["confirmed"] for r in result.rounds] == [2, 2, 1]
    assert search.meter.spent.verifier_calls == 12
    assert result.rounds[-1].verifier_calls == 12


# ---------------------------------------------------------------- zero-order


def _recreate(gen: LabGenerator, c: Candidate, upto: int | None = None) -> torch.Tensor:
    """The candidate's initial noise, re-created from its seed and path (the first `upto` steps)."""
    x = gen.noise([c.seed])
    for op, _round, seed, similarity in c.path[:upto]:
        assert op == "perturb"
        x = similarity * x + math.sqrt(1 - similarity**2) * gaussian([seed], tuple(x.shape[1:])).to(x.device)
    return x


@pytest.mark.parametrize("similarity", [0.95, 0.6])
def test_zero_order_neighbours_sit_at_the_asked_similarity(lab: dict[str, Any], similarity: float) -> None:
    gen: LabGenerator = lab["generator"]
    search = _search(gen, lab["visa"])
    result = zero_order(search, ZeroOrderParams(rounds=4, neighbours=3, similarity=similarity))
    assert [r.pool for r in result.rounds] == [4, 3, 3, 3]
    assert all(c.seed == search.seed(0) for c in result.candidates)
    assert result.candidates[0].path == []
    perturb_seeds = [c.path[-1][2] for c in result.candidates[1:]]
    assert perturb_seeds == [search.seed(j, stream="perturb") for j in range(12)]
    for c in result.candidates[1:]:
        assert len(c.path) >= 1 and c.path[-1][1] == c.round
        x, centre = _recreate(gen, c), _recreate(gen, c, upto=-1)
        cosine = float(torch.nn.functional.cosine_similarity(x.flatten(), centre.flatten(), dim=0))
        assert cosine == pytest.approx(similarity, abs=0.05)
        assert float(x.std()) == pytest.approx(1.0, abs=0.05)
    # a candidate's image is re-created from its seed and path
    c = result.candidates[-1]
    cond = gen.encode(PROMPT)
    image = gen.decode(sample(lambda x, i: gen.denoise(x, i, cond), _recreate(gen, c), gen.schedule()))[0]
    assert torch.allclose(image, c.image, atol=1e-5)


def test_zero_order_moves_only_when_a_neighbour_beats_the_centre(lab: dict[str, Any]) -> None:
    search = _search(lab["generator"], lab["clip"])
    result = zero_order(search, ZeroOrderParams(rounds=6, neighbours=2))
    best = result.candidates[0].score  # the starting centre
    centre: list[Any] = []
    for r, record in enumerate(result.rounds):
        pool = [c for c in result.candidates if c.round == r]
        assert all(c.path[:-1] == centre for c in pool if c.path)  # neighbours of the current centre
        top = max(pool, key=lambda c: c.score)
        improved = top.score > best
        assert record.extra["outcome"] == ("improved" if improved else "no improvement")
        if improved:
            best, centre = top.score, top.path
        assert record.best == best and record.extra["centre"] == centre
    assert best == max(c.score for c in result.candidates)


# ---------------------------------------------------------------- adaptive


@pytest.mark.parametrize("verifier", ["visa", "clip"])
def test_adaptive_never_stops_early_above_one(lab: dict[str, Any], verifier: str) -> None:
    search = _search(lab["generator"], lab[verifier])
    result = adaptive(search, AdaptiveParams(threshold=1.5, batch=4, max_n=10))
    assert [r.pool for r in result.rounds] == [4, 4, 2]
    assert [r.extra["stop"] for r in result.rounds] == [None, None, "max_n"]
    assert not any(r.extra["confident"] for r in result.rounds)
    budgeted_search = _search(lab["generator"], lab[verifier], Budget(nfe=NFE * 6))
    budgeted = adaptive(budgeted_search, AdaptiveParams(threshold=1.5, batch=4))
    assert [r.pool for r in budgeted.rounds] == [4, 2] and budgeted.rounds[-1].extra["stop"] == "budget"


def test_adaptive_stops_once_confident(lab: dict[str, Any]) -> None:
    search = _search(lab["generator"], lab["visa"])
    result = adaptive(search, AdaptiveParams(threshold=0.0, batch=3, max_n=30))  # yes-probabilities are >= 0
    assert len(result.rounds) == 1 and len(result.candidates) == 3  # so one batch is enough
    assert result.rounds[0].extra["stop"] == "confident" and result.rounds[0].extra["confident"]
    assert search.meter.spent.nfe == 3 * NFE
    # a threshold first reached in batch k stops right after batch k
    full = adaptive(_search(lab["generator"], lab["visa"]), AdaptiveParams(threshold=2.0, batch=2, max_n=16))
    bests = [r.best for r in full.rounds]
    k = bests.index(bests[-1])
    assert k > 0  # the best of these seeds is not in the first batch, so the stop is a real early stop
    early = adaptive(_search(lab["generator"], lab["visa"]), AdaptiveParams(threshold=bests[-1], batch=2, max_n=16))
    assert [r.extra["stop"] for r in early.rounds] == [None] * k + ["confident"]
    assert _same(early.candidates, full.candidates[: 2 * (k + 1)])
