"""Every strategy's candidates re-create from their records: a finished run's stored PNGs, recomputed.

The runs go through `ttscale.runner.run` with the shipped lab-small and lab-visa at four steps, so the
verifier really ranks, the particle filter really resamples and search over paths really branches; then each
stored candidate PNG is compared with `ttscale.recreate`'s image of its record.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.folder import read_jsonl
from ttscale.images import load_image, to_uint8
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.recreate import RunContext, recreate, recreate_candidate
from ttscale.runner import run
from ttscale.seeds import candidate_seed

STEPS = 4
RUN_SEED = 1
PROMPTS = prompt_suite("test")[::300][:2]  # two prompts: the particle noise seeds depend on the prompt index
# small runs of every strategy; branch and resample steps where a path is recorded
PARAMS: dict[str, dict[str, Any]] = {
    "best-of-n": {"n": 3},
    "random-search": {"rounds": 2},
    "rounds": {"rounds": 2, "samples": 2},
    "adaptive": {"threshold": 2.0, "batch": 2, "max_n": 3},
    "zero-order": {"rounds": 3, "neighbours": 2},
    "search-over-paths": {"n": 3, "keep": 2, "width": 2},
    "particle-filter": {"particles": 3, "resample_every": 1, "ess_threshold": 1.0},
    "early-pruning": {"n": 4, "keep": 2, "at": 0.5},
}
STEP_LEVEL = ("zero-order", "search-over-paths", "particle-filter", "early-pruning")


@cache
def generator(solver: str = "euler", batch_size: int = 1) -> LabGenerator:
    """lab-small at four steps; `solver` swaps the schedule's update, as a diffusers model's scheduler would."""
    gen = LabGenerator.from_pretrained("lab-small", steps=STEPS, batch_size=batch_size)
    gen._schedule = dataclasses.replace(gen.schedule(), solver=solver)
    return gen


@cache
def verifier() -> LabVerifier:
    return LabVerifier.from_pretrained("lab-visa")


def finished_run(out: Path, strategy: str, params: dict[str, Any], gen: LabGenerator, prompts: int) -> Path:
    """A run of the strategy through the runner, every candidate saved, at the generator's batch size."""
    cfg = SearchConfig(strategy=strategy, params=params, steps=STEPS, seed=RUN_SEED, batch_size=gen.batch_size)
    run(cfg, PROMPTS[:prompts], out, gen, verifier())
    return out


