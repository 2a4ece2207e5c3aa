"""The main job on the embedded default: best-of-N with the lab models, on a CPU, end to end.

One pool of N candidates per prompt is drawn once; the best-of-n curve for n = 1, 2, 4 … N then
comes from prefixes of that pool (seeds are fixed by candidate index, so this is exactly what
separate best-of-n runs would draw), and the evaluator judges every candidate once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.config import SearchConfig
from ttscale.curves import Pool, exact_prefix_curve
from ttscale.evaluation import evaluate_folder, get_evaluator
from ttscale.folder import atomic_write_text, load_image, prompt_dir, read_jsonl
from ttscale.lab.prompts import prompt_suite
from ttscale.prompts import TASKS


def demo_prompts(per_task: int, split: str = "test") -> list[dict[str, Any]]:
    """`per_task` prompts of each task, evenly spread over the split (a representative subset)."""
    suite = prompt_suite(split)  # type: ignore[arg-type]
    out: list[dict[str, Any]] = []
    for task in TASKS:
        pool = [p for p in suite if p["tag"] == task]
        if pool:
            out.extend(pool[int(i)] for i in np.linspace(0, len(pool) - 1, min(per_task, len(pool))).round())
    return out


def candidate_pool(out: Path, prompts: list[dict[str, Any]]) -> Pool:
    """Verifier scores (from candidates.jsonl) and evaluator verdicts of every saved candidate."""
    evaluator = get_evaluator("lab")
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


def curve_rows(out: Path, prompts: list[dict[str, Any]], ns: list[int], nfe_per_sample: int) -> list[dict[str, Any]]:
    rows = exact_prefix_curve(candidate_pool(out, prompts), ns)
    for row in rows:
        row["nfe_per_prompt"] = int(row["n"]) * nfe_per_sample  # type: ignore[call-overload]
    return rows


def finish(
    out: Path, config: SearchConfig, prompts: list[dict[str, Any]], ns: list[int], nfe_per_sample: int
) -> dict[str, Any]:
    """Evaluate the kept images and the whole pool; write curve.json."""
    summary = evaluate_folder(out)
    rows = curve_rows(out, prompts, ns, nfe_per_sample)
    result = {"config": config.model_dump(mode="json"), "kept_summary": summary, "curve": rows}
    atomic_write_text(out / "curve.json", json.dumps(result, indent=2) + "\n")
    return result
