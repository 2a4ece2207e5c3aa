"""Best-of-n curves for every n <= N from one pool of N candidates per prompt, without regenerating.

`exact_prefix_curve` takes the first n candidates (their seeds are fixed by index, so this is
exactly what a best-of-n run would have drawn). `bootstrap_curve` resamples n of N without
replacement many times, for a smoother curve with a confidence interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.evaluator import Evaluator
from ttscale.folder import prompt_dir, read_jsonl
from ttscale.images import load_image
from ttscale.prompts import TASKS


@dataclass
class Pool:
    """Per prompt: the verifier score and the evaluator's verdict of every candidate, in draw order."""

    tags: list[str]
    scores: list[np.ndarray]
    correct: list[np.ndarray]


def _overall(tags: Sequence[str], hit: np.ndarray) -> tuple[float, dict[str, float]]:
    tasks = {t: float(np.mean([h for g, h in zip(tags, hit, strict=True) if g == t])) for t in TASKS if t in tags}
    return float(np.mean(list(tasks.values()))), tasks


def exact_prefix_curve(pool: Pool, ns: Sequence[int]) -> list[dict[str, Any]]:
    """Score of keeping the verifier's top candidate among the first n, per n (ties: the earlier one)."""
    rows = []
    for n in ns:
        hit = np.array([c[:n][int(np.argmax(s[:n]))] for s, c in zip(pool.scores, pool.correct, strict=True)])
        oracle = np.array([c[:n].any() for c in pool.correct])
        overall, tasks = _overall(pool.tags, hit)
        rows.append({"n": n, "overall": overall, "tasks": tasks, "oracle": _overall(pool.tags, oracle)[0]})
    return rows


def ranking_auc(pool: Pool) -> dict[str, float]:
    """Per task, the mean over prompts of the ROC-AUC of the verifier's scores within one prompt's candidates.

    This is what selection depends on: a verifier can separate good from bad images across prompts (its
    pooled AUC) while ranking one prompt's candidates poorly. Prompts whose candidates are all right or all
    wrong have no ranking to judge and are skipped; ties count half.
    """
    from scipy.stats import rankdata

    per_task: dict[str, list[float]] = {}
    for tag, s, c in zip(pool.tags, pool.scores, pool.correct, strict=True):
        c = np.asarray(c, dtype=bool)
        pos, neg = int(c.sum()), int((~c).sum())
        if pos and neg:
            ranks = rankdata(s)
            per_task.setdefault(tag, []).append(float((ranks[c].sum() - pos * (pos + 1) / 2) / (pos * neg)))
    return {t: float(np.mean(per_task[t])) for t in TASKS if t in per_task}


def bootstrap_curve(pool: Pool, ns: Sequence[int], draws: int = 200, seed: int = 0) -> list[dict[str, float]]:
    """Mean and 95% interval of the overall score of best-of-n over random n-subsets of each pool."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, float]] = []
    for n in ns:
        totals = []
        for _ in range(draws):
            hit = []
            for s, c in zip(pool.scores, pool.correct, strict=True):
                pick = rng.choice(len(s), size=n, replace=False)
                hit.append(c[pick[int(np.argmax(s[pick]))]])
            totals.append(_overall(pool.tags, np.array(hit))[0])
        lo, hi = np.percentile(totals, [2.5, 97.5])
        rows.append({"n": n, "overall": float(np.mean(totals)), "low": float(lo), "high": float(hi)})
    return rows


def pool_from_folder(out: Path, prompts: list[dict[str, Any]], evaluator: Evaluator) -> Pool:
    """Verifier scores (from candidates.jsonl) and the evaluator's verdicts of every saved candidate."""
    scores, correct = [], []
    for i, metadata in enumerate(prompts):
        folder = prompt_dir(out, i)
        records = read_jsonl(folder / "candidates.jsonl")
        scores.append(np.array([r["score"] for r in records]))
        correct.append(
            np.array(
                [
                    evaluator.evaluate(load_image(folder / "candidates" / f"{r['index']:05d}.png"), metadata).correct
                    for r in records
                ]
            )
        )
    return Pool([p["tag"] for p in prompts], scores, correct)
