"""The lab prompt suite in GenEval's metadata format, with train / test / heldout splits.

- `train`: every prompt the lab world can express, minus the held-out combinations.
- `test`: 553 prompts drawn from the train combinations in GenEval's task sizes (80/99/80/94/100/100),
  in-distribution like GenEval is for the models it grades; repeats are allowed where a task has
  fewer distinct prompts than its size (4 shapes give 4 single-object prompts).
- `heldout`: prompts that need a colour/shape or shape/count pair never rendered for training.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Literal

from ttscale.lab.world import (
    COLORS,
    HELDOUT_COLOR_SHAPE,
    HELDOUT_SHAPE_COUNT,
    NUMBER_WORDS,
    PLURALS,
    RELATIONS,
    SHAPES,
    TASK_SIZES,
    article,
)

Split = Literal["train", "test", "heldout"]
SPLITS: tuple[str, ...] = ("train", "test", "heldout")
# Sizes of the held-out split per task (only tasks that can name a held-out pair appear).
HELDOUT_SIZES: dict[str, int] = {"counting": 16, "colors": 24, "color_attr": 60}
_SUITE_SEED = 20250101


def _a(word: str) -> str:
    return f"{article(word)} {word}"


def single_object(shape: str) -> dict[str, Any]:
    return {"tag": "single_object", "include": [{"class": shape, "count": 1}], "prompt": f"a photo of {_a(shape)}"}


def two_object(a: str, b: str) -> dict[str, Any]:
    return {
        "tag": "two_object",
        "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
        "prompt": f"a photo of {_a(a)} and {_a(b)}",
    }


def counting(shape: str, n: int) -> dict[str, Any]:
    return {
        "tag": "counting",
        "include": [{"class": shape, "count": n}],
        "exclude": [{"class": shape, "count": n + 1}],
        "prompt": f"a photo of {NUMBER_WORDS[n]} {PLURALS[shape]}",
    }


def colors(color: str, shape: str) -> dict[str, Any]:
    return {
        "tag": "colors",
        "include": [{"class": shape, "count": 1, "color": color}],
        "prompt": f"a photo of {_a(color)} {shape}",
    }


def position(a: str, relation: str, b: str) -> dict[str, Any]:
    return {
        "tag": "position",
        "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [relation, 0]}],
        "prompt": f"a photo of {_a(a)} {relation} {_a(b)}",
    }


def color_attr(c1: str, a: str, c2: str, b: str) -> dict[str, Any]:
    return {
        "tag": "color_attr",
        "include": [{"class": a, "count": 1, "color": c1}, {"class": b, "count": 1, "color": c2}],
        "prompt": f"a photo of {_a(c1)} {a} and {_a(c2)} {b}",
    }


def _all_prompts() -> dict[str, list[dict[str, Any]]]:
    pairs = [(a, b) for a, b in itertools.permutations(SHAPES, 2)]
    return {
        "single_object": [single_object(s) for s in SHAPES],
        "two_object": [two_object(a, b) for a, b in pairs],
        "counting": [counting(s, n) for s in SHAPES for n in (2, 3, 4)],
        "colors": [colors(c, s) for s in SHAPES for c in COLORS],
        "position": [position(a, r, b) for a, b in pairs for r in RELATIONS],
        "color_attr": [color_attr(c1, a, c2, b) for a, b in pairs for c1 in COLORS for c2 in COLORS],
    }


def is_heldout(metadata: dict[str, Any]) -> bool:
    """True when the prompt needs a combination that training never shows."""
    for entry in metadata["include"]:
        if (entry.get("color"), entry["class"]) in HELDOUT_COLOR_SHAPE:
            return True
        if metadata["tag"] == "counting" and (entry["class"], entry["count"]) in HELDOUT_SHAPE_COUNT:
            return True
    return False


def _fill(pool: list[dict[str, Any]], size: int, rng: random.Random) -> list[dict[str, Any]]:
    """`size` prompts covering the pool as evenly as possible, in a fixed shuffled order."""
    out: list[dict[str, Any]] = []
    while len(out) < size:
        batch = list(pool)
        rng.shuffle(batch)
        out.extend(batch[: size - len(out)])
    return out


def prompt_suite(split: Split = "test") -> list[dict[str, Any]]:
    """The split's prompts as GenEval metadata dicts, in GenEval's task order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rng = random.Random(_SUITE_SEED)
    suite: list[dict[str, Any]] = []
    for task, pool in _all_prompts().items():
        seen = [p for p in pool if not is_heldout(p)]
        held = [p for p in pool if is_heldout(p)]
        if split == "train":
            suite.extend(seen)
        elif split == "test":
            suite.extend(_fill(seen, TASK_SIZES[task], rng))
        elif held:
            suite.extend(_fill(held, HELDOUT_SIZES[task], rng))
    return suite


def representative_subset(per_task: int, split: Split = "test") -> list[dict[str, Any]]:
    """`per_task` prompts of each task, evenly spread over the split (for demos and sweeps)."""
    suite = prompt_suite(split)
    out: list[dict[str, Any]] = []
    for task in TASK_SIZES:
        pool = [p for p in suite if p["tag"] == task]
        if pool:
            k = min(per_task, len(pool))
            picks = sorted({round(i * (len(pool) - 1) / max(k - 1, 1)) for i in range(k)})
            out.extend(pool[i] for i in picks)
    return out
