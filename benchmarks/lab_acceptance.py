"""Issue 4's acceptance figures: base scores, best-of-n curves by each verifier, oracle headroom,
and the small-with-search vs large-without-search comparison against total compute.

One pool of N candidates per prompt (seeds = the runner's best-of-n seeds) is drawn per model and
split; every candidate is scored by both lab verifiers and judged once by the evaluator; best-of-n
for every n <= N is a prefix of that pool. The evaluator's pick (oracle) is reported only as the
verifier's headroom, never as a score.

    python benchmarks/lab_acceptance.py --out results/lab --pool 64      # GPU: about 3 minutes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttscale.curves import Pool, bootstrap_curve, exact_prefix_curve, ranking_auc
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.train import default_device, evaluate_generator, judge_all, sample_pairs
from ttscale.lab.verifiers import LabVerifier
from ttscale.seeds import candidate_seed


def timed_pool(gen: LabGenerator, suite: list[dict[str, Any]], n: int, run_seed: int) -> tuple[np.ndarray, float]:
    """n candidates per prompt (prompt-major), and GPU seconds per sample."""
    prompts = [m["prompt"] for m in suite for _ in range(n)]
    seeds = [candidate_seed(run_seed, i, j) for i in range(len(suite)) for j in range(n)]
    sample_pairs(gen, prompts[:256], seeds[:256])  # warm-up
    if gen.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    images = sample_pairs(gen, prompts, seeds)
    if gen.device.type == "cuda":
        torch.cuda.synchronize()
    return images, (time.perf_counter() - t0) / len(prompts)


def score_pool(verifier: LabVerifier, images: np.ndarray, prompts: list[str]) -> tuple[np.ndarray, float]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    verifier.score(x[:512], prompts[:512])
    t0 = time.perf_counter()
    scores = verifier.score(x, prompts)[verifier.metrics[0]].numpy()
    return scores, (time.perf_counter() - t0) / len(prompts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--large-pool", type=int, default=16)
    ap.add_argument("--base-seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument(
        "--verifiers",
        default="lab-visa,lab-clip",
        help="comma-separated NAME or NAME=PATH.safetensors (e.g. an earlier lab-visa to compare against)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = default_device()
    gens = {
        name: LabGenerator.from_pretrained(name, steps=args.steps, device=device) for name in ("lab-small", "lab-large")
    }
    named = [item.partition("=") for item in args.verifiers.split(",")]
    verifiers = {name: LabVerifier.from_pretrained(path or name, device=device) for name, _, path in named}
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "steps": args.steps,
        "verifiers": list(verifiers),
    }
    report["base"] = {
        f"{g}/{split}": evaluate_generator(gen, split, args.base_seeds, run_seed=777, workers=args.workers)
        for g, gen in gens.items()
        for split in ("test", "heldout")
    }
    ns = [1 << i for i in range(args.pool.bit_length()) if 1 << i <= args.pool]
    for g, n in (("lab-small", args.pool), ("lab-large", args.large_pool)):
        gen = gens[g]
        for split in ("test", "heldout"):
            suite = prompt_suite(split)  # type: ignore[arg-type]
            images, sec = timed_pool(gen, suite, n, run_seed=0)
            metas = [m for m in suite for _ in range(n)]
            correct = judge_all(images, metas, args.workers).reshape(len(suite), n)
            key = f"{g}/{split}"
            entry: dict[str, Any] = {
                "pool": n,
                "gpu_seconds_per_sample": sec,
                "candidate_accuracy": float(correct.mean()),
            }
            entry["flops_per_sample"] = gen.flops_per_nfe * gen.nfe_per_sample()
            saved: dict[str, np.ndarray] = {"correct": correct}
            for v, ver in verifiers.items():
                scores, vsec = score_pool(ver, images, [m["prompt"] for m in metas])
                scores = scores.reshape(len(suite), n)
                saved[v] = scores
                pool = Pool([m["tag"] for m in suite], list(scores), list(correct))
                curve = exact_prefix_curve(pool, [x for x in ns if x <= n])
                entry[v] = {
                    "curve": curve,
                    "bootstrap": bootstrap_curve(pool, [x for x in ns if x <= n], draws=100),
                    "ranking_auc": ranking_auc(pool),
                    "gpu_seconds_per_image": vsec,
                    "flops_per_image": ver.flops_per_image,
                }
            np.savez_compressed(args.out / f"pool-{g}-{split}.npz", **saved)
            report[key] = entry
            print(key, "oracle@n", [round(r["oracle"], 3) for r in entry["lab-visa"]["curve"]], flush=True)
    (args.out / "lab_acceptance.json").write_text(json.dumps(report, indent=2))
    print_table(report)


def print_table(report: dict[str, Any]) -> None:
    base_large = report["base"]["lab-large/test"]["overall"]
    print(f"\nbase overall (test, {report['steps']} steps, 1 sample/prompt, pooled over seeds):")
    for key, s in report["base"].items():
        print(f"  {key:<20} {s['overall']:.3f}  per seed {[round(x, 3) for x in s['overall_per_seed']]}  {s['tasks']}")
    print("\nmodel       split    verifier  N   NFEs/prompt  GFLOP/prompt  GPU s/prompt  overall  oracle")
    for key in ("lab-small/test", "lab-small/heldout", "lab-large/test", "lab-large/heldout"):
        e = report[key]
        for v in report["verifiers"]:
            for row in e[v]["curve"]:
                n = row["n"]
                gflop = n * (e["flops_per_sample"] + e[v]["flops_per_image"]) / 1e9
                sec = n * (e["gpu_seconds_per_sample"] + e[v]["gpu_seconds_per_image"])
                nfe = n * 2 * report["steps"]
                print(
                    f"{key:<20} {v:<9} {n:>3} {nfe:>11} {gflop:>13.1f} {sec:>13.4f} {row['overall']:>8.3f} {row['oracle']:>7.3f}"
                )
    small = report["lab-small/test"]["lab-visa"]["curve"]
    cross = next((r for r in small if r["overall"] > base_large), None)
    if cross is None:
        print(f"\nsmall + lab-visa never passes large without search ({base_large:.3f}) within the pool")
        return
    e_s, e_l = report["lab-small/test"], report["lab-large/test"]
    ratio = cross["n"] * (e_s["flops_per_sample"] + e_s["lab-visa"]["flops_per_image"]) / e_l["flops_per_sample"]
    sec_ratio = (
        cross["n"]
        * (e_s["gpu_seconds_per_sample"] + e_s["lab-visa"]["gpu_seconds_per_image"])
        / e_l["gpu_seconds_per_sample"]
    )
    print(
        f"\nsmall + lab-visa passes large without search ({base_large:.3f}) at N={cross['n']} ({cross['overall']:.3f}): "
        f"{ratio:.1f}x the large model's FLOPs per prompt, {sec_ratio:.1f}x its GPU seconds"
    )


if __name__ == "__main__":
    main()
