"""Sweeps: strategies x budgets x seeds -> lab-GenEval against total compute, per task and overall.

Each (strategy, budget, seed) is an ordinary resumable run in `<out>/<strategy>/nfe<budget>/seed<seed>`.
Best-of-n is drawn once per seed at the largest budget; every smaller budget is a prefix of that
pool (candidate j always has seed j), with a bootstrap interval from resampling the pool, so a
sweep never regenerates what it already has. Budgets are NFEs per prompt; verifier calls and FLOPs
are measured and reported next to them, since strategies spend verification differently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.budget import Budget
from ttscale.config import SearchConfig
from ttscale.curves import bootstrap_curve, exact_prefix_curve, pool_from_folder
from ttscale.errors import TTScaleError
from ttscale.evaluation import evaluate_folder
from ttscale.folder import atomic_write_text, prompt_dir
from ttscale.generator import Generator
from ttscale.prompts import TASKS
from ttscale.runner import PromptOutcome, run
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


def _spend(folder: Path, n: int) -> dict[str, float]:
    rows = [json.loads((prompt_dir(folder, i) / "spend.json").read_text()) for i in range(n)]
    keys = ("nfe", "verifier_calls", "generator_flops", "verifier_flops", "seconds")
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def collect(spec: SweepSpec, prompts: list[dict[str, Any]], out: Path, nfe_per_sample: int) -> list[dict[str, Any]]:
    """Evaluate every cell; one row per (strategy, budget, seed) with score, per-task scores and spend per prompt."""
    rows: list[dict[str, Any]] = []
    top = spec.best_of_n_budgets[-1]
    for seed in spec.seeds:
        for strategy in spec.strategies:
            if strategy == "best-of-n":
                folder = cell(out, strategy, top, seed)
                pool = pool_from_folder(folder, prompts)
                ns = [b // nfe_per_sample for b in spec.best_of_n_budgets]
                spend = _spend(folder, len(prompts))
                per_n = top // nfe_per_sample
                boot = {r["n"]: r for r in bootstrap_curve(pool, ns, draws=200, seed=seed)}
                for b, curve in zip(spec.best_of_n_budgets, exact_prefix_curve(pool, ns), strict=True):
                    share = curve["n"] / per_n
                    rows.append(
                        {
                            "strategy": strategy,
                            "budget": b,
                            "seed": seed,
                            "overall": curve["overall"],
                            "tasks": curve["tasks"],
                        }
                        | {"oracle": curve["oracle"], "ci": [boot[curve["n"]]["low"], boot[curve["n"]]["high"]]}
                        | {k: v * share for k, v in spend.items()}
                    )
                continue
            for b in spec.budgets:
                folder = cell(out, strategy, b, seed)
                summary = evaluate_folder(folder)
                row = {
                    "strategy": strategy,
                    "budget": b,
                    "seed": seed,
                    "overall": summary["overall"],
                    "tasks": summary["tasks"],
                }
                rows.append(row | _spend(folder, len(prompts)))
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread (std over seeds) per (strategy, budget), with mean compute per prompt."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["budget"]), []).append(r)
    out = []
    for (strategy, budget), rs in groups.items():
        scores = [r["overall"] for r in rs]
        out.append(
            {
                "strategy": strategy,
                "budget": budget,
                "seeds": len(rs),
                "overall": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "tasks": {t: float(np.mean([r["tasks"][t] for r in rs])) for t in TASKS if t in rs[0]["tasks"]},
                "nfe": float(np.mean([r["nfe"] for r in rs])),
                "verifier_calls": float(np.mean([r["verifier_calls"] for r in rs])),
                "tflops": float(np.mean([r["generator_flops"] + r["verifier_flops"] for r in rs])) / 1e12,
                "seconds": float(np.mean([r["seconds"] for r in rs])),
            }
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
