"""Merge the rows of sweeps run over different seeds (e.g. a GPU call that timed out, then `SEEDS=2` in another)
into one sweep.jsonl + sweep_summary.json, with the mean and spread over all seeds.

    python benchmarks/merge_sweeps.py results/lab-sweep-h100 results/lab-sweep-h100/sweep.jsonl seed2/sweep.jsonl

The same (strategy, budget, seed) twice is refused: merging must not count a seed double.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ttscale.sweep import aggregate, reach, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the merged sweep.jsonl and sweep_summary.json")
    ap.add_argument("rows", type=Path, nargs="+", help="sweep.jsonl files to merge")
    args = ap.parse_args()
    rows = [json.loads(line) for path in args.rows for line in path.read_text().splitlines() if line.strip()]
    keys = [(r["strategy"], r["budget"], r["seed"]) for r in rows]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SystemExit(f"these cells appear more than once: {twice[:5]}")
    summary = aggregate(rows)
    top = max(r["budget"] for r in rows if r["strategy"] == "best-of-n")
    reached = reach(summary, "best-of-n", top)
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out, rows, summary, reached)
    seeds = sorted({r["seed"] for r in rows})
    print(f"{len(rows)} rows over seeds {seeds} -> {args.out}")
    for strategy, hit in reached["strategies"].items():
        where = f"at {hit['nfe']:.0f} NFEs ({hit['ratio']:.1%})" if hit else "never within the budgets"
        print(f"{strategy}: reaches best-of-n@{top} ({reached['score']:.3f}) {where}")


if __name__ == "__main__":
    main()
