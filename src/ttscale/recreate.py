"""Re-create any candidate of a run from what its folder records: its seed, its `path` and the run's settings.

A candidate's image is a function of the generator, the prompt, the candidate's record in candidates.jsonl and
a few settings of its run (`RunContext`), and this module computes it again from those alone, with
`ttscale.samplers` and `ttscale.seeds`, as each strategy's docstring describes its candidates:

- best-of-n, random-search, rounds, adaptive: the plain run of `seed` (`generator.sample(prompt, [seed])`).
- early-pruning: the plain step-level run of `seed`; a ["pruned_at", step, rank] path only says that it
  survived the cut at that step.
- zero-order: the initial noise of `seed`, moved by each ["perturb", round, pseed, similarity] of `path` to
  similarity * x + sqrt(1 - similarity**2) * gaussian([pseed]); then the plain run from it (a consistency
  sampler's step noise staying `seed`'s).
- search-over-paths: the plain run of `seed` except at each ["branch", step, bseed] of `path`, where x at
  step + 1 is `samplers.step(x, denoise(x, step), sched, step, eta, gaussian([bseed]))`.
- particle-filter: at every step i the particle takes `samplers.step(..., eta, noise)` with the noise
  `gaussian([candidate_seed(run_seed, prompt_index, i * P + slot, "sde")])`, P being the prompt's number of
  candidates (its particles) and `slot` the slot its lineage held then: the parent of `path`'s next
  ["resample", at, parent] with at > i, or after the last one the candidate's own `index`.

Search-over-paths and particle-filter also need the run's `eta`. The re-created image is the stored one bit for
bit when the run computed each trajectory in a batch of its own (`batch_size` 1) on the same kind of device;
at other batch sizes the batched kernels round differently (about 1e-5 on the CPU), so a stored image can
differ from its re-creation by one uint8 level in a few pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ttscale.errors import TTScaleError
from ttscale.folder import prompt_dir, read_jsonl
from ttscale.generator import Generator, StepGenerator, require_steps
from ttscale.samplers import Denoise, advance, seed_noise, step
from ttscale.seeds import candidate_seed, gaussian

PLAIN = ("best-of-n", "random-search", "rounds", "adaptive")  # candidates are their seeds' plain runs


@dataclass(frozen=True)
class RunContext:
    """What re-creating a candidate needs besides its own record: run.json's strategy, parameters and seed,
    the prompt's index, and how many candidates the prompt has (the particle filter's particle count)."""

    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    run_seed: int = 0
    prompt_index: int = 0
    candidates: int = 1


def recreate(generator: Generator, prompt: str, record: Mapping[str, Any], run: RunContext) -> torch.Tensor:
    """The image of the candidate `record` (a line of candidates.jsonl), (3, H, W) in [0, 1] on the CPU.

    `generator` must be the run's, with its steps and guidance.
    """
    seed, path = int(record["seed"]), [list(entry) for entry in record.get("path", [])]
    with torch.no_grad():
        if run.strategy in PLAIN:
            _expect(path, (), run.strategy)
            return generator.sample(prompt, [seed])[0].cpu()
        gen = require_steps(generator, run.strategy)
        cond = gen.encode(prompt)

        def denoise(x: torch.Tensor, i: int) -> torch.Tensor:
            return gen.denoise(x, i, cond)

        if run.strategy == "early-pruning":
            _expect(path, ("pruned_at",), run.strategy)
            x = _finish(gen, denoise, gen.noise([seed]), seed, 0, None)
        elif run.strategy == "zero-order":
            _expect(path, ("perturb",), run.strategy)
            x = _finish(gen, denoise, _perturbed(gen.noise([seed]), path), seed, 0, None)
        elif run.strategy == "search-over-paths":
            _expect(path, ("branch",), run.strategy)
            x = _branched(gen, denoise, seed, path, float(_param(run, "eta")))
        elif run.strategy == "particle-filter":
            _expect(path, ("resample",), run.strategy)
            x = _particle(gen, denoise, seed, path, int(record["index"]), run)
        else:
            raise TTScaleError(f"cannot re-create candidates of strategy {run.strategy!r}: its recipe is not known")
        return gen.decode(x)[0].cpu()


def recreate_candidate(out: Path, prompt_index: int, index: int, generator: Generator) -> torch.Tensor:
    """Candidate `index` of prompt `prompt_index` in the run folder `out`, re-created (see `recreate`)."""
    config = _run_config(out)
    folder = prompt_dir(out, prompt_index)
    records = read_jsonl(folder / "candidates.jsonl")
    record = next((r for r in records if r["index"] == index), None)
    if record is None:
        raise TTScaleError(f"{folder / 'candidates.jsonl'} has no candidate {index} (it holds 0 … {len(records) - 1})")
    prompt = str(read_jsonl(folder / "metadata.jsonl")[0]["prompt"])
    run = RunContext(config["strategy"], config.get("params", {}), config["seed"], prompt_index, len(records))
    return recreate(generator, prompt, record, run)


def _run_config(out: Path) -> dict[str, Any]:
    """The config of the run in `out`: run.json's, or a shard's (every shard records the same config)."""
    candidates = [out / "run.json", *sorted(out.glob("run.shard*of*.json"))]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise TTScaleError(f"{out} has no run.json: re-creating a candidate needs the run's strategy and seed")
    config: dict[str, Any] = json.loads(found.read_text())["config"]
    return config


def _expect(path: Sequence[Sequence[Any]], ops: tuple[str, ...], strategy: str) -> None:
    unknown = next((entry for entry in path if not entry or entry[0] not in ops), None)
    if unknown is not None:
        wanted = f"only {', '.join(ops)} entries" if ops else "an empty path"
        raise TTScaleError(f"a {strategy} candidate's path holds {unknown!r}; expected {wanted}")


def _param(run: RunContext, name: str) -> Any:
    """A strategy parameter as the run used it: given in the config, else the strategy's default."""
    from ttscale.strategies import get_strategy

    return getattr(get_strategy(run.strategy).params.model_validate(dict(run.params)), name)


