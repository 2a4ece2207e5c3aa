"""The runner: prompts in, output folder out; resumable, shardable, the same images whatever the split.

Each prompt's folder is finished by writing its metadata.jsonl last, so after a crash a rerun
skips every prompt that has one and redoes the rest. Seeds come from (run seed, prompt index,
candidate index), so shards and resumed runs produce exactly what one uninterrupted run would.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ttscale import __version__
from ttscale.budget import Budget, Meter, Spend
from ttscale.candidate import rank_and_keep
from ttscale.config import SearchConfig, resolve_device
from ttscale.errors import TTScaleError
from ttscale.folder import (
    atomic_write_bytes,
    atomic_write_text,
    prompt_dir,
    read_jsonl,
    write_jsonl,
    write_prompt,
)
from ttscale.generator import Generator
from ttscale.images import encode_pngs, to_uint8
from ttscale.outcome import PromptOutcome, RunTotals
from ttscale.registry import load_judges
from ttscale.search import Search
from ttscale.strategies import get_strategy
from ttscale.verifier import Verifier


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None


def _versions() -> dict[str, str]:
    import numpy
    import torch

    return {
        "ttscale": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def search_prompt(
    config: SearchConfig,
    generator: Generator,
    verifier: Verifier | None,
    index: int,
    metadata: dict[str, Any],
    out: Path,
    budget: Budget | None = None,
    judges: dict[str, Verifier] | None = None,
) -> PromptOutcome:
    """Run the strategy on one prompt and write its folder (candidates first, metadata.jsonl last).

    `judges` are the extra verifiers the strategy's parameters name (`load_judges`), metered by this prompt.
    """
    meter = Meter(budget or config.budget)
    search = Search.metered(
        generator,
        verifier,
        meter,
        metadata["prompt"],
        judges=judges,
        prompt_index=index,
        run_seed=config.seed,
        metric=config.metric,
        batch_size=config.batch_size,
    )
    result = get_strategy(config.strategy).run(search, config.params)
    if not result.candidates:
        raise TTScaleError(
            f"prompt {index}: the budget allowed no complete candidate; one costs {generator.nfe_per_sample()} NFEs "
            "and 1 verifier call"
        )
    kept = rank_and_keep(result.candidates, config.k)
    spend = meter.close()
    folder = prompt_dir(out, index)
    order = {id(c): j for j, c in enumerate(result.candidates)}
    kept_at = [order[id(c)] for c in kept]
    # each image written is converted and PNG-encoded once (a kept sample is its candidate's file, byte for byte)
    written = list(range(len(result.candidates))) if config.save_candidates else kept_at
    images = to_uint8(torch.stack([result.candidates[j].image for j in written]))
    pngs = dict(zip(written, encode_pngs(images), strict=True))
    if config.save_candidates:
        for j, png in pngs.items():
            atomic_write_bytes(folder / "candidates" / f"{j:05d}.png", png)
    write_jsonl(folder / "candidates.jsonl", [c.record(j) for j, c in enumerate(result.candidates)])
    write_jsonl(folder / "rounds.jsonl", [r.line() for r in result.rounds])
    atomic_write_text(folder / "spend.json", json.dumps({"strategy": config.strategy} | spend.record()) + "\n")
    write_prompt(out, index, metadata, [pngs[j] for j in kept_at])
    return PromptOutcome(index, spend, len(result.candidates), kept[0].score)


def _with_savings(budget: Budget, saved: Spend) -> Budget:
    """The per-prompt budget plus what earlier prompts left unspent (NFEs, verifier calls and judge requests)."""
    return Budget(
        nfe=None if budget.nfe is None else budget.nfe + int(saved.nfe),
        verifier_calls=None if budget.verifier_calls is None else budget.verifier_calls + int(saved.verifier_calls),
        judge_requests=None if budget.judge_requests is None else budget.judge_requests + int(saved.judge_requests),
        seconds=budget.seconds,
    )


def _unspent(budget: Budget, spend: Spend) -> Spend:
    """What a prompt left of its budget; a request limit can be passed by the call that reached it, so none left."""
    return Spend(
        nfe=0 if budget.nfe is None else budget.nfe - spend.nfe,
        verifier_calls=0 if budget.verifier_calls is None else budget.verifier_calls - spend.verifier_calls,
        judge_requests=0 if budget.judge_requests is None else max(0, budget.judge_requests - spend.judge_requests),
    )


def check_split(config: SearchConfig, parts: int) -> None:
    """Refuse `carry_over` on a run split into `parts` shards or workers: each would restart the savings at its
    own first prompt, so the folder would depend on the split (shards must write what one process writes)."""
    if config.carry_over and parts > 1:
        raise TTScaleError(
            "carry_over hands each prompt's unspent budget to the next, so every prompt must run in one process "
            "in order: leave out --shard and --workers, or set carry_over to false"
        )


def is_finished(out: Path, index: int) -> bool:
    """A prompt's folder is complete once its metadata.jsonl is written (last) and its spend recorded."""
    folder = prompt_dir(out, index)
    return (folder / "metadata.jsonl").is_file() and (folder / "spend.json").is_file()


