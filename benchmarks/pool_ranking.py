"""How well each verifier ranks one prompt's candidates, per task, from pools lab_acceptance.py saved.

    python benchmarks/pool_ranking.py results/lab-acceptance-h100

Reads `pool-<model>-<split>.npz` (the evaluator's verdicts and every verifier's scores, prompt-major, in
the split's prompt order) and prints `ttscale.curves.ranking_auc` per verifier: the within-prompt ROC-AUC
that best-of-N selection depends on, which a verifier's pooled AUC can hide.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ttscale.curves import Pool, ranking_auc
from ttscale.lab.prompts import prompt_suite


def main() -> None:
    folder = Path(sys.argv[1])
    for path in sorted(folder.glob("pool-*.npz")):
        split = path.stem.rsplit("-", 1)[1]
        tags = [m["tag"] for m in prompt_suite(split)]  # type: ignore[arg-type]
        data = np.load(path)
        print(path.stem)
        for verifier in (k for k in data.files if k != "correct"):
            pool = Pool(tags, list(data[verifier]), list(data["correct"]))
            aucs = ranking_auc(pool)
            print(f"  {verifier:<12} " + "  ".join(f"{t} {a:.3f}" for t, a in aucs.items()))


if __name__ == "__main__":
    main()
