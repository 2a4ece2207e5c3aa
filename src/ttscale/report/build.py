"""`ttscale report`: read runs and sweeps, draw their figures, write index.html plus one page per input.

Layout of a report folder: index.html, <name>.html per run or sweep, and <name>/*.png|svg figures.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttscale.curves import exact_prefix_curve
from ttscale.errors import TTScaleError
from ttscale.evaluator import Evaluator
from ttscale.folder import atomic_write_text
from ttscale.report import plots
from ttscale.report.html import Figure, Page, image_src, index_page, run_page, run_row, sweep_page
from ttscale.report.runs import RunView, SweepView, is_sweep, load_run, load_sweep, pooled_scores


def _slugs(paths: Sequence[Path]) -> list[str]:
    """A distinct, file-name-safe name per input, from its folder name."""
    names: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-.") or "run"
        name, k = base, 2
        while name in names or name == "index":
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def best_of_n_rows(view: RunView) -> list[dict[str, Any]] | None:
    """The best-of-N curve: the demo's curve.json, or prefixes of a judged best-of-n run's pools."""
    if view.curve is not None:
        return list(view.curve["curve"])
    if view.pool is None or view.strategy != "best-of-n":
        return None
    sizes = {len(s) for s in view.pool.scores}
    per_sample = {c.nfe for p in view.prompts for c in p.cards}
    if len(sizes) != 1 or len(per_sample) != 1:
        return None
    n = sizes.pop()
    ns = sorted({*(1 << i for i in range(n.bit_length()) if 1 << i <= n), n})
    rows = exact_prefix_curve(view.pool, ns)
    nfe = per_sample.pop()
    return [r | {"nfe_per_prompt": r["n"] * nfe} for r in rows]


def run_figures(view: RunView, folder: Path, label: str) -> list[tuple[list[Path], str]]:
    """Every figure this run's data supports, as (paths, caption)."""
    made: list[tuple[list[Path], str]] = []
    rows = best_of_n_rows(view)
    if rows and len(rows) > 1:
        counts = Counter(p.tag for p in view.prompts)
        title = f"best-of-N: {view.config.get('generator', '?')} picked by {view.config.get('verifier', '?')}"
        made.append((plots.best_of_n_curve(rows, counts, folder / "scaling", title), "score against NFEs per prompt"))
    if view.pool is not None and sum(len(s) for s in view.pool.scores) > 1:
        made.append(
            (
                plots.calibration(view.pool.scores, view.pool.correct, folder / "calibration", f"verifier: {label}"),
                "verifier score against the evaluator's verdict, over every candidate",
            )
        )
    scores, kept = pooled_scores(view)
    if len(scores) > 1:
        made.append(
            (
                plots.score_distribution(scores, kept, folder / "scores", f"scores: {label}"),
                "kept candidates' scores against all candidates'",
            )
        )
    return made


def sweep_figures(view: SweepView, folder: Path, label: str) -> list[tuple[list[Path], str]]:
    made = []
    for key, caption in (("nfe", "NFEs"), ("seconds", "seconds")):
        title = f"{label}: lab-GenEval against {caption} per prompt"
        made.append(
            (plots.compute_curves(view.rows, key, folder / f"compute-{key}", title), f"score against {caption}")
        )
    return made


def write_figures(path: Path, out: Path, *, judge: Evaluator | None = None) -> list[Path]:
    """Only the figures of a run or sweep folder (`ttscale plot`), into `out`; `judge` as for `load_run`."""
    label = path.resolve().name
    if is_sweep(path):
        made = sweep_figures(load_sweep(path), out, label)
    else:
        made = run_figures(load_run(path, judge=judge), out, label)
    return [p for paths, _ in made for p in paths]


def build_report(
    inputs: Sequence[Path], out: Path, *, embed: bool = False, judge: Evaluator | None = None
) -> list[Path]:
    """Write the report of `inputs` (run or sweep folders) into `out`; return the pages, index first.

    `judge` judges every candidate of the runs it evaluated (see `load_run`).
    """
    if not inputs:
        raise TTScaleError("give at least one run or sweep folder")
    out.mkdir(parents=True, exist_ok=True)
    names = _slugs(inputs)
    views: list[RunView | SweepView] = [load_sweep(p) if is_sweep(p) else load_run(p, judge=judge) for p in inputs]

    def pages(current: str) -> list[Page]:
        return [Page("index", "index.html", current == "index")] + [Page(n, f"{n}.html", n == current) for n in names]

    def figs(made: list[tuple[list[Path], str]]) -> list[Figure]:
        return [Figure(image_src(png, out, embed), image_src(svg, out, False), cap) for (png, svg), cap in made]

    written, run_rows, sweep_rows = [], [], []
    for name, view in zip(names, views, strict=True):
        page = out / f"{name}.html"
        if isinstance(view, SweepView):
            made = sweep_figures(view, out / name, name)
            atomic_write_text(page, sweep_page(view, name, pages(name), figs(made)))
            strategies = ", ".join(sorted({r["strategy"] for r in view.rows}))
            sweep_rows.append({"name": name, "href": page.name, "strategies": strategies, "cells": len(view.cells)})
        else:
            made = run_figures(view, out / name, name)
            atomic_write_text(page, run_page(view, name, pages(name), out, figs(made), embed=embed))
            run_rows.append(run_row(view, name, page.name))
        written.append(page)
    index = out / "index.html"
    atomic_write_text(index, index_page(pages("index"), run_rows, sweep_rows))
    return [index, *written]
