"""The report's figures (matplotlib, Agg backend), each written as PNG and SVG.

Confidence bands are 95%: over seeds where a sweep has several (t interval), else from the
bootstrap a sweep stored, else over the prompt set (a binomial standard error per task), so a
single run's curve still shows how much its prompt sample could move it. Figures are built without
pyplot (no global state, no display needed): savefig renders PNG through Agg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from scipy import stats

from ttscale.prompts import TASKS

Z95 = 1.959964


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def proportion_band(p: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson interval of accuracies `p` measured on `m` prompts."""
    denom = 1 + Z95**2 / m
    centre = (p + Z95**2 / (2 * m)) / denom
    half = Z95 * np.sqrt(p * (1 - p) / m + Z95**2 / (4 * m * m)) / denom
    return centre - half, centre + half


def overall_band(tasks: Sequence[Mapping[str, float]], counts: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """95% band of the overall score (mean over tasks) from each task's binomial variance over its prompts."""
    lows, highs = [], []
    for row in tasks:
        present = [t for t in TASKS if t in row and counts.get(t)]
        var = sum(row[t] * (1 - row[t]) / counts[t] for t in present) / max(len(present), 1) ** 2
        mean = float(np.mean([row[t] for t in present])) if present else float("nan")
        lows.append(max(0.0, mean - Z95 * np.sqrt(var)))
        highs.append(min(1.0, mean + Z95 * np.sqrt(var)))
    return np.array(lows), np.array(highs)


def _log2_axis(ax: Axes, xs: Sequence[float], labels: Sequence[str] | None = None) -> None:
    """Log-2 x axis when the points span a factor of 4 or more; ticks at the points themselves when given labels."""
    if len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 4:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 320, not 2^8.3
    if labels is not None:
        ax.set_xticks(list(xs), list(labels))
        ax.minorticks_off()


def best_of_n_curve(rows: Sequence[Mapping[str, Any]], counts: Mapping[str, int], stem: Path, title: str) -> list[Path]:
    """Best-of-N: overall (with the evaluator-picked oracle) and one small panel per task, against NFEs per prompt."""
    x = np.array([r["nfe_per_prompt"] for r in rows], dtype=float)
    ticks = [f"{v:,.0f}" for v in x]
    fig = Figure(figsize=(13, 5), layout="constrained")
    grid = fig.add_gridspec(2, 5)
    main = fig.add_subplot(grid[:, :2])
    lo, hi = overall_band([r["tasks"] for r in rows], counts)
    main.fill_between(x, lo, hi, alpha=0.2, color="C0", label="95% band over prompts")
    main.plot(x, [r["overall"] for r in rows], "o-", color="C0", lw=2, label="best-of-N (verifier pick)")
    if all("oracle" in r for r in rows):
        main.plot(x, [r["oracle"] for r in rows], "s--", color="0.45", label="oracle (evaluator pick)")
    main.set(title="overall", xlabel="NFEs per prompt", ylabel="lab-GenEval score", ylim=(0, 1.02))
    _log2_axis(main, list(x), [f"{t}\nN={r['n']}" for t, r in zip(ticks, rows, strict=True)])
    main.legend(loc="upper left", fontsize=8)
    main.grid(alpha=0.3)
    tasks = [t for t in TASKS if t in rows[0]["tasks"]]
    for i, task in enumerate(tasks[:6]):
        ax = fig.add_subplot(grid[i // 3, 2 + i % 3], sharey=main)
        y = np.array([r["tasks"][task] for r in rows])
        lo_t, hi_t = proportion_band(y, counts.get(task, 1))
        ax.fill_between(x, lo_t, hi_t, alpha=0.2, color=f"C{i + 1}")
        ax.plot(x, y, "o-", color=f"C{i + 1}", ms=3)
        ax.set_title(f"{task} ({counts.get(task, 0)} prompts)", fontsize=9)
        _log2_axis(ax, list(x), ticks)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, stem)


def _sweep_series(rows: Sequence[Mapping[str, Any]], x_key: str, y_of: Any) -> dict[str, list[tuple[float, ...]]]:
    """Per strategy, sorted points (x, mean y, low, high) over seeds."""
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["budget"]), []).append(r)
    series: dict[str, list[tuple[float, ...]]] = {}
    for (strategy, _), rs in sorted(groups.items()):
        ys = np.array([y_of(r) for r in rs], dtype=float)
        mean = float(ys.mean())
        if len(rs) > 1:
            half = float(stats.t.ppf(0.975, len(rs) - 1) * ys.std(ddof=1) / np.sqrt(len(rs)))
            lo, hi = mean - half, mean + half
        elif "ci" in rs[0] and y_of(rs[0]) == rs[0]["overall"]:
            lo, hi = rs[0]["ci"]
        else:
            lo = hi = mean
        x = float(np.mean([r[x_key] for r in rs]))
        series.setdefault(strategy, []).append((x, mean, max(lo, 0.0), min(hi, 1.0)))
    return {s: sorted(points) for s, points in series.items()}


