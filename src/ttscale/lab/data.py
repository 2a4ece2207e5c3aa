"""Training data for the lab models: rendered scenes for the train split, tasks in equal shares.

Rendered scenes keep their ground truth, so besides the image a sample can carry grounding maps: how much of
each grid cell every shape and every colour covers. lab-visa learns from them where a word's object is.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ttscale.lab.prompts import prompt_suite
from ttscale.lab.scenes import Scene, render, sample_scene, shape_mask
from ttscale.lab.world import COLORS, DEFAULT_RESOLUTION, SHAPES, TASKS

# Grounding classes: the shapes, then the colours (the rows of a grounding map).
GROUNDING_CLASSES: tuple[str, ...] = (*SHAPES, *COLORS)


def _by_task(split: str) -> list[list[dict[str, Any]]]:
    suite = prompt_suite(split)  # type: ignore[arg-type]
    return [pool for t in TASKS if (pool := [p for p in suite if p["tag"] == t])]


def grounding_maps(scene: Scene, resolution: int, grid: int) -> np.ndarray:
    """(classes, grid * grid) uint8: the share of each grid cell that each shape and each colour covers, x 255."""
    cover = np.zeros((len(GROUNDING_CLASSES), resolution, resolution), dtype=np.float32)
    for obj in scene.objects:
        mask = shape_mask(obj, resolution)
        cover[SHAPES.index(obj.shape)][mask] = 1  # objects never overlap (`sample_scene` keeps them apart)
        cover[len(SHAPES) + list(COLORS).index(obj.color)][mask] = 1
    cell = resolution // grid
    pooled = cover.reshape(len(cover), grid, cell, grid, cell).mean((2, 4))
    return np.asarray((pooled * 255).round().astype(np.uint8).reshape(len(cover), grid * grid))


def _render_chunk(args: tuple[int, int, str, int, int]) -> tuple[np.ndarray, list[int], np.ndarray]:
    seed, n, split, resolution, grid = args
    rng = np.random.default_rng(seed)
    tasks = _by_task(split)
    flat = [p for pool in tasks for p in pool]
    offsets = np.cumsum([0] + [len(p) for p in tasks])
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    maps = np.zeros((n, len(GROUNDING_CLASSES), grid * grid), dtype=np.uint8)
    which = []
    for i in range(n):
        task = int(rng.integers(len(tasks)))
        j = int(offsets[task] + rng.integers(len(tasks[task])))
        scene = sample_scene(flat[j], rng, training=True, resolution=resolution)
        images[i] = render(scene, resolution)
        if grid:
            maps[i] = grounding_maps(scene, resolution, grid)
        which.append(j)
    return images, which, maps


def render_dataset(
    n: int, seed: int, split: str = "train", workers: int = 1, resolution: int = DEFAULT_RESOLUTION
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """`n` (image, prompt metadata) pairs; the same `seed` and `n` give the same data for any `workers`."""
    images, metas, _ = render_grounded(n, seed, split, workers, resolution, grid=0)
    return images, metas


def render_grounded(
    n: int, seed: int, split: str = "train", workers: int = 1, resolution: int = DEFAULT_RESOLUTION, grid: int = 8
) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
    """`render_dataset`'s pairs (the same images) and their grounding maps on a grid x grid grid (none if 0)."""
    chunk = 4096
    jobs = [
        (seed * 1_000_003 + c, min(chunk, n - c * chunk), split, resolution, grid)
        for c in range((n + chunk - 1) // chunk)
    ]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    else:
        parts = [_render_chunk(j) for j in jobs]
    flat = [p for pool in _by_task(split) for p in pool]
    images = np.concatenate([p[0] for p in parts])
    return images, [flat[j] for p in parts for j in p[1]], np.concatenate([p[2] for p in parts])
