"""Samplers, seeds and the budget meter."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.budget import Budget, BudgetExceeded, Meter, count_flops
from ttscale.generator import Schedule
from ttscale.samplers import ddpm_schedule, flow_schedule, sample, seed_noise, step
from ttscale.seeds import SeedStreams, candidate_seed, gaussian


def test_flow_step_is_euler_on_the_velocity() -> None:
    torch.manual_seed(0)
    sched = flow_schedule(10)
    x, x0 = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t, t2 = sched.t[3], sched.t[4]
    v = (x - x0) / t  # velocity implied by the x0 estimate (noise - image)
    assert torch.allclose(step(x, x0, sched, 3), x + (t2 - t) * v, atol=1e-6)


def test_ddpm_step_is_ddim() -> None:
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    sched = ddpm_schedule(ac, 20)
    x, x0 = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    a, a2 = ac[int(sched.t[5])], ac[int(sched.t[6])]
    eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
    assert torch.allclose(step(x, x0, sched, 5), a2.sqrt() * x0 + (1 - a2).sqrt() * eps, atol=1e-5)


def test_perfect_denoiser_recovers_the_image_and_stochastic_steps_keep_marginals() -> None:
    torch.manual_seed(0)
    target = torch.randn(1, 3, 4, 4)
    sched = flow_schedule(8)
    out = sample(lambda x, i: target.expand_as(x), torch.randn(5, 3, 4, 4), sched)
    assert torch.allclose(out, target.expand(5, -1, -1, -1), atol=1e-5)
    # With eta = 1 and an exact x0, x at each grid point stays distributed as alpha*x0 + sigma*N(0, 1).
    x = torch.randn(20000, 1)
    x0 = torch.zeros(20000, 1)
    for i in range(4):
        x = step(x, x0, sched, i, eta=1.0, noise=torch.randn(20000, 1))
    assert abs(float(x.std()) - float(sched.sigma[4])) < 0.02


def test_candidate_seed_is_stable_and_distinct() -> None:
    assert candidate_seed(0, 0, 0) == candidate_seed(0, 0, 0)
    seeds = {candidate_seed(s, p, c) for s in range(3) for p in range(10) for c in range(10)}
    assert len(seeds) == 300 and all(0 <= x < 2**63 for x in seeds)
    a = gaussian([1, 2], (3, 4, 4))
    assert torch.equal(a[1], gaussian([2], (3, 4, 4))[0])


def test_consistency_steps_renoise_with_each_seeds_later_draws() -> None:
    """A consistency step is x0 re-noised with fresh noise, which `seed_noise` takes from the seed's stream
    after its initial noise: the draws one `torch.Generator` per seed makes, in order."""
    rng = torch.Generator().manual_seed(5)
    draws = [torch.randn((2, 3), generator=rng) for _ in range(3)]
    assert all(torch.equal(gaussian([5], (2, 3), draw=k)[0], draws[k]) for k in range(3))
    t = torch.tensor([1.5, 0.7, 0.0])
    sched = Schedule(t=t, alpha=torch.cos(t), sigma=torch.sin(t), solver="consistency")
    x, x0 = gaussian([5], (2, 3)), torch.ones(1, 2, 3)
    noise = seed_noise([5], x)
    assert torch.equal(noise(1)[0], draws[2])
    assert torch.allclose(step(x, x0, sched, 0, noise=noise(0)), sched.alpha[1] * x0 + sched.sigma[1] * draws[1])
    assert torch.equal(step(x, x0, sched, 1), x0)  # onto the clean grid point: no noise needed
    with pytest.raises(ValueError, match="fresh noise"):
        step(x, x0, sched, 0)
    assert torch.equal(sample(lambda y, i: x0, x, sched, noise=noise), x0)


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(0, 200), charges=st.lists(st.integers(0, 50), max_size=20))
def test_meter_never_goes_over(limit: int, charges: list[int]) -> None:
    meter = Meter(Budget(nfe=limit))
    for c in charges:
        if meter.affords(nfe=c):
            meter.charge(nfe=c)
        else:
            with pytest.raises(BudgetExceeded):
                meter.charge(nfe=c)
        assert meter.spent.nfe <= limit


@settings(max_examples=50, deadline=None)
@given(
    scores=st.lists(st.one_of(st.floats(-5, 5), st.just(float("nan"))), min_size=1, max_size=12), k=st.integers(1, 4)
)
def test_rank_and_keep_puts_nan_last_and_keeps_the_best(scores: list[float], k: int) -> None:
    from ttscale.candidate import Candidate, rank_and_keep

    cands = [Candidate(seed=i, image=torch.zeros(3, 2, 2), scores={}, score=s, nfe=1) for i, s in enumerate(scores)]
    kept = rank_and_keep(cands, k)
    assert len(kept) == min(k, len(scores)) and all(c.kept for c in kept)
    ranked = sorted(cands, key=lambda c: c.rank)
    finite = [c.score for c in ranked if c.score == c.score]
    assert finite == sorted(finite, reverse=True)
    assert [c.score == c.score for c in ranked] == sorted((c.score == c.score for c in ranked), reverse=True)


@settings(max_examples=20, deadline=None)
@given(heads=st.sampled_from([(4, 4), (8, 2), (6, 1)]), q_len=st.integers(1, 12), kv_len=st.integers(1, 12))
def test_count_flops_counts_attention_on_the_cpu_and_with_grouped_query_heads(
    heads: tuple[int, int], q_len: int, kv_len: int
) -> None:
    """torch's counter alone sees fused CPU attention as 0 FLOPs and fails on grouped-query heads."""
    q_heads, kv_heads, dim = *heads, 16
    q = torch.randn(2, q_heads, q_len, dim)
    k, v = torch.randn(2, kv_heads, kv_len, dim), torch.randn(2, kv_heads, kv_len, dim)
    flops = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    assert flops == 2 * (2 * 2 * q_heads * q_len * kv_len * dim)  # Q K^T and the weights times V


@settings(max_examples=30, deadline=None)
@given(
    order=st.lists(st.integers(0, 6), min_size=1, max_size=8),
    seeds=st.lists(st.integers(0, 2**40), min_size=1, max_size=3),
)
def test_kept_streams_give_gaussians_draws_in_any_order(order: list[int], seeds: list[int]) -> None:
    """Forward reads (a sampler's steps) continue the open streams, a backward one re-opens them: same numbers."""
    streams = SeedStreams(seeds, (2, 3))
    for k in order:
        torch.testing.assert_close(streams.draw(k), gaussian(seeds, (2, 3), draw=k), rtol=0, atol=0)
