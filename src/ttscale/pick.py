"""Re-select kept images from saved candidates with another verifier or k, without generating again.

SANA-1.5's two-stage flow: generate a large pool once, then pick with a (costly) judge.

The folder's evaluation (results.jsonl, summary.json) judged the kept images a pick replaces, so it is
redone when the caller hands `pick` that same evaluator (the CLI hands it the lab one: offline and cheap),
and otherwise removed, to be redone with `ttscale evaluate`; the demo's curve.json, drawn from the old scores, is removed (the report
draws the curve from the candidates instead). run.json's "picks" entry says which happened.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console

from ttscale.candidate import Candidate, rank_and_keep
from ttscale.errors import TTScaleError
from ttscale.evaluation import evaluate_folder
from ttscale.evaluator import Evaluator
from ttscale.folder import atomic_write_text, read_jsonl, save_png, write_jsonl
from ttscale.images import load_image
from ttscale.progress import track
from ttscale.verifier import Verifier, scores_for

_DIGITS = re.compile(r"^\d+$")

Evaluation = Literal["re-evaluated", "removed", "none"]


@dataclass(frozen=True)
class Picked:
    """What `pick` did: the prompts it re-picked, and what became of the evaluation of the images it replaced
    ("re-evaluated" with the same evaluator, "removed" for `ttscale evaluate` to redo, or "none" to update)."""

    prompts: int
    evaluation: Evaluation
    evaluator: str | None = None


def pick(
    out: Path,
    verifier: Verifier,
    k: int,
    metric: str | None = None,
    batch_size: int = 256,
    *,
    reevaluate: Evaluator | None = None,
) -> Picked:
    """Re-rank every prompt's saved candidates in `out`; rewrite samples/ and candidates.jsonl, then redo the
    folder's evaluation of the old kept images when `reevaluate` is the evaluator that made it, else remove it."""
    folders = sorted(p for p in out.iterdir() if p.is_dir() and _DIGITS.match(p.name)) if out.is_dir() else []
    if not folders:
        raise TTScaleError(f"{out} holds no prompt folders; give the output folder of `ttscale search`")
    for folder in track(folders, f"re-picking with {verifier.name}", Console(stderr=True)):
        if not (folder / "candidates.jsonl").is_file():
            raise TTScaleError(f"{folder} has no candidates.jsonl: was it written by `ttscale search`?")
        records = read_jsonl(folder / "candidates.jsonl")
        prompt = json.loads((folder / "metadata.jsonl").read_text().splitlines()[0])["prompt"]
        paths = [folder / "candidates" / f"{r['index']:05d}.png" for r in records]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise TTScaleError(
                f"{missing[0]} is missing: `pick` needs the candidate images (search with save_candidates on)"
            )
        images = torch.stack([torch.from_numpy(load_image(p)).permute(2, 0, 1).float() / 255 for p in paths])
        ranked, metrics = [], []
        for s in range(0, len(paths), batch_size):
            rank_part, metric_part = scores_for(verifier, images[s : s + batch_size], prompt, metric)
            ranked.append(rank_part)
            metrics.append(metric_part)
        ranking = torch.cat(ranked)
        merged = {key: torch.cat([m[key] for m in metrics]) for key in metrics[0]}
        cands = [
            Candidate(
                seed=r["seed"],
                image=images[j],
                scores=r["scores"] | {m: float(v[j]) for m, v in merged.items()},
                score=float(ranking[j]),
                nfe=r["nfe"],
                round=r["round"],
                path=r["path"],
            )
            for j, r in enumerate(records)
        ]
        kept = rank_and_keep(cands, k)
        samples = folder / "samples"
        old = sorted(samples.glob("*.png")) if samples.is_dir() else []
        for j, c in enumerate(kept):
            save_png(samples / f"{j:05d}.png", (c.image.permute(1, 2, 0) * 255).round().byte().numpy())
        for stale in old[len(kept) :]:
            stale.unlink()
        write_jsonl(folder / "candidates.jsonl", [c.record(r["index"]) for c, r in zip(cands, records, strict=True)])
    done = Picked(len(folders), *_refresh_evaluation(out, reevaluate))
    run_json = out / "run.json"
    if run_json.is_file():
        record = json.loads(run_json.read_text())
        entry = {"verifier": verifier.name, "metric": metric or verifier.metrics[0], "k": k}
        record.setdefault("picks", []).append(entry | {"evaluation": done.evaluation, "evaluator": done.evaluator})
        atomic_write_text(run_json, json.dumps(record, indent=2) + "\n")
    return done


def _refresh_evaluation(out: Path, reevaluate: Evaluator | None) -> tuple[Evaluation, str | None]:
    """Redo the evaluation of `out`'s kept images when summary.json names `reevaluate`'s evaluator; else remove results.jsonl and summary.json, which judged images that are no longer kept."""
    (out / "curve.json").unlink(missing_ok=True)  # the demo's best-of-n curve, picked by the old scores
    results, summary = out / "results.jsonl", out / "summary.json"
    if not results.is_file() and not summary.is_file():
        return "none", None
    try:
        evaluator = json.loads(summary.read_text()).get("evaluator") if summary.is_file() else None
    except json.JSONDecodeError:
        evaluator = None  # unreadable: it cannot be redone, and it is stale either way
    if reevaluate is not None and evaluator == reevaluate.name:
        evaluate_folder(out, reevaluate)
        return "re-evaluated", evaluator
    results.unlink(missing_ok=True)
    summary.unlink(missing_ok=True)
    return "removed", evaluator
