"""Sweeps: cells run once, best-of-n comes from one pool, rows and summary are consistent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ttscale.config import SearchConfig
from ttscale.folder import read_jsonl
from ttscale.images import load_image
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import representative_subset
from ttscale.lab.verifiers import LabVerifier
from ttscale.prompts import TASKS
from ttscale.runner import run
from ttscale.sweep import SweepSpec, aggregate, cell, cell_config, collect, reach, run_sweep, write


def geneval_overall(prompts: Sequence[dict[str, Any]], hits: Sequence[bool]) -> float:
    """GenEval's score: accuracy per task, then the plain mean over the tasks present."""
    tasks = [[h for p, h in zip(prompts, hits, strict=True) if p["tag"] == t] for t in TASKS]
    return sum(sum(t) / len(t) for t in tasks if t) / sum(1 for t in tasks if t)


def expected_scores(folder: Path, prompts: Sequence[dict[str, Any]], n: int | None) -> tuple[float, float]:
    """(score, oracle) judged here from the folder's images: the kept sample of a run (n None), or for best-of-n
    the verifier's top among each prompt's first n candidates (ties: the earlier) and whether any was right."""
    judge = LabEvaluator()
    hits, oracle = [], []
    for i, metadata in enumerate(prompts):
        prompt = folder / f"{i:05d}"
        if n is None:
            hits.append(judge.evaluate(load_image(prompt / "samples" / "00000.png"), metadata).correct)
            continue
        first = read_jsonl(prompt / "candidates.jsonl")[:n]
        right = [
            judge.evaluate(load_image(prompt / "candidates" / f"{r['index']:05d}.png"), metadata).correct for r in first
        ]
        hits.append(right[int(np.argmax([r["score"] for r in first]))])
        oracle.append(any(right))
    return geneval_overall(prompts, hits), geneval_overall(prompts, oracle) if oracle else float("nan")


def test_sweep_end_to_end(tmp_path: Path) -> None:
    """On the shipped lab-small at four steps, so some kept images are right and the scores are worth checking."""
    gen = LabGenerator.from_pretrained("lab-small", steps=4, batch_size=8)
    ver = LabVerifier.from_pretrained("lab-visa")
    s = gen.nfe_per_sample()
    prompts = representative_subset(1)[::2]  # three tasks
    spec = SweepSpec(
        ["best-of-n", "random-search", "adaptive"], [s, 2 * s], [0, 1], SearchConfig(steps=4), reference=4 * s
    )
    run_sweep(spec, prompts, tmp_path, gen, ver)
    # best-of-n drew one pool per seed, at the reference budget only
    assert sorted(p.name for p in (tmp_path / "best-of-n").iterdir()) == [f"nfe{4 * s}"]
    pool = read_jsonl(cell(tmp_path, "best-of-n", 4 * s, 0) / "00000" / "candidates.jsonl")
    assert len(pool) == 4
    rows = collect(spec, prompts, tmp_path, s, evaluator=LabEvaluator())
    assert len(rows) == 2 * (3 + 2 + 2)  # seeds x (best-of-n at 3 budgets + 2 + 2)
    for r in rows:
        if r["strategy"] == "best-of-n":  # derived from the one pool: its first budget / s candidates
            score, oracle = expected_scores(cell(tmp_path, "best-of-n", 4 * s, r["seed"]), prompts, r["budget"] // s)
            assert r["oracle"] == pytest.approx(oracle, abs=1e-12)  # the tolerance: float summation order only
        else:
            score, _ = expected_scores(cell(tmp_path, r["strategy"], r["budget"], r["seed"]), prompts, None)
        assert r["overall"] == pytest.approx(score, abs=1e-12)
        assert r["nfe"] <= r["budget"] + 1e-9
    assert any(r["overall"] > 0 for r in rows)  # the comparisons above are not all between zeros
    bon = [r for r in rows if r["strategy"] == "best-of-n" and r["seed"] == 0]
    assert [r["nfe"] for r in bon] == [s, 2 * s, 4 * s]
    assert all(r["ci"][0] <= r["ci"][1] for r in bon)
    summary = aggregate(rows)
    assert {(r["strategy"], r["budget"]) for r in summary} >= {("random-search", s), ("best-of-n", 4 * s)}
    reached = reach(summary, "best-of-n", 4 * s)
    target = next(r["overall"] for r in summary if r["strategy"] == "best-of-n" and r["budget"] == 4 * s)
    assert reached["score"] == target
    for strategy in spec.strategies:  # the cheapest cell that scores at least the reference, or none does
        cells = sorted((r for r in summary if r["strategy"] == strategy), key=lambda r: r["nfe"])
        first = next((r for r in cells if r["overall"] >= target), None)
        hit = reached["strategies"][strategy]
        assert hit == (
            None if first is None else {"budget": first["budget"], "nfe": first["nfe"], "ratio": first["nfe"] / (4 * s)}
        )
    write(tmp_path, rows, summary, reached)
    assert len((tmp_path / "sweep.jsonl").read_text().splitlines()) == len(rows)
    assert json.loads((tmp_path / "sweep_summary.json").read_text())["reach"]["score"] == reached["score"]
    # a second run regenerates nothing: every prompt folder is complete
    stamp = (cell(tmp_path, "adaptive", 2 * s, 1) / "00000" / "candidates.jsonl").stat().st_mtime_ns
    run_sweep(spec, prompts, tmp_path, gen, ver)
    assert (cell(tmp_path, "adaptive", 2 * s, 1) / "00000" / "candidates.jsonl").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "strategy", ["random-search", "rounds", "zero-order", "search-over-paths", "particle-filter", "early-pruning"]
)
def test_sweep_parameters_spend_most_of_each_budget(
    strategy: str, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """A sweep compares strategies at equal compute only if each one uses what it is given (adaptive saves on purpose)."""
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=20, batch_size=64)
    ver = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    s = gen.nfe_per_sample()
    spec = SweepSpec([strategy], [], [0], SearchConfig(steps=20))
    for budget in (4 * s, 8 * s, 32 * s):
        cfg = cell_config(spec, strategy, budget, 0, s)
        if strategy == "rounds":  # its confirming verifier, tiny here too
            cfg = cfg.model_copy(update={"params": cfg.params.model_copy(update={"confirm": str(tiny_models["clip"])})})
        totals = run(cfg, representative_subset(1)[:1], tmp_path / f"{budget}", gen, ver)
        assert 0.75 * budget <= totals.spend.nfe <= budget, (budget, totals.spend.nfe)
