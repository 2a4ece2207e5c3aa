"""Best-of-n curves and ranking quality from one pool of candidates per prompt."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.curves import Pool, bootstrap_curve, exact_prefix_curve, ranking_auc

TAGS = ["single_object", "counting"]


@st.composite
def pools(draw: st.DrawFn, size: int = 8) -> Pool:
    prompts = draw(st.integers(1, 6))
    tags = [TAGS[draw(st.integers(0, 1))] for _ in range(prompts)]
    correct = [np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))) for _ in range(prompts)]
    scores = [np.array(draw(st.lists(st.floats(0, 1), min_size=size, max_size=size))) for _ in range(prompts)]
    return Pool(tags, scores, correct)


@settings(max_examples=60, deadline=None)
@given(pools())
def test_prefix_curve_is_bounded_by_its_oracle_which_only_grows(pool: Pool) -> None:
    rows = exact_prefix_curve(pool, [1, 2, 4, 8])
    assert rows[0]["overall"] == rows[0]["oracle"]  # best-of-1 is the first candidate
    for a, b in itertools.pairwise(rows):
        assert a["oracle"] <= b["oracle"]
    assert all(r["overall"] <= r["oracle"] + 1e-12 for r in rows)


@settings(max_examples=60, deadline=None)
@given(pools())
def test_a_verifier_that_knows_the_answer_scores_the_oracle_and_ranks_perfectly(pool: Pool) -> None:
    oracle_pool = Pool(pool.tags, [c.astype(float) for c in pool.correct], pool.correct)
    for row in exact_prefix_curve(oracle_pool, [1, 4, 8]):
        assert row["overall"] == row["oracle"]
    assert all(v == 1.0 for v in ranking_auc(oracle_pool).values())
    reversed_pool = Pool(pool.tags, [-c.astype(float) for c in pool.correct], pool.correct)
    assert all(v == 0.0 for v in ranking_auc(reversed_pool).values())


@settings(max_examples=30, deadline=None)
@given(pools())
def test_bootstrap_interval_holds_its_mean(pool: Pool) -> None:
    for row in bootstrap_curve(pool, [1, 4, 8], draws=20):
        assert row["low"] - 1e-12 <= row["overall"] <= row["high"] + 1e-12


def test_ranking_auc_skips_prompts_without_a_ranking_and_counts_ties_half() -> None:
    pool = Pool(
        ["single_object", "single_object", "counting"],
        [np.array([0.5, 0.5, 0.5]), np.array([0.9, 0.1, 0.3]), np.array([0.2, 0.8])],
        [np.array([True, False, False]), np.array([True, True, False]), np.array([True, True])],
    )
    # prompt 1: all tied -> 0.5; prompt 2: the wrong one (0.3) is above one right one (0.1) -> 0.5; prompt 3: skipped
    assert ranking_auc(pool) == {"single_object": 0.5}
