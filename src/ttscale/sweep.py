"""Sweeps: strategies x budgets x seeds -> lab-GenEval against total compute, per task and overall.

Each (strategy, budget, seed) is an ordinary resumable run in `<out>/<strategy>/nfe<budget>/seed<seed>`.
Best-of-n is drawn once per seed at the largest budget; every smaller budget is a prefix of that
pool (candidate j always has seed j), with a bootstrap interval from resampling the pool, so a
sweep never regenerates what it already has; those rows say `"derived": true`. Budgets are NFEs
per prompt; verifier calls, judge requests and FLOPs are measured and reported next to them, since
strategies spend verification differently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.budget import Budget, Spend, json_float
from ttscale.config import SearchConfig
from ttscale.curves import bootstrap_curve, exact_prefix_curve, pool_from_folder
from ttscale.errors import TTScaleError
from ttscale.evaluation import evaluate_folder
from ttscale.evaluator import Evaluator
from ttscale.folder import atomic_write_text, prompt_dir
from ttscale.generator import Generator
from ttscale.outcome import PromptOutcome
from ttscale.prompts import TASKS
from ttscale.runner import run
from ttscale.search import StrategyParams
from ttscale.strategies import adaptive, best_of_n, particles, paths, pruning, random_search, rounds, zero_order
from ttscale.verifier import Verifier

# How a strategy spends a budget of B NFEs per prompt when one full sample costs S NFEs: each uses at least 75%
# of B (tests/test_sweep.py checks), except adaptive, whose point is to stop early.
SWEEP_PARAMS: dict[str, Callable[[int, int], StrategyParams]] = {
    "random-search": lambda b, s: random_search.Params(),
    "rounds": lambda b, s: rounds.Params(
        rounds=4, samples=max(1, b // s // 4), confirm="lab-clip", top=max(1, b // s // 8)
    ),
    "zero-order": lambda b, s: zero_order.Params(rounds=1 << 20, neighbours=4),
    "adaptive": lambda b, s: adaptive.Params(threshold=0.95, batch=4),
    "search-over-paths": lambda b, s: paths.Params(n=max(2, b // s), keep=max(1, b // s // 4), width=4),
    "particle-filter": lambda b, s: particles.Params(particles=max(1, b // s)),
    "early-pruning": lambda b, s: pruning.Params(
        n=max(1, int(b / (0.475 * s))), keep=max(1, int(b / (0.475 * s)) // 4), at=0.3
    ),
}


@dataclass
class SweepSpec:
    strategies: Sequence[str]
    budgets: Sequence[int]
    seeds: Sequence[int]
    base: SearchConfig = field(default_factory=SearchConfig)
    reference: int | None = None  # best-of-n's pool reaches this budget too (e.g. best-of-64) for `reach`

    @property
    def best_of_n_budgets(self) -> list[int]:
        return sorted({*self.budgets, *([self.reference] if self.reference else [])})


def cell(out: Path, strategy: str, budget: int, seed: int) -> Path:
    return out / strategy / f"nfe{budget}" / f"seed{seed}"


def cell_config(spec: SweepSpec, strategy: str, budget: int, seed: int, nfe_per_sample: int) -> SearchConfig:
    params: StrategyParams
    if strategy == "best-of-n":
        if budget < nfe_per_sample:
            raise TTScaleError(
                f"a budget of {budget} NFEs pays for no sample of best-of-n ({nfe_per_sample} NFEs each)"
            )
        params, limit = best_of_n.Params(n=budget // nfe_per_sample), Budget()
    else:
        params, limit = SWEEP_PARAMS[strategy](budget, nfe_per_sample), Budget(nfe=budget)
    return spec.base.model_copy(update={"strategy": strategy, "params": params, "budget": limit, "seed": seed})


def run_cells(spec: SweepSpec) -> list[tuple[str, int, int]]:
    """The (strategy, budget, seed) runs a sweep makes, in order: best-of-n once per seed, at its largest budget."""
    return [
        (strategy, budget, seed)
        for seed in spec.seeds
        for strategy in spec.strategies
        for budget in ([spec.best_of_n_budgets[-1]] if strategy == "best-of-n" else spec.budgets)
    ]


def run_sweep(
    spec: SweepSpec,
    prompts: list[dict[str, Any]],
    out: Path,
    generator: Generator,
    verifier: Verifier,
    shard: tuple[int, int] = (0, 1),
    on_prompt: Callable[[PromptOutcome], None] | None = None,
) -> None:
    """Run every cell (resumable); best-of-n only at the largest budget."""
    s = generator.nfe_per_sample()
    for strategy, budget, seed in run_cells(spec):
        cfg = cell_config(spec, strategy, budget, seed, s)
        run(cfg, prompts, cell(out, strategy, budget, seed), generator, verifier, shard=shard, on_prompt=on_prompt)


def _spend(folder: Path, n: int) -> Spend:
    """What a run's first n prompts spent in all."""
    return Spend.total(
        Spend.from_record(json.loads((prompt_dir(folder, i) / "spend.json").read_text())) for i in range(n)
    )


