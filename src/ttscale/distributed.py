"""Many GPUs or nodes through Ray: a run's (or a sweep's) shards as Ray tasks, one GPU each, writing one folder.

Shard i of N is exactly `--shard i/N`, so the folder holds the images one process would make. A task whose
worker dies (a lost node, the OOM killer) is started again by Ray and resumes its shard from the prompts it
already finished; a user error (a bad model name) is not retried. On several machines the output folder must
be shared (NFS, a mounted bucket), as it must for `--shard` processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttscale.config import SearchConfig, resolve_device
from ttscale.errors import TTScaleError
from ttscale.optional import require
from ttscale.outcome import PromptOutcome, RunTotals
from ttscale.registry import load_models
from ttscale.runner import finished_outcome, is_finished, run
from ttscale.sweep import SweepSpec, cell, run_cells, run_sweep

OnPrompt = Callable[[PromptOutcome], None]


def search_shard(
    config: SearchConfig, prompts: Sequence[dict[str, Any]], out: Path, shard: tuple[int, int]
) -> RunTotals:
    """One Ray task of `run_on_ray`: the models are loaded on the worker, on its GPU (Ray sets CUDA_VISIBLE_DEVICES)."""
    gen, ver = load_models(config)
    return run(config, prompts, out, gen, ver, shard=shard)


def sweep_shard(spec: SweepSpec, prompts: list[dict[str, Any]], out: Path, shard: tuple[int, int]) -> RunTotals:
    """One Ray task of `sweep_on_ray`, loading its models as `search_shard` does."""
    gen, ver = load_models(spec.base)
    if ver is None:
        raise TTScaleError("a sweep compares strategies by their verifier; give one (not 'none')")
    run_sweep(spec, prompts, out, gen, ver, shard=shard)
    return RunTotals()  # a sweep's totals live in its cells' folders; `collect` reads them


@dataclass(frozen=True)
class Cluster:
    """Where shards run: `workers` Ray tasks on a local Ray instance, or on the cluster at `address` ("auto").

    `gpus_per_worker` defaults to 1 when the run's device is a GPU and 0 otherwise; a task whose worker dies
    is started again up to `retries` times; the driver looks for finished prompt folders every `poll_seconds`.
    """

    workers: int
    address: str | None = None
    gpus_per_worker: float | None = None
    retries: int = 2
    poll_seconds: float = 1.0


def run_on_ray(
    config: SearchConfig,
    prompts: Sequence[dict[str, Any]],
    out: Path,
    cluster: Cluster,
    on_prompt: OnPrompt | None = None,
) -> RunTotals:
    """`runner.run` over the cluster's workers. `on_prompt` sees each prompt as its folder completes (read back
    from the folder: its spend, candidates and best score)."""
    folders = [(out, i) for i in range(len(prompts))]
    shards = [(config, list(prompts), out.resolve(), (i, cluster.workers)) for i in range(cluster.workers)]
    return _on_ray(search_shard, shards, folders, config, cluster, on_prompt)


def sweep_on_ray(
    spec: SweepSpec, prompts: list[dict[str, Any]], out: Path, cluster: Cluster, on_prompt: OnPrompt | None = None
) -> None:
    """`sweep.run_sweep` over the cluster's workers, as `run_on_ray`; `sweep.collect` then reads the cells."""
    folders = [(cell(out, *c), i) for c in run_cells(spec) for i in range(len(prompts))]
    shards = [(spec, prompts, out.resolve(), (i, cluster.workers)) for i in range(cluster.workers)]
    _on_ray(sweep_shard, shards, folders, spec.base, cluster, on_prompt)


def _on_ray(
    task_fn: Callable[..., RunTotals],
    shards: list[tuple[Any, ...]],
    folders: list[tuple[Path, int]],
    config: SearchConfig,
    cluster: Cluster,
    on_prompt: OnPrompt | None,
) -> RunTotals:
    """One task per shard's arguments; report prompt folders as they complete, and sum the shards' totals."""
    ray = require("ray", "running on several GPUs or nodes", extra="cluster")
    workers = len(shards)
    if workers < 1:
        raise TTScaleError("--workers must be at least 1")
    if not ray.is_initialized():
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    gpus = cluster.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resolve_device(config.device).startswith("cuda") else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=cluster.retries)(task_fn)
    resumed = {f for f in folders if is_finished(*f)}  # done by an earlier run: skipped, as `run` says
    refs = [task.remote(*arguments) for arguments in shards]
    waiting, pending = list(folders), list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=cluster.poll_seconds)
        finished = [is_finished(*f) for f in waiting]  # whichever worker wrote them
        for (folder, index), now in zip(waiting, finished, strict=True):
            if now and on_prompt is not None:
                on_prompt(finished_outcome(folder, index, skipped=(folder, index) in resumed))
        waiting = [f for f, now in zip(waiting, finished, strict=True) if not now]
    totals = RunTotals()
    for shard_index, ref in enumerate(refs):
        try:
            part: RunTotals = ray.get(ref)
        except ray.exceptions.RayError as err:  # a user error, or a worker lost more often than `retries`
            cause = getattr(err, "cause", None)
            reason = str(cause) if isinstance(cause, TTScaleError) else str(err).strip().splitlines()[-1]
            raise TTScaleError(
                f"shard {shard_index}/{workers} failed: {reason}; finished prompts are kept, the same command resumes"
            ) from None
        totals.add(part)
    return totals