def _finish(
    gen: StepGenerator, denoise: Denoise, x: torch.Tensor, seed: int, start: int, prev_x0: torch.Tensor | None
) -> torch.Tensor:
    """x sampled from grid point `start` to the end with the schedule's solver, step noise from `seed`'s stream."""
    return advance(denoise, x, gen.schedule(), start, gen.schedule().steps, prev_x0, noise=seed_noise([seed], x))[0]


def _perturbed(x: torch.Tensor, path: Sequence[Sequence[Any]]) -> torch.Tensor:
    """Zero-order's initial noise: x moved by each ["perturb", round, pseed, similarity] in turn."""
    for _, _round, pseed, similarity in path:
        fresh = gaussian([int(pseed)], tuple(x.shape[1:])).to(x.device)
        x = similarity * x + math.sqrt(1.0 - similarity**2) * fresh
    return x


def _branched(
    gen: StepGenerator, denoise: Denoise, seed: int, path: Sequence[Sequence[Any]], eta: float
) -> torch.Tensor:
    """Search over paths: deterministic between branch steps, one stochastic step of the branch noise at each."""
    sched, x = gen.schedule(), gen.noise([seed])
    noise, prev_x0, grid = seed_noise([seed], x), None, 0
    for _, at, branch_seed in path:
        x, prev_x0 = advance(denoise, x, sched, grid, at, prev_x0, noise=noise)
        x0 = denoise(x, at)
        fresh = gaussian([int(branch_seed)], tuple(x.shape[1:])).to(x.device)
        x = step(x, x0, sched, at, eta=eta, noise=fresh, prev_x0=prev_x0)
        prev_x0, grid = (x0 if eta == 0.0 else None), at + 1  # a re-noised child starts its solver history afresh
    return _finish(gen, denoise, x, seed, grid, prev_x0)


def _particle(
    gen: StepGenerator, denoise: Denoise, seed: int, path: Sequence[Sequence[Any]], slot: int, run: RunContext
) -> torch.Tensor:
    """A particle's lineage: every step stochastic, with the "sde" noise of the slot the lineage held then."""
    sched, x, eta = gen.schedule(), gen.noise([seed]), float(_param(run, "eta"))
    prev_x0: torch.Tensor | None = None
    for i in range(sched.steps):
        x0 = denoise(x, i)
        held = next((int(parent) for _, at, parent in path if at > i), slot)  # after step i's resampling
        j = i * run.candidates + held
        fresh = gaussian([candidate_seed(run.run_seed, run.prompt_index, j, "sde")], tuple(x.shape[1:]))
        x = step(x, x0, sched, i, eta=eta, noise=fresh.to(x.device), prev_x0=prev_x0)
        prev_x0 = x0 if eta == 0.0 else None
    return x