def collect(
    spec: SweepSpec, prompts: list[dict[str, Any]], out: Path, nfe_per_sample: int, *, evaluator: Evaluator
) -> list[dict[str, Any]]:
    """Evaluate every cell; one row per (strategy, budget, seed) with score, per-task scores and spend per prompt.

    Best-of-n's rows below its largest budget are `derived`: prefixes of that one pool, with its spend in
    proportion (its first n of N candidates), not runs of their own.
    """
    rows: list[dict[str, Any]] = []
    top = spec.best_of_n_budgets[-1]
    for seed in spec.seeds:
        for strategy in spec.strategies:
            if strategy == "best-of-n":
                folder = cell(out, strategy, top, seed)
                pool = pool_from_folder(folder, prompts, evaluator)
                ns = [b // nfe_per_sample for b in spec.best_of_n_budgets]
                spend = _spend(folder, len(prompts))
                per_n = top // nfe_per_sample
                boot = {r["n"]: r for r in bootstrap_curve(pool, ns, draws=200, seed=seed)}
                for b, curve in zip(spec.best_of_n_budgets, exact_prefix_curve(pool, ns), strict=True):
                    rows.append(
                        {
                            "strategy": strategy,
                            "budget": b,
                            "seed": seed,
                            "overall": curve["overall"],
                            "tasks": curve["tasks"],
                        }
                        | {"oracle": curve["oracle"], "ci": [boot[curve["n"]]["low"], boot[curve["n"]]["high"]]}
                        | spend.record(per=len(prompts) * per_n / curve["n"])
                        | {"derived": b != top}
                    )
                continue
            for b in spec.budgets:
                folder = cell(out, strategy, b, seed)
                summary = evaluate_folder(folder, evaluator)
                row = {
                    "strategy": strategy,
                    "budget": b,
                    "seed": seed,
                    "overall": summary["overall"],
                    "tasks": summary["tasks"],
                }
                rows.append(row | _spend(folder, len(prompts)).record(per=len(prompts)) | {"derived": False})
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread (std over seeds) per (strategy, budget), with mean compute per prompt (TFLOPs null if unknown).

    A cell is `derived` when its rows are (best-of-n's smaller budgets); rows of sweeps before this was recorded
    count as measured.
    """
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["budget"]), []).append(r)
    out = []
    for (strategy, budget), rs in groups.items():
        scores = [r["overall"] for r in rs]
        spend = Spend.total(Spend.from_record(r) for r in rs)
        out.append(
            {
                "strategy": strategy,
                "budget": budget,
                "seeds": len(rs),
                "overall": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "tasks": {t: float(np.mean([r["tasks"][t] for r in rs])) for t in TASKS if t in rs[0]["tasks"]},
            }
            | spend.record(per=len(rs))
            | {"tflops": json_float(spend.flops / len(rs) / 1e12), "derived": any(r.get("derived", False) for r in rs)}
        )
    return out


def reach(summary: list[dict[str, Any]], reference: str, reference_budget: int) -> dict[str, Any]:
    """For each strategy, the least NFEs at which its mean score reaches the reference's (e.g. best-of-64)."""
    target = next(r for r in summary if r["strategy"] == reference and r["budget"] == reference_budget)
    result: dict[str, Any] = {
        "reference": reference,
        "budget": reference_budget,
        "score": target["overall"],
        "strategies": {},
    }
    for strategy in sorted({r["strategy"] for r in summary}):
        hits = sorted(
            (r for r in summary if r["strategy"] == strategy and r["overall"] >= target["overall"]),
            key=lambda r: r["nfe"],
        )
        result["strategies"][strategy] = (
            {"budget": hits[0]["budget"], "nfe": hits[0]["nfe"], "ratio": hits[0]["nfe"] / target["nfe"]}
            if hits
            else None
        )
    return result


def write(out: Path, rows: list[dict[str, Any]], summary: list[dict[str, Any]], reached: dict[str, Any]) -> None:
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    atomic_write_text(out / "sweep.jsonl", lines)
    atomic_write_text(out / "sweep_summary.json", json.dumps({"cells": summary, "reach": reached}, indent=2) + "\n")