def finished_outcome(out: Path, index: int, skipped: bool = True) -> PromptOutcome:
    """A finished prompt read back from its folder: what it spent, its candidates and its best score."""
    folder = prompt_dir(out, index)
    spend = Spend.from_record(json.loads((folder / "spend.json").read_text()))
    records = read_jsonl(folder / "candidates.jsonl")
    best = next((float(r["score"]) for r in records if r["rank"] == 0), float("nan"))
    return PromptOutcome(index, spend, len(records), best, skipped)


def run(
    config: SearchConfig,
    prompts: Sequence[dict[str, Any]],
    out: Path,
    generator: Generator,
    verifier: Verifier | None,
    *,
    shard: tuple[int, int] = (0, 1),
    on_prompt: Callable[[PromptOutcome], None] | None = None,
    judges: dict[str, Verifier] | None = None,
) -> RunTotals:
    """Search every prompt of this shard into `out`; prompts already complete there are skipped.

    The strategy's extra judges are loaded here (`load_judges`) unless given.
    """
    shard_index, shards = shard
    if not 0 <= shard_index < shards:
        raise TTScaleError(f"shard {shard_index}/{shards}: the index must be in 0..{shards - 1}")
    check_split(config, shards)
    out.mkdir(parents=True, exist_ok=True)
    run_json = out / "run.json" if shards == 1 else out / f"run.shard{shard_index}of{shards}.json"
    previous = json.loads(run_json.read_text()) if run_json.is_file() else None
    if previous is not None and previous["config"] != config.model_dump(mode="json"):
        raise TTScaleError(
            f"{out} holds a run with a different config; use a new --out folder or the same config to resume"
        )
    started = datetime.now(UTC).isoformat()
    record: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "versions": _versions(),
        "git_revision": _git_revision(),
        "started": previous["started"] if previous else started,
        "resumed_at": [*previous.get("resumed_at", []), started] if previous else [],
        "prompts": len(prompts),
        "shard": [shard_index, shards],
    }
    atomic_write_text(run_json, json.dumps(record, indent=2) + "\n")
    if judges is None:
        judges = load_judges(config.params, resolve_device(config.device))
    totals = RunTotals()
    t0 = time.perf_counter()
    saved = Spend()  # unspent budget carried to the next prompt (config.carry_over)
    for index, metadata in enumerate(prompts):
        if index % shards != shard_index:
            continue
        budget = _with_savings(config.budget, saved) if config.carry_over else config.budget
        if is_finished(out, index):
            outcome = finished_outcome(out, index)
            totals.resumed += 1
        else:
            outcome = search_prompt(config, generator, verifier, index, metadata, out, budget, judges)
        if config.carry_over:
            saved = _unspent(budget, outcome.spend)
        totals.prompts += 1
        totals.candidates += outcome.candidates
        totals.spend.add(outcome.spend)
        if on_prompt is not None:
            on_prompt(outcome)
    record |= {
        "finished": datetime.now(UTC).isoformat(),
        "wall_seconds": time.perf_counter() - t0,
        "totals": totals.record(),
    }
    atomic_write_text(run_json, json.dumps(record, indent=2) + "\n")
    return totals