def compute_curves(rows: Sequence[Mapping[str, Any]], x_key: str, stem: Path, title: str) -> list[Path]:
    """A sweep's score against compute per prompt (`x_key`: nfe or seconds), overall and per task, per strategy."""
    tasks = [t for t in TASKS if t in rows[0]["tasks"]]
    panels: list[tuple[str, Any]] = [("overall", lambda r: r["overall"])]
    panels += [(t, lambda r, t=t: r["tasks"][t]) for t in tasks]
    cols = min(4, len(panels) + 1)  # one spare cell (at least) holds the legend
    grid_rows = -(-(len(panels) + 1) // cols)
    fig = Figure(figsize=(3.8 * cols, 3.5 * grid_rows))
    axes = fig.subplots(grid_rows, cols, sharey=True, squeeze=False)
    label = {"nfe": "NFEs per prompt", "seconds": "seconds per prompt"}.get(x_key, x_key)
    strategies = sorted({r["strategy"] for r in rows})
    for ax, (name, y_of) in zip(axes.flat, panels, strict=False):
        for strategy, points in _sweep_series(rows, x_key, y_of).items():
            x, y, lo, hi = (np.array(v) for v in zip(*points, strict=True))
            color = f"C{strategies.index(strategy)}"
            ax.fill_between(x, lo, hi, alpha=0.15, color=color)
            ax.plot(x, y, "o-", color=color, ms=3, lw=2 if name == "overall" else 1.2, label=strategy)
        ax.set(title=name, xlabel=label)
        _log2_axis(ax, [float(r[x_key]) for r in rows])
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("lab-GenEval score")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[len(panels)].legend(handles, labels, loc="center", title="strategy (95% band)", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, stem)


def roc(scores: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False- and true-positive rates of thresholding `scores` at each distinct value, and the area under them."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], correct[order].astype(float)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp, fp = np.cumsum(y)[last_of_tie], np.cumsum(1 - y)[last_of_tie]
    tpr = np.r_[0.0, tp / max(y.sum(), 1)]
    fpr = np.r_[0.0, fp / max((1 - y).sum(), 1)]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def calibration(
    scores: Sequence[np.ndarray], correct: Sequence[np.ndarray], stem: Path, title: str, bins: int = 10
) -> list[Path]:
    """How trustworthy the verifier is: accuracy per score bin (reliability), ROC, and what its pick achieves."""
    s, c = np.concatenate(scores), np.concatenate(correct).astype(bool)
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, ys, lo, hi, ns = [], [], [], [], []
    for b in np.unique(which):
        inside = which == b
        m = int(inside.sum())
        p = float(c[inside].mean())
        low, high = proportion_band(np.array([p]), m)
        xs.append(float(s[inside].mean()))
        ys.append(p)
        lo.append(max(p - float(low[0]), 0.0))  # Wilson bounds can miss p by rounding at 0 and 1
        hi.append(max(float(high[0]) - p, 0.0))
        ns.append(m)
    left.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3, label="accuracy in score bin (95%)")
    if s.min() >= 0 and s.max() <= 1:  # a probability: compare it with the diagonal over the scores' range
        left.plot([min(xs), max(xs)], [min(xs), max(xs)], ":", color="0.5", label="calibrated probability")
    left.axhline(float(c.mean()), color="0.6", lw=1, ls="--", label=f"base rate {c.mean():.2f}")
    left.set(title="reliability", xlabel="verifier score (bin mean)", ylabel="evaluator: fraction correct")
    left.set_ylim(-0.02, 1.02)
    left.legend(fontsize=8, loc="upper left")
    if 0 < c.sum() < len(c):
        fpr, tpr, auc = roc(s, c)
        right.plot(fpr, tpr, lw=2, label=f"all candidates, AUC {auc:.3f}")
    right.plot([0, 1], [0, 1], ":", color="0.5", label="chance")
    top1 = float(np.mean([cc[int(np.argmax(ss))] for ss, cc in zip(scores, correct, strict=True)]))
    oracle = float(np.mean([cc.any() for cc in correct]))
    chance = float(np.mean([cc.mean() for cc in correct]))
    right.set(
        title=f"ROC · per prompt: pick {top1:.2f}, oracle {oracle:.2f}, random {chance:.2f}",
        xlabel="false-positive rate",
        ylabel="true-positive rate",
    )
    right.legend(fontsize=8, loc="lower right")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, stem)


def score_distribution(scores: np.ndarray, kept: np.ndarray, stem: Path, title: str) -> list[Path]:
    """Histogram of every candidate's ranking score against the kept ones' (what selection shifts)."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    edges = np.histogram_bin_edges(scores, bins=min(40, max(5, len(scores) // 5))).tolist()
    ax.hist(scores, bins=edges, density=True, alpha=0.5, color="0.5", label=f"all candidates ({len(scores)})")
    ax.hist(scores[kept], bins=edges, density=True, histtype="step", lw=2, color="C3", label=f"kept ({kept.sum()})")
    ax.axvline(float(scores.mean()), color="0.4", ls="--", lw=1, label=f"mean of all {scores.mean():.3f}")
    if kept.any():
        ax.axvline(float(scores[kept].mean()), color="C3", ls="--", lw=1, label=f"mean kept {scores[kept].mean():.3f}")
    ax.set(title=title, xlabel="verifier score (ranking metric)", ylabel="density")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, stem)
