"""Pick the generator checkpoints worth bringing back from a GPU training run and pack them.

Small: every checkpoint whose test overall is in [0.30, 0.70] (the shipped one must land in
[0.35, 0.65]) plus the last; large: the best and the last. Packs into tar files under 16 MB.
"""

import json
import sys
import tarfile
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
keep: list[Path] = []
for size in ("small", "large"):
    rows = [json.loads(line) for line in (src / f"train-{size}.jsonl").read_text().splitlines()][1:]
    for r in rows:
        print(size, r["step"], round(r["test"]["overall"], 3), {k: round(v, 2) for k, v in r["test"]["tasks"].items()})
    if size == "small":
        steps = [r["step"] for r in rows if 0.30 <= r["test"]["overall"] <= 0.70][-5:]
    else:
        steps = [max(rows, key=lambda r: r["test"]["overall"])["step"]]
    steps.append(rows[-1]["step"])
    keep += [src / f"lab-{size}-step{s}.safetensors" for s in sorted(set(steps))]
    (dst / f"train-{size}.jsonl").write_text((src / f"train-{size}.jsonl").read_text())
groups: list[list[Path]] = [[]]
for path in keep:
    if sum(p.stat().st_size for p in groups[-1]) + path.stat().st_size > 15_000_000:
        groups.append([])
    groups[-1].append(path)
for n, group in enumerate(groups, start=1):
    with tarfile.open(dst / f"ckpt{n}.tar", "w") as pack:
        for path in group:
            pack.add(path, arcname=path.name)
print("packed", [p.name for p in keep])
