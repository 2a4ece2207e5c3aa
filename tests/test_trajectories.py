"""Trajectories: stopping, looking ahead, re-indexing and stepping change no row's numbers, so a row is the
plain run of its seed until a strategy moves it with noise of its own."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.budget import Budget, Meter
from ttscale.lab.generator import LabGenerator
from ttscale.lab.verifiers import LabVerifier
from ttscale.search import Search

STEPS = 4  # the `gen` fixture's steps (conftest.py)
PROMPT = "a photo of a red circle above a blue square"


@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 5), stop=st.integers(0, STEPS - 1))
def test_stopping_and_stepping_by_the_look_ahead_is_the_plain_run(
    gen: LabGenerator, visa: LabVerifier, batch: int, stop: int
) -> None:
    search = Search.metered(gen, visa, Meter(Budget()), PROMPT, batch_size=batch)
    seeds = [search.seed(j) for j in range(5)]
    start = search.trajectories(seeds)
    halfway = start.advance(stop)
    done = halfway.step(halfway.lookahead()).advance(STEPS)
    assert done.at == STEPS and start.at == 0 and halfway.at == stop  # earlier values stay as they were
    plain = start.advance(STEPS)
    assert torch.equal(done.x, plain.x) and done.seeds == plain.seeds == tuple(seeds)
    assert torch.allclose(done.decode(), gen.sample(PROMPT, seeds), atol=1e-5)
    assert search.meter.spent.nfe == 2 * STEPS * 5 * gen.nfe_per_call  # the look-ahead is the step's own NFE


def test_take_moves_x_seeds_and_paths_together(gen: LabGenerator, visa: LabVerifier) -> None:
    search = Search.metered(gen, visa, Meter(Budget()), PROMPT, batch_size=3)
    t = search.trajectories([search.seed(j) for j in range(4)]).advance(2)
    rows = [3, 1, 1]
    taken = t.take(rows, ops=[["mark", 2, k] for k in range(3)])
    assert taken.seeds == tuple(t.seeds[j] for j in rows)
    assert taken.paths == ([["mark", 2, 0]], [["mark", 2, 1]], [["mark", 2, 2]]) and t.paths == ([], [], [], [])
    assert torch.equal(taken.x, t.x[rows])
    finished, alone = taken.advance(STEPS), t.advance(STEPS)
    assert torch.allclose(finished.x, alone.x[rows], atol=1e-6)  # a copied row goes on as its original


def test_a_stochastic_step_needs_its_noise_and_moves_the_row_off_its_plain_run(
    gen: LabGenerator, visa: LabVerifier
) -> None:
    search = Search.metered(gen, visa, Meter(Budget()), PROMPT)
    t = search.trajectories([search.seed(0)]).advance(1)
    x0 = t.lookahead()
    with pytest.raises(ValueError, match="noise"):
        t.step(x0, eta=1.0)
    moved = t.step(x0, eta=1.0, noise=torch.randn_like(t.x)).advance(STEPS)
    assert not torch.allclose(moved.x, t.advance(STEPS).x)
