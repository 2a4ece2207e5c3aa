"""Read a run folder (or a sweep folder) into plain objects the report and the summary render.

Verdicts come from the evaluator's results.jsonl for kept images. Given that same evaluator as a `judge`
(the CLI gives the lab one, cheap and exact), every candidate is judged too, so the report can show how far
the verifier's pick is from the best candidate and how well its scores track correctness.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.budget import Spend
from ttscale.curves import Pool, pool_from_folder
from ttscale.errors import TTScaleError
from ttscale.evaluator import Evaluator
from ttscale.folder import read_jsonl

_DIGITS = re.compile(r"^\d+$")
_SHARD_RECORD = re.compile(r"^run\.shard\d+of\d+\.json$")


@dataclass
class Card:
    """One candidate as the gallery shows it."""

    index: int
    seed: int
    round: int
    nfe: int
    score: float
    scores: dict[str, float]
    rank: int
    kept: bool
    image: Path | None
    verdict: bool | None = None  # the evaluator's, when there is one
    reason: str = ""


@dataclass
class PromptView:
    index: int
    metadata: dict[str, Any]
    cards: list[Card]
    spend: Spend | None

    @property
    def tag(self) -> str:
        return str(self.metadata["tag"])

    @property
    def prompt(self) -> str:
        return str(self.metadata["prompt"])

    @property
    def best(self) -> float:
        return max((c.score for c in self.cards), default=float("nan"))

    @property
    def kept_verdict(self) -> bool | None:
        """Correct when the top kept image is (GenEval judges each kept image; the first is the verifier's pick)."""
        kept = sorted((c for c in self.cards if c.kept), key=lambda c: c.rank)
        return kept[0].verdict if kept else None


@dataclass
class RunView:
    path: Path
    record: dict[str, Any]  # run.json, or the shards' records merged
    summary: dict[str, Any] | None  # summary.json
    prompts: list[PromptView]
    pool: Pool | None = None  # every candidate judged (lab evaluator only)
    curve: dict[str, Any] | None = None  # the demo's curve.json
    metrics: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.record.get("config", {}))

    @property
    def strategy(self) -> str:
        return str(self.config.get("strategy", "?"))

    def spend_totals(self) -> Spend:
        """Compute spent over every prompt, from the prompts' spend.json (complete across shards and resumes)."""
        return Spend.total(p.spend for p in self.prompts if p.spend is not None)

    @property
    def prompts_with_spend(self) -> int:
        return sum(p.spend is not None for p in self.prompts)

    @property
    def candidates(self) -> int:
        return sum(len(p.cards) for p in self.prompts)


@dataclass
class SweepView:
    path: Path
    rows: list[dict[str, Any]]  # sweep.jsonl: one per (strategy, budget, seed)
    cells: list[dict[str, Any]]  # sweep_summary.json: mean over seeds
    reach: dict[str, Any]


def is_sweep(path: Path) -> bool:
    return (path / "sweep.jsonl").is_file()


def read_record(out: Path) -> dict[str, Any]:
    """run.json, or the shard records of a sharded run merged: their totals summed, wall time the slowest shard's."""
    if (out / "run.json").is_file():
        return dict(json.loads((out / "run.json").read_text()))
    shards = sorted(p for p in out.glob("run.shard*.json") if _SHARD_RECORD.match(p.name))
    if not shards:
        return {}
    records = [json.loads(p.read_text()) for p in shards]
    merged = dict(records[0])
    totals = [r["totals"] for r in records if "totals" in r]
    if totals:
        merged["totals"] = {k: _sum([t[k] for t in totals]) for k in totals[0]}
        merged["wall_seconds"] = max(r.get("wall_seconds", 0.0) for r in records)
    merged["shards"] = len(records)
    return merged


def _sum(values: list[Any]) -> Any:
    """The shards' values of one total: numbers added (null, unknown, if any is), lists (what is estimated) joined."""
    if any(isinstance(v, list) for v in values):
        return sorted({x for v in values for x in v})
    return None if any(v is None for v in values) else sum(values)


def _prompt_folders(out: Path) -> list[Path]:
    if not out.is_dir():
        raise TTScaleError(f"{out} is not a folder; give the output folder of a run or a sweep")
    folders = sorted(p for p in out.iterdir() if p.is_dir() and _DIGITS.match(p.name))
    if not folders:
        raise TTScaleError(f"{out} holds no prompt folders (00000/ …) and no sweep.jsonl: is it a ttscale output?")
    return folders


