"""Keep the lab-visa whose best-of-N on the test split is higher (after lab_acceptance.py ran with both).

    python benchmarks/choose_visa.py /tmp/acc/lab_acceptance.json lab-visa lab-visa-v1=.cmp/lab-visa-v1.safetensors

Prints both curves' last points; copies the other file over the shipped lab-visa when it wins.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ttscale.lab.weights import weights_dir


def main() -> None:
    report, current, other = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2], sys.argv[3]
    name, _, path = other.partition("=")
    scores = {v: report["lab-small/test"][v]["curve"][-1]["overall"] for v in (current, name)}
    print(json.dumps({"best_of_n_test": scores}))
    if scores[name] > scores[current]:
        shutil.copyfile(path, weights_dir() / "lab-visa.safetensors")
        print(f"keeping {name} ({path})")
    else:
        print(f"keeping {current}")


if __name__ == "__main__":
    main()
