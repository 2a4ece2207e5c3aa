"""The main job on the embedded default: best-of-N with the lab models, on a CPU, end to end.

One pool of N candidates per prompt is drawn once; the best-of-n curve for n = 1, 2, 4 … N then
comes from prefixes of that pool (seeds are fixed by candidate index, so this is exactly what
separate best-of-n runs would draw), and the evaluator judges every candidate once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ttscale.config import SearchConfig
from ttscale.curves import exact_prefix_curve, pool_from_folder
from ttscale.evaluation import evaluate_folder
from ttscale.evaluator import Evaluator
from ttscale.folder import atomic_write_text
from ttscale.report.plots import best_of_n_curve


def curve_rows(
    out: Path, prompts: list[dict[str, Any]], ns: list[int], nfe_per_sample: int, evaluator: Evaluator
) -> list[dict[str, Any]]:
    rows = exact_prefix_curve(pool_from_folder(out, prompts, evaluator), ns)
    for row in rows:
        row["nfe_per_prompt"] = int(row["n"]) * nfe_per_sample
    return rows


def finish(
    out: Path,
    config: SearchConfig,
    prompts: list[dict[str, Any]],
    ns: list[int],
    nfe_per_sample: int,
    evaluator: Evaluator,
) -> dict[str, Any]:
    """Evaluate the kept images and the whole pool; write curve.json and the picture report/scaling.png (+ .svg)."""
    summary = evaluate_folder(out, evaluator)
    rows = curve_rows(out, prompts, ns, nfe_per_sample, evaluator)
    result = {"config": config.model_dump(mode="json"), "kept_summary": summary, "curve": rows}
    atomic_write_text(out / "curve.json", json.dumps(result, indent=2) + "\n")
    title = f"best-of-N in the lab world: {config.generator} picked by {config.verifier}, {len(prompts)} test prompts"
    best_of_n_curve(rows, Counter(p["tag"] for p in prompts), out / "report" / "scaling", title)
    return result
