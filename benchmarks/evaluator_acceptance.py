"""Issue 3's acceptance figures for the lab evaluator.

Renders N ground-truth scenes with `ttscale lab render`, evaluates them, then re-pairs the same
images with deliberately wrong prompts, and writes uniform-noise and speckled images under the
right prompts; prints every task's accuracy for the four folders.

    python benchmarks/evaluator_acceptance.py --n 2000 --out /tmp/evaluator-acceptance
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.evaluation import evaluate_folder
from ttscale.folder import iter_samples, write_prompt
from ttscale.images import load_image
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.world import COLORS, COUNTS, SHAPES
from ttscale.prompts import TASKS

OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def wrong_prompt(metadata: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The same task's prompt with one thing changed so the rendered image no longer matches."""
    m = copy.deepcopy(metadata)
    inc = m["include"]
    tag = m["tag"]
    if tag in ("single_object", "two_object"):
        present = {e["class"] for e in inc}
        inc[-1]["class"] = str(rng.choice([s for s in SHAPES if s not in present]))
    elif tag == "counting":
        n = inc[0]["count"]
        other = int(rng.choice([c for c in COUNTS if c != n]))
        inc[0]["count"] = other
        m["exclude"] = [{"class": inc[0]["class"], "count": other + 1}]
    elif tag == "colors":
        inc[0]["color"] = str(rng.choice([c for c in COLORS if c != inc[0]["color"]]))
    elif tag == "position":
        inc[1]["position"][0] = OPPOSITE[inc[1]["position"][0]]
    elif inc[0]["color"] != inc[1]["color"]:
        inc[0]["color"], inc[1]["color"] = inc[1]["color"], inc[0]["color"]
    else:
        inc[0]["color"] = str(rng.choice([c for c in COLORS if c != inc[0]["color"]]))
    m["prompt"] += " (deliberately wrong)"
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/evaluator-acceptance"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    truth = args.out / "rendered"
    subprocess.run(
        [sys.executable, "-m", "ttscale", "lab", "render", "--n", str(args.n), "--out", str(truth)], check=True
    )
    rng = np.random.default_rng(0)
    palette = np.array([*COLORS.values(), (240, 240, 240)], dtype=np.uint8)
    for i, (path, metadata) in enumerate(iter_samples(truth)):
        write_prompt(args.out / "wrong", i, wrong_prompt(metadata, rng), [load_image(path)])
        write_prompt(args.out / "noise", i, metadata, [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)])
        write_prompt(args.out / "speckle", i, metadata, [palette[rng.integers(0, len(palette), (32, 32))]])
    print(f"{'folder':<10}" + "".join(f"{t:>14}" for t in TASKS) + f"{'overall':>10}")
    for name in ("rendered", "wrong", "noise", "speckle"):
        s = evaluate_folder(args.out / name, LabEvaluator())
        print(f"{name:<10}" + "".join(f"{s['tasks'][t]:>14.3f}" for t in TASKS) + f"{s['overall']:>10.3f}")


if __name__ == "__main__":
    main()
