"""Step-level strategies (search over paths, particle filter, early pruning) on tiny random lab models:
budgets, determinism, both verifiers, black-box refusal, and what each method does to the trajectories."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ttscale.budget import Budget, Meter
from ttscale.errors import TTScaleError
from ttscale.generator import CallableGenerator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.samplers import sample, step
from ttscale.search import Search, SearchResult
from ttscale.seeds import gaussian
from ttscale.strategies.particles import Params as ParticleParams
from ttscale.strategies.particles import particle_filter, systematic_resample
from ttscale.strategies.paths import Params as PathParams
from ttscale.strategies.paths import search_over_paths
from ttscale.strategies.pruning import Params as PruningParams
from ttscale.strategies.pruning import early_pruning
from ttscale.verifier import Verifier

PROMPT = prompt_suite("test")[0]["prompt"]
STEPS = 4  # the `gen` fixture's steps (conftest.py)
PER_SAMPLE = STEPS * 2  # CFG: two NFEs per step
SMALL: dict[str, tuple[Callable[[Search, Any], SearchResult], Any]] = {
    "paths": (search_over_paths, PathParams(n=4, keep=2, width=2)),
    "particles": (particle_filter, ParticleParams(particles=4, resample_every=1)),
    "pruning": (early_pruning, PruningParams(n=6, keep=2)),
}
budgets = st.one_of(st.none(), st.integers(0, 80))
call_budgets = st.one_of(st.none(), st.integers(0, 20))


@pytest.fixture(scope="module")
def clip(tiny_models: dict[str, Path]) -> LabVerifier:
    return LabVerifier.from_pretrained(str(tiny_models["clip"]))


def searcher(
    gen: Any,
    ver: LabVerifier,
    budget: Budget | None = None,
    run_seed: int = 0,
    judges: dict[str, Verifier] | None = None,
) -> Search:
    # batch_size 3 makes every strategy cut its pools into uneven chunks
    meter = Meter(budget or Budget())
    return Search.metered(gen, ver, meter, PROMPT, judges, prompt_index=0, run_seed=run_seed, batch_size=3)


def assert_within(search: Search) -> tuple[int, int]:
    """Spend never exceeds the budget; returns what is left (a large number where unlimited)."""
    b, s = search.meter.budget, search.meter.spent
    left_nfe = (1 << 30) if b.nfe is None else b.nfe - s.nfe
    left_calls = (1 << 30) if b.verifier_calls is None else b.verifier_calls - s.verifier_calls
    assert left_nfe >= 0 and left_calls >= 0
    return left_nfe, left_calls


def assert_complete(result: SearchResult) -> None:
    for c in result.candidates:
        assert c.image.shape == (3, 32, 32) and c.image.device.type == "cpu"
        assert float(c.image.min()) >= 0.0 and float(c.image.max()) <= 1.0
        assert c.nfe == PER_SAMPLE and math.isfinite(c.score)
    assert all(line["nfe"] >= 0 and "best" in line and "pool" in line for line in (r.line() for r in result.rounds))


# ---------------------------------------------------------------- shared contract, all three strategies


@pytest.mark.parametrize("name", list(SMALL))
def test_deterministic_under_a_seed(name: str, gen: LabGenerator, visa: LabVerifier) -> None:
    fn, params = SMALL[name]
    a, b = fn(searcher(gen, visa), params), fn(searcher(gen, visa), params)
    other = fn(searcher(gen, visa, run_seed=1), params)
    assert len(a.candidates) == len(b.candidates) > 0
    for x, y in zip(a.candidates, b.candidates, strict=True):
        assert torch.equal(x.image, y.image) and x.scores == y.scores and x.path == y.path and x.seed == y.seed
    assert a.rounds == b.rounds
    assert not torch.equal(a.candidates[0].image, other.candidates[0].image)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("verifier", ["visa", "clip"])
def test_works_with_both_lab_verifiers(
    name: str, verifier: str, gen: LabGenerator, visa: LabVerifier, clip: LabVerifier
) -> None:
    fn, params = SMALL[name]
    ver = visa if verifier == "visa" else clip
    result = fn(searcher(gen, ver), params)
    assert_complete(result)
    metric = ver.metrics[0]
    assert result.candidates and all(set(c.scores) == {metric} for c in result.candidates)
    assert all(c.score == c.scores[metric] for c in result.candidates)
    again = ver.score(torch.stack([c.image for c in result.candidates]), [PROMPT] * len(result.candidates))
    assert torch.allclose(again[metric], torch.tensor([c.score for c in result.candidates]), atol=1e-5)


@pytest.mark.parametrize("name", list(SMALL))
def test_black_box_generators_are_refused(name: str, gen: LabGenerator, visa: LabVerifier) -> None:
    fn, params = SMALL[name]
    black_box = CallableGenerator(gen.sample, name="api", nfe_per_sample=PER_SAMPLE)
    search = searcher(black_box, visa, Budget(nfe=1000))
    with pytest.raises(TTScaleError, match="step access"):
        fn(search, params)
    assert search.meter.spent.nfe == 0


# ---------------------------------------------------------------- search over paths


def test_paths_branch_keep_times_width_and_recreate_from_their_path(gen: LabGenerator, visa: LabVerifier) -> None:
    search = searcher(gen, visa)
    result = search_over_paths(search, PathParams(n=5, keep=2, width=3))
    assert_complete(result)
    assert len(result.candidates) == 2 * 3
    branch_steps = [r.step for r in result.rounds[:-1]]
    assert branch_steps == [1, 2]  # the default for 4 steps
    assert [r.pool for r in result.rounds] == [5, 6, 6]
    # NFEs: 5 noises to step 1, the look-ahead at each branch step, then every child's own steps
    assert search.meter.spent.nfe == (5 * 1 + 5 + 6 * 0 + 6 + 6 * 1) * 2
    assert search.meter.spent.verifier_calls == 5 + 6 + 6
    images = torch.stack([c.image for c in result.candidates])
    assert len({c.image.numpy().tobytes() for c in result.candidates}) == 6  # children diverge
    assert all([e[0] for e in c.path] == ["branch", "branch"] for c in result.candidates)

    cond, sched = gen.encode(PROMPT), gen.schedule()
    for j, cand in enumerate(result.candidates):
        x = gen.noise([cand.seed])
        i = 0
        for _, at, seed in cand.path:
            x = sample(lambda y, t: gen.denoise(y, t, cond), x, sched, start=i, stop=at)
            x = step(x, gen.denoise(x, at, cond), sched, at, eta=1.0, noise=gaussian([seed], gen.shape))
            i = at + 1
        x = sample(lambda y, t: gen.denoise(y, t, cond), x, sched, start=i)
        assert torch.allclose(gen.decode(x)[0], images[j], atol=1e-5)


def test_paths_explicit_branch_steps_are_checked(gen: LabGenerator, visa: LabVerifier) -> None:
    with pytest.raises(TTScaleError, match="branch_at"):
        search_over_paths(searcher(gen, visa), PathParams(branch_at=(3,)))
    with pytest.raises(ValidationError, match="branch_at"):
        PathParams(branch_at=(2, 1))
    result = search_over_paths(searcher(gen, visa), PathParams(n=3, keep=1, width=2, branch_at=(0,)))
    assert len(result.candidates) == 2 and all(c.path[0][:2] == ["branch", 0] for c in result.candidates)


@settings(max_examples=15, deadline=None)
@given(
    nfe=budgets,
    calls=call_budgets,
    shape=st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)),
    branch_at=st.sampled_from([None, (0,), (0, 2), (1,)]),
)
def test_paths_budget(
    nfe: int | None,
    calls: int | None,
    shape: tuple[int, int, int],
    branch_at: tuple[int, ...] | None,
    gen: LabGenerator,
    visa: LabVerifier,
) -> None:
    n, keep, width = shape
    params = PathParams(n=n, keep=keep, width=width, branch_at=branch_at)
    unlimited = searcher(gen, visa)
    search_over_paths(unlimited, params)
    full = (unlimited.meter.spent.nfe, unlimited.meter.spent.verifier_calls)
    budget = Budget(nfe=nfe, verifier_calls=calls)
    search = searcher(gen, visa, budget)
    result = search_over_paths(search, params)
    left_nfe, left_calls = assert_within(search)
    assert_complete(result)
    spent = (search.meter.spent.nfe, search.meter.spent.verifier_calls)
    if Meter(budget).affords(nfe=full[0], verifier_calls=full[1]):
        assert spent == full
    else:  # the budget binds: not even one more full sample would have fitted
        assert left_nfe < PER_SAMPLE or left_calls < 1
    if Meter(budget).affords(nfe=PER_SAMPLE, verifier_calls=1):
        assert result.candidates


# ---------------------------------------------------------------- particle filter


@settings(max_examples=40, deadline=None)
@given(
    raw=st.lists(st.integers(0, 20), min_size=1, max_size=16).filter(lambda w: sum(w) > 0),
    seed=st.integers(0, 2**63 - 1),
)
def test_systematic_resampling_counts_are_floor_or_ceil(raw: list[int], seed: int) -> None:
    w = torch.tensor(raw, dtype=torch.float64) / sum(raw)
    u = float(torch.rand((), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    parents = systematic_resample(w, u)
    n = len(raw)
    assert parents.shape == (n,) and torch.equal(parents, systematic_resample(w, u))
    assert bool((parents[1:] >= parents[:-1]).all())
    counts = torch.bincount(parents, minlength=n)
    for j in range(n):
        assert math.floor(n * float(w[j]) - 1e-9) <= int(counts[j]) <= math.ceil(n * float(w[j]) + 1e-9)
    assert all(int(counts[j]) == 0 for j in range(n) if raw[j] == 0)


def test_resampled_copies_diverge_with_a_stochastic_sampler(gen: LabGenerator, visa: LabVerifier) -> None:
    def run(eta: float) -> SearchResult:
        params = ParticleParams(particles=6, resample_every=2, ess_threshold=1.0, temperature=1e4, eta=eta)
        return particle_filter(searcher(gen, visa), params)

    for eta in (1.0, 0.0):
        result = run(eta)
        assert result.rounds[0].step == 2 and result.rounds[0].extra["resampled"]
        assert result.rounds[0].extra["ess"] < 6
        parents = [c.path[0][2] for c in result.candidates]
        assert all(c.path[0][:2] == ["resample", 2] for c in result.candidates)
        twins = [(a, b) for a in range(6) for b in range(a + 1, 6) if parents[a] == parents[b]]
        assert twins  # a temperature this high leaves a few parents many children
        for a, b in twins:
            same = torch.equal(result.candidates[a].image, result.candidates[b].image)
            assert same == (eta == 0.0)  # the flow ODE alone would keep the copies identical


@pytest.mark.parametrize("potential", ["max", "sum", "diff"])
def test_particles_recreate_from_seed_path_and_sde_stream(potential: str, gen: LabGenerator, visa: LabVerifier) -> None:
    search = searcher(gen, visa)
    params = ParticleParams.model_validate(
        {"particles": 5, "resample_every": 1, "ess_threshold": 1.0, "potential": potential}
    )
    result = particle_filter(search, params)
    assert_complete(result)
    assert [r.step for r in result.rounds] == [1, 2, 4]  # look-aheads at steps 1 and 2, never at the last
    assert search.meter.spent.nfe == 5 * PER_SAMPLE and search.meter.spent.verifier_calls == 5 * 3
    cond, sched, count = gen.encode(PROMPT), gen.schedule(), len(result.candidates)
    for q, cand in enumerate(result.candidates):
        x = gen.noise([cand.seed])
        for i in range(STEPS):
            slot = next((parent for _, at, parent in cand.path if at > i), q)
            noise = gaussian([search.seed(i * count + slot, "sde")], gen.shape)
            x = step(x, gen.denoise(x, i, cond), sched, i, eta=1.0, noise=noise)
        assert torch.allclose(gen.decode(x)[0], cand.image, atol=1e-5)


def test_particle_filter_rejects_an_unknown_potential() -> None:
    with pytest.raises(ValidationError, match="potential"):
        ParticleParams.model_validate({"potential": "nope"})


def particle_cost(p: int, checks: int) -> tuple[int, int]:
    return p * PER_SAMPLE, p * (1 + (checks if p > 1 else 0))


@settings(max_examples=15, deadline=None)
@given(nfe=budgets, calls=call_budgets)
def test_particles_budget(nfe: int | None, calls: int | None, gen: LabGenerator, visa: LabVerifier) -> None:
    search = searcher(gen, visa, Budget(nfe=nfe, verifier_calls=calls))
    result = particle_filter(search, ParticleParams(particles=8, resample_every=2))  # one look-ahead (step 2) each
    assert_within(search)
    assert_complete(result)
    count = len(result.candidates)
    assert (search.meter.spent.nfe, search.meter.spent.verifier_calls) == particle_cost(count, 1)
    if count < 8:  # the budget binds: one more particle would not have fitted
        more_nfe, more_calls = particle_cost(count + 1, 1)
        assert not Meter(Budget(nfe=nfe, verifier_calls=calls)).affords(nfe=more_nfe, verifier_calls=more_calls)


# ---------------------------------------------------------------- early pruning


def test_pruning_finishes_exactly_keep_of_the_best_look_aheads(
    gen: LabGenerator, visa: LabVerifier, clip: LabVerifier, tiny_models: dict[str, Path]
) -> None:
    search = searcher(gen, visa, judges={"cheap_verifier": clip})
    result = early_pruning(search, PruningParams(n=7, at=0.5, keep=3, cheap_verifier=str(tiny_models["clip"])))
    assert_complete(result)
    assert len(result.candidates) == 3
    assert [c.path for c in result.candidates] == [[["pruned_at", 2, r]] for r in range(3)]
    assert search.meter.spent.nfe == (7 * 3 + 3 * 1) * 2 and search.meter.spent.verifier_calls == 7 + 3
    assert result.rounds[0].extra["verifier"] == str(tiny_models["clip"])
    assert all(set(c.scores) == {"yes_prob"} for c in result.candidates)  # the finished ones by the main verifier
    # the kept ones are the best three look-aheads of the cheap verifier, finished deterministically
    cheap = LabVerifier.from_pretrained(str(tiny_models["clip"]))
    seeds = [search.seed(j) for j in range(7)]
    cond, sched = gen.encode(PROMPT), gen.schedule()
    x = sample(lambda y, t: gen.denoise(y, t, cond), gen.noise(seeds), sched, stop=2)
    look = cheap.score(gen.decode(gen.denoise(x, 2, cond)), [PROMPT] * 7)["clip_score"]
    assert [c.seed for c in result.candidates] == [seeds[j] for j in look.argsort(descending=True)[:3].tolist()]
    plain = gen.sample(PROMPT, [c.seed for c in result.candidates])
    assert torch.allclose(plain, torch.stack([c.image for c in result.candidates]), atol=1e-5)


def pruning_cost(started: int, kept: int, look_at: int = 1) -> tuple[int, int]:
    if started <= kept:
        return started * PER_SAMPLE, started
    return (started * (look_at + 1) + kept * (STEPS - look_at - 1)) * 2, started + kept


@settings(max_examples=15, deadline=None)
@given(nfe=budgets, calls=call_budgets)
def test_pruning_budget(nfe: int | None, calls: int | None, gen: LabGenerator, visa: LabVerifier) -> None:
    budget = Budget(nfe=nfe, verifier_calls=calls)
    search = searcher(gen, visa, budget)
    result = early_pruning(search, PruningParams(n=6, keep=2))  # look-ahead at step round(0.3 * 4) = 1
    assert_within(search)
    assert_complete(result)
    kept = len(result.candidates)
    started = result.rounds[0].pool if len(result.rounds) == 2 else kept
    assert (search.meter.spent.nfe, search.meter.spent.verifier_calls) == pruning_cost(started, kept)
    if Meter(budget).affords(nfe=PER_SAMPLE, verifier_calls=1):
        assert kept >= 1
    if kept == 2 and started < 6:  # the budget binds: one more started candidate would not have fitted
        more_nfe, more_calls = pruning_cost(started + 1, 2)
        assert not Meter(budget).affords(nfe=more_nfe, verifier_calls=more_calls)
    if kept < 2:  # not even `keep` plain samples fitted
        assert not Meter(budget).affords(nfe=2 * PER_SAMPLE, verifier_calls=2)
