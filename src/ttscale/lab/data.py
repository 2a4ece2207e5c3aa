"""Training data for the lab models: rendered scenes for the train split, tasks in equal shares."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ttscale.lab.prompts import prompt_suite
from ttscale.lab.scenes import render, sample_scene
from ttscale.lab.world import DEFAULT_RESOLUTION, TASKS


def _by_task(split: str) -> list[list[dict[str, Any]]]:
    suite = prompt_suite(split)  # type: ignore[arg-type]
    return [pool for t in TASKS if (pool := [p for p in suite if p["tag"] == t])]


def _render_chunk(args: tuple[int, int, str, int]) -> tuple[np.ndarray, list[int]]:
    seed, n, split, resolution = args
    rng = np.random.default_rng(seed)
    tasks = _by_task(split)
    flat = [p for pool in tasks for p in pool]
    offsets = np.cumsum([0] + [len(p) for p in tasks])
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    which = []
    for i in range(n):
        task = int(rng.integers(len(tasks)))
        j = int(offsets[task] + rng.integers(len(tasks[task])))
        images[i] = render(sample_scene(flat[j], rng, training=True, resolution=resolution), resolution)
        which.append(j)
    return images, which


def render_dataset(
    n: int, seed: int, split: str = "train", workers: int = 1, resolution: int = DEFAULT_RESOLUTION
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """`n` (image, prompt metadata) pairs; the same `seed` and `n` give the same data for any `workers`."""
    chunk = 4096
    jobs = [
        (seed * 1_000_003 + c, min(chunk, n - c * chunk), split, resolution) for c in range((n + chunk - 1) // chunk)
    ]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    else:
        parts = [_render_chunk(j) for j in jobs]
    flat = [p for pool in _by_task(split) for p in pool]
    images = np.concatenate([p[0] for p in parts])
    return images, [flat[j] for p in parts for j in p[1]]
