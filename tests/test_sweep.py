"""Sweeps on tiny models: cells run once, best-of-n comes from one pool, rows and summary are consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttscale.config import SearchConfig
from ttscale.folder import read_jsonl
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import representative_subset
from ttscale.lab.verifiers import LabVerifier
from ttscale.runner import run
from ttscale.sweep import SweepSpec, aggregate, cell, cell_config, collect, reach, run_sweep, write


def test_sweep_end_to_end(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=8)
    ver = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    s = gen.nfe_per_sample()
    prompts = representative_subset(1)
    spec = SweepSpec(
        ["best-of-n", "random-search", "adaptive"], [2 * s, 4 * s], [0, 1], SearchConfig(steps=2), reference=8 * s
    )
    run_sweep(spec, prompts, tmp_path, gen, ver)
    # best-of-n drew one pool per seed, at the reference budget only
    assert sorted(p.name for p in (tmp_path / "best-of-n").iterdir()) == [f"nfe{8 * s}"]
    pool = read_jsonl(cell(tmp_path, "best-of-n", 8 * s, 0) / "00000" / "candidates.jsonl")
    assert len(pool) == 8
    rows = collect(spec, prompts, tmp_path, s)
    assert len(rows) == 2 * (3 + 2 + 2)  # seeds x (best-of-n at 3 budgets + 2 + 2)
    for r in rows:
        assert 0.0 <= r["overall"] <= 1.0
        assert r["nfe"] <= r["budget"] + 1e-9
    bon = [r for r in rows if r["strategy"] == "best-of-n" and r["seed"] == 0]
    assert [r["nfe"] for r in bon] == [2 * s, 4 * s, 8 * s]
    assert all(r["ci"][0] <= r["ci"][1] for r in bon)
    summary = aggregate(rows)
    assert {(r["strategy"], r["budget"]) for r in summary} >= {("random-search", 2 * s), ("best-of-n", 8 * s)}
    reached = reach(summary, "best-of-n", 8 * s)
    assert reached["strategies"]["best-of-n"]["ratio"] <= 1.0
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