def stored_and_recreated(out: Path, prompt_index: int, gen: LabGenerator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(stored PNG, re-created image as uint8) for every candidate of a prompt, in candidates.jsonl order."""
    records = read_jsonl(out / f"{prompt_index:05d}" / "candidates.jsonl")
    assert records
    return [
        (
            load_image(out / f"{prompt_index:05d}" / "candidates" / f"{r['index']:05d}.png"),
            to_uint8(recreate_candidate(out, prompt_index, r["index"], gen)[None])[0],
        )
        for r in records
    ]


def assert_paths_do_what_they_say(strategy: str, out: Path, prompts: int) -> None:
    """The runs are chosen so that every kind of path entry occurs, or the re-creation would test little."""
    records = {i: read_jsonl(out / f"{i:05d}" / "candidates.jsonl") for i in range(prompts)}
    paths = [r["path"] for rows in records.values() for r in rows]
    if strategy == "zero-order":
        assert any(len(p) >= 2 for p in paths), paths  # a neighbour of a moved centre: a chain of perturbations
    elif strategy == "search-over-paths":
        assert all([e[:2] for e in p] == [["branch", 1], ["branch", 2]] for p in paths)
    elif strategy == "particle-filter":
        assert all(p and all(e[0] == "resample" for e in p) for p in paths)
        # resampling moved some lineage into another slot: a candidate whose root seed is not its slot's
        assert any(r["seed"] != candidate_seed(RUN_SEED, i, r["index"]) for i, rows in records.items() for r in rows)
    elif strategy == "early-pruning":
        assert paths == [[["pruned_at", 2, rank]] for rank in range(2)] * prompts
    else:
        assert all(p == [] for p in paths)


@pytest.mark.parametrize("strategy", list(PARAMS))
def test_every_stored_candidate_is_recreated_from_its_record_byte_for_byte(strategy: str, tmp_path: Path) -> None:
    """The README's promise, checked against what a finished run stored rather than against a second sampling.

    Batch size 1 computes every trajectory in a batch of its own, in the run as in the re-creation, so the
    same kernels run on the same inputs and the images must agree exactly (at larger batches they agree only
    up to the kernels' rounding: the next test).
    """
    out = finished_run(tmp_path, strategy, PARAMS[strategy], generator(), prompts=2)
    assert_paths_do_what_they_say(strategy, out, prompts=2)
    for prompt_index in range(2):
        for stored, again in stored_and_recreated(out, prompt_index, generator()):
            assert np.array_equal(stored, again)


@pytest.mark.parametrize(
    ("strategy", "solver", "eta"),
    [(s, solver, None) for s in STEP_LEVEL for solver in ("dpmpp-2m", "consistency")]
    + [(s, "dpmpp-2m", 0.0) for s in ("search-over-paths", "particle-filter")],
)
def test_step_level_candidates_recreate_with_every_solver(
    strategy: str, solver: str, eta: float | None, tmp_path: Path
) -> None:
    """DPM-Solver++(2M) carries x0 history through branch and resample steps (eta 0 keeps it, a stochastic
    step drops it), and a consistency sampler re-noises at every step from the seed's or the strategy's own
    stream: the re-creation must follow both exactly."""
    gen = generator(solver)
    params = PARAMS[strategy] | ({} if eta is None else {"eta": eta})
    out = finished_run(tmp_path, strategy, params, gen, prompts=1)
    for stored, again in stored_and_recreated(out, 0, gen):
        assert np.array_equal(stored, again)


@pytest.mark.parametrize("strategy", list(PARAMS))
def test_at_larger_batches_recreation_is_exact_up_to_the_kernels_rounding(strategy: str, tmp_path: Path) -> None:
    """A run at batch size 3 computed each trajectory beside others, and the CPU's batched kernels round
    differently from a batch of one (by about 1e-5 of the [0, 1] range, measured): that can move a pixel by
    one uint8 level where a value sits near a rounding boundary, never more, and only in a few pixels."""
    gen = generator(batch_size=3)
    out = finished_run(tmp_path, strategy, PARAMS[strategy], gen, prompts=1)
    for stored, again in stored_and_recreated(out, 0, gen):
        diff = np.abs(stored.astype(int) - again.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_a_sharded_runs_candidates_recreate_from_the_shards_records(tmp_path: Path) -> None:
    """Shards write run.shard{i}of{n}.json instead of run.json; the particle noise of prompt 1 (written by
    shard 1) depends on its prompt index, which the folder gives."""
    params = PARAMS["particle-filter"]
    cfg = SearchConfig(strategy="particle-filter", params=params, steps=STEPS, seed=RUN_SEED, batch_size=1)
    for shard in range(2):
        run(cfg, PROMPTS, tmp_path, generator(), verifier(), shard=(shard, 2))
    assert not (tmp_path / "run.json").exists()
    for prompt_index in range(2):
        for stored, again in stored_and_recreated(tmp_path, prompt_index, generator()):
            assert np.array_equal(stored, again)
    with pytest.raises(TTScaleError, match=r"has no run\.json"):
        recreate_candidate(tmp_path / "00000", 0, 0, generator())


def test_a_path_another_strategy_wrote_is_refused() -> None:
    """A record whose path does not fit the run's strategy cannot be re-created, and silence would be wrong."""
    record = {"index": 0, "seed": 3, "path": [["branch", 1, 7]]}
    with pytest.raises(TTScaleError, match="expected only perturb entries"):
        recreate(generator(), PROMPTS[0]["prompt"], record, RunContext("zero-order"))
    with pytest.raises(TTScaleError, match="expected an empty path"):
        recreate(generator(), PROMPTS[0]["prompt"], record, RunContext("best-of-n"))
