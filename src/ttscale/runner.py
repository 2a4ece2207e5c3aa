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
from dataclasses import dataclass, field
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
    encode_pngs,
    prompt_dir,
    read_jsonl,
    write_jsonl,
    write_prompt,
)
from ttscale.generator import Generator, to_uint8
from ttscale.loading import load_verifier
from ttscale.search import Search, StrategyParams
from ttscale.strategies import get_strategy
from ttscale.verifier import Verifier


@dataclass
class PromptOutcome:
    index: int
    spend: Spend
    candidates: int
    best: float
    skipped: bool = False


@dataclass
class RunTotals:
    prompts: int = 0
    resumed: int = 0
    candidates: int = 0
    spend: Spend = field(default_factory=Spend)


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
    spend_row = {
        "strategy": config.strategy,
        "nfe": spend.nfe,
        "verifier_calls": spend.verifier_calls,
        "generator_flops": spend.generator_flops,
        "verifier_flops": spend.verifier_flops,
        "seconds": spend.seconds,
    }
    atomic_write_text(folder / "spend.json", json.dumps(spend_row) + "\n")
    write_prompt(out, index, metadata, [pngs[j] for j in kept_at])
    return PromptOutcome(index, spend, len(result.candidates), kept[0].score)


def load_judges(params: StrategyParams, device: str) -> dict[str, Verifier]:
    """The extra judges a strategy's parameters name (rounds' `confirm`, early pruning's `cheap_verifier`),
    loaded once for a run, on its device, so that strategies receive objects and never parse a name."""
    return {role: load_verifier(name, device=device) for role in params.judges if (name := getattr(params, role))}


def _with_savings(budget: Budget, saved: Spend) -> Budget:
    """The per-prompt budget plus what earlier prompts left unspent (NFEs and verifier calls)."""
    return Budget(
        nfe=None if budget.nfe is None else budget.nfe + saved.nfe,
        verifier_calls=None if budget.verifier_calls is None else budget.verifier_calls + saved.verifier_calls,
        seconds=budget.seconds,
    )


def is_finished(out: Path, index: int) -> bool:
    """A prompt's folder is complete once its metadata.jsonl is written (last) and its spend recorded."""
    folder = prompt_dir(out, index)
    return (folder / "metadata.jsonl").is_file() and (folder / "spend.json").is_file()


def finished_outcome(out: Path, index: int, skipped: bool = True) -> PromptOutcome:
    """A finished prompt read back from its folder: what it spent, its candidates and its best score."""
    folder = prompt_dir(out, index)
    row = json.loads((folder / "spend.json").read_text())
    spend = Spend(row["nfe"], row["verifier_calls"], row["generator_flops"], row["verifier_flops"], row["seconds"])
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
            saved = Spend(
                nfe=budget.nfe - outcome.spend.nfe if budget.nfe is not None else 0,
                verifier_calls=budget.verifier_calls - outcome.spend.verifier_calls
                if budget.verifier_calls is not None
                else 0,
            )
        totals.prompts += 1
        totals.candidates += outcome.candidates
        totals.spend.add(outcome.spend)
        if on_prompt is not None:
            on_prompt(outcome)
    record |= {
        "finished": datetime.now(UTC).isoformat(),
        "wall_seconds": time.perf_counter() - t0,
        "totals": {
            "prompts": totals.prompts,
            "resumed": totals.resumed,
            "candidates": totals.candidates,
            "nfe": totals.spend.nfe,
            "verifier_calls": totals.spend.verifier_calls,
            "generator_flops": totals.spend.generator_flops,
            "verifier_flops": totals.spend.verifier_flops,
            "search_seconds": totals.spend.seconds,
        },
    }
    atomic_write_text(run_json, json.dumps(record, indent=2) + "\n")
    return totals
