"""Re-select kept images from saved candidates with another verifier or k, without generating again.

SANA-1.5's two-stage flow: generate a large pool once, then pick with a (costly) judge.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from rich.console import Console

from ttscale.candidate import Candidate, rank_and_keep
from ttscale.errors import TTScaleError
from ttscale.folder import atomic_write_text, read_jsonl, save_png, write_jsonl
from ttscale.images import load_image
from ttscale.progress import track
from ttscale.verifier import Verifier, scores_for

_DIGITS = re.compile(r"^\d+$")


def pick(out: Path, verifier: Verifier, k: int, metric: str | None = None, batch_size: int = 256) -> int:
    """Re-rank every prompt's saved candidates in `out`; rewrite samples/ and candidates.jsonl. Returns prompts done."""
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
    run_json = out / "run.json"
    if run_json.is_file():
        record = json.loads(run_json.read_text())
        record.setdefault("picks", []).append(
            {"verifier": verifier.name, "metric": metric or verifier.metrics[0], "k": k}
        )
        atomic_write_text(run_json, json.dumps(record, indent=2) + "\n")
    return len(folders)