def _kept_verdicts(out: Path) -> dict[tuple[int, int], tuple[bool, str]]:
    """(prompt index, sample number) -> (correct, reason) from results.jsonl."""
    path = out / "results.jsonl"
    verdicts: dict[tuple[int, int], tuple[bool, str]] = {}
    if not path.is_file():
        return verdicts
    for row in read_jsonl(path):
        parts = Path(row["filename"]).parts
        if len(parts) == 3 and _DIGITS.match(parts[0]) and parts[2][:-4].isdigit():
            verdicts[(int(parts[0]), int(parts[2][:-4]))] = (bool(row["correct"]), str(row.get("reason", "")))
    return verdicts


def _cards(folder: Path) -> list[Card]:
    """Cards from candidates.jsonl; without it (another tool's folder) the kept samples alone, in rank order."""
    if not (folder / "candidates.jsonl").is_file():
        samples = sorted((folder / "samples").glob("*.png")) if (folder / "samples").is_dir() else []
        return [Card(k, -1, 0, 0, float("nan"), {}, k, True, p) for k, p in enumerate(samples)]
    cards = []
    for r in read_jsonl(folder / "candidates.jsonl"):
        image = folder / "candidates" / f"{r['index']:05d}.png"
        if not image.is_file():
            sample = folder / "samples" / f"{r['rank']:05d}.png"
            image = sample if r["kept"] and sample.is_file() else None  # type: ignore[assignment]
        cards.append(
            Card(
                index=int(r["index"]),
                seed=int(r["seed"]),
                round=int(r.get("round", 0)),
                nfe=int(r.get("nfe", 0)),
                score=float(r["score"]),
                scores={k: float(v) for k, v in r.get("scores", {}).items()},
                rank=int(r["rank"]),
                kept=bool(r["kept"]),
                image=image,
            )
        )
    return cards


def load_run(out: Path, *, judge: Evaluator | None = None) -> RunView:
    """Everything the report shows about one run folder.

    With a `judge`, every candidate of a run whose kept images that evaluator judged (summary.json names it) is
    judged too, for the verdicts on the cards and the calibration figure; other runs are shown as they are.
    """
    folders = _prompt_folders(out)
    kept = _kept_verdicts(out)
    prompts = []
    for folder in folders:
        meta_path = folder / "metadata.jsonl"
        if not meta_path.is_file():
            continue  # unfinished prompt (a run still going, or one that crashed): nothing to show yet
        lines = read_jsonl(meta_path)
        if not lines:
            raise TTScaleError(f"{meta_path}:1: empty metadata file")
        metadata = lines[0]
        index = int(folder.name)
        cards = _cards(folder)
        for card in cards:
            if card.kept and (index, card.rank) in kept:
                card.verdict, card.reason = kept[(index, card.rank)]
        spend_json = folder / "spend.json"
        spend = Spend.from_record(json.loads(spend_json.read_text())) if spend_json.is_file() else None
        prompts.append(PromptView(index, metadata, cards, spend))
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else None
    curve = json.loads((out / "curve.json").read_text()) if (out / "curve.json").is_file() else None
    view = RunView(out, read_record(out), summary, prompts, curve=curve)
    view.metrics = sorted({m for p in prompts for c in p.cards for m in c.scores})
    if judge is not None and summary is not None and summary.get("evaluator") == judge.name and _judgeable(prompts):
        view.pool = pool_from_folder(out, [p.metadata for p in prompts], judge)
        for p, correct in zip(prompts, view.pool.correct, strict=True):
            for card, ok in zip(p.cards, correct, strict=True):
                if card.verdict is None:
                    card.verdict = bool(ok)
    return view


def _judgeable(prompts: list[PromptView]) -> bool:
    """pool_from_folder needs prompts 0..n-1, each with candidates.jsonl and every candidate's image."""
    return bool(prompts) and all(
        p.index == i and p.cards and all(c.image is not None and c.image.parent.name == "candidates" for c in p.cards)
        for i, p in enumerate(prompts)
    )


def load_sweep(out: Path) -> SweepView:
    rows = read_jsonl(out / "sweep.jsonl")
    if not rows:
        raise TTScaleError(f"{out / 'sweep.jsonl'} is empty: run `ttscale sweep --collect-only` once the cells finish")
    summary_path = out / "sweep_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"cells": [], "reach": {}}
    return SweepView(out, rows, summary["cells"], summary.get("reach") or {})


def pooled_scores(view: RunView) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate's ranking score and whether it was kept, over the whole run."""
    cards = [c for p in view.prompts for c in p.cards if not np.isnan(c.score)]
    return np.array([c.score for c in cards]), np.array([c.kept for c in cards], dtype=bool)
