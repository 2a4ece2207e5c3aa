"""GenEval-style scoring of folders: every kept image judged by an evaluator, then accuracy per task.

`evaluate_folder` walks any GenEval-format folder (ours or another tool's), writes `results.jsonl`
(one line per image, GenEval's fields) and `summary.json` (accuracy per task; `overall` is the plain
mean over the tasks present, as GenEval's summary does).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.evaluator import Evaluator
from ttscale.folder import atomic_write_text, iter_samples, write_jsonl
from ttscale.images import load_image
from ttscale.prompts import TASKS


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-task accuracy and `overall` (mean over tasks present), GenEval's aggregation."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        hits[row["tag"]].append(bool(row["correct"]))
    tasks = {t: float(np.mean(hits[t])) for t in TASKS if hits[t]}
    return {
        "overall": float(np.mean(list(tasks.values()))) if tasks else 0.0,
        "tasks": tasks,
        "images": {t: len(hits[t]) for t in TASKS if hits[t]},
        "n_images": sum(len(v) for v in hits.values()),
    }


def evaluate_folder(out: Path, evaluator: Evaluator, *, progress: bool = False) -> dict[str, Any]:
    """Judge every kept image in `out`; write results.jsonl and summary.json there; return the summary."""
    samples = list(iter_samples(out))
    rows = []
    iterator: Iterable[tuple[Path, dict[str, Any]]] = samples
    if progress:
        from rich.console import Console

        from ttscale.progress import track  # follows --quiet / --log-format json

        iterator = track(samples, "evaluating", Console(stderr=True))
    for path, metadata in iterator:
        verdict = evaluator.evaluate(load_image(path), metadata)
        rows.append(
            {
                "filename": str(path.relative_to(out)),
                "tag": metadata["tag"],
                "prompt": metadata["prompt"],
                "correct": verdict.correct,
                "reason": verdict.reason,
                "metadata": json.dumps(metadata),
                "details": json.dumps(verdict.details),
            }
        )
    write_jsonl(out / "results.jsonl", rows)
    summary = summarize(rows) | {"evaluator": evaluator.name}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
