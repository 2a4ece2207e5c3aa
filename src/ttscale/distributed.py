"""Many GPUs or nodes through Ray: a run's shards as Ray tasks, one GPU each, all writing one output folder.

Shard i of N is exactly `ttscale search --shard i/N`, so the folder holds the images one process would make.
A task whose worker dies (a lost node, the OOM killer) is started again by Ray and resumes its shard from the
prompts it already finished; a user error (a bad model name) is not retried. On several machines the output
folder must be shared (NFS, a mounted bucket), as it must for `--shard` processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ttscale.config import SearchConfig, resolve_device
from ttscale.errors import TTScaleError
from ttscale.runner import PromptOutcome, RunTotals, finished_outcome, is_finished, run
from ttscale.verifiers.pretrained import require


def search_shard(
    config: dict[str, Any], prompts: Sequence[dict[str, Any]], out: str, shard: tuple[int, int]
) -> RunTotals:
    """One Ray task: load the models on the worker's device (Ray sets CUDA_VISIBLE_DEVICES) and run the shard."""
    from ttscale.loading import load_generator, load_run_verifier

    cfg = SearchConfig.model_validate(config)
    device = resolve_device(cfg.device)
    gen = load_generator(
        cfg.generator, steps=cfg.steps, guidance=cfg.guidance, device=device, batch_size=cfg.batch_size
    )
    return run(cfg, prompts, Path(out), gen, load_run_verifier(cfg.verifier, device=device), shard=shard)


def run_on_ray(
    config: SearchConfig,
    prompts: Sequence[dict[str, Any]],
    out: Path,
    workers: int,
    *,
    address: str | None = None,
    gpus_per_worker: float | None = None,
    retries: int = 2,
    on_prompt: Callable[[PromptOutcome], None] | None = None,
    poll_seconds: float = 1.0,
) -> RunTotals:
    """Run `workers` shards as Ray tasks (a local Ray instance, or the cluster at `address`, e.g. "auto").

    `gpus_per_worker` defaults to 1 when the run's device is a GPU and 0 otherwise. `on_prompt` sees each
    prompt as its folder completes (read back from the folder: its spend and candidates, no score).
    """
    ray = require("ray", "running on several GPUs or nodes", extra="cluster")
    if workers < 1:
        raise TTScaleError("--workers must be at least 1")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if resolve_device(config.device).startswith("cuda") else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_retries=retries)(search_shard)
    waiting = set(range(len(prompts)))
    resumed = {i for i in waiting if is_finished(out, i)}  # done by an earlier run: skipped, as `run` says
    payload = config.model_dump(mode="json")
    refs = [task.remote(payload, list(prompts), str(out.resolve()), (i, workers)) for i in range(workers)]
    pending = list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_seconds)
        for index in sorted(waiting):  # report prompts as their folders complete, whichever worker wrote them
            if is_finished(out, index):
                waiting.discard(index)
                if on_prompt is not None:
                    on_prompt(finished_outcome(out, index, skipped=index in resumed))
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
        totals.prompts += part.prompts
        totals.resumed += part.resumed
        totals.candidates += part.candidates
        totals.spend.add(part.spend)
    return totals
