"""The GPU benchmarks cannot run in CI, but their configs and code paths can: these keep them from rotting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "sd15",
    "sana-600m",
    "sana-sprint-1.6b",
    "pixart-sigma",
    "sdxl",
    "sd3-medium",
    "sana-1.5-4.8b",
    "flux-schnell",
    "flux-dev",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_real_shape_pipelines_match_the_released_parameter_counts() -> None:
    """Every family's pipeline assembles on the meta device with its denoiser and encoders at the real size."""
    done = _run("benchmarks/diffusers_real_shapes.py", "--check-shapes")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {r["family"] for r in rows} == FAMILIES
    assert not [r for r in rows if "error" in r]


def test_real_shape_benchmark_times_every_way_on_tiny_sana_and_sprint(tmp_path: Path) -> None:
    """bench()'s code path (search, batched call, naive loop, the split, repeats) on the CPU; figures not checked."""
    done = _run("benchmarks/diffusers_real_shapes.py", "--smoke", "--n", "2", "--repeats", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "diffusers_real_shapes.json").read_text())["results"]
    assert [r["family"] for r in rows] == ["sana-tiny", "sana-sprint-tiny"] and not [r for r in rows if "error" in r]
    for r in rows:
        assert r["candidates"] == 2 and r["repeats"] == 2 and len(r["ttscale_s_per_candidate_runs"]) == 2
        assert r["nfe"] == 2 * 2 * (1 if "sprint" in r["family"] else 2)  # 2 steps, CFG but for Sprint
        ways = (
            "ttscale_best_of_n_s_per_candidate",
            "diffusers_batched_s_per_image",
            "diffusers_naive_loop_s_per_image",
        )
        assert min(r[way] for way in ways) > 0


def test_verifier_throughput_runs_every_verifier_at_smoke_size(tmp_path: Path) -> None:
    """The benchmark's code path for each verifier and for the SANA generator it is set against (ANCHORS.md's two
    baselines and ttscale's sampling, in the same run) works; figures at smoke size mean nothing and are not checked."""
    done = _run("benchmarks/verifier_throughput.py", "--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"verifier"')]
    measured = {r["verifier"].split(",")[0] for r in rows if r["images_per_s"] > 0}
    assert {"CLIPScore", "LAION aesthetic", "PickScore and HPS v2", "SigLIP so400m/14 @384", "ImageReward"} <= measured
    report = json.loads((tmp_path / "verifier_throughput.json").read_text())
    sana = report["sana_600m_s_per_image"]
    assert set(sana) == {"naive loop", "diffusers batched", "ttscale step-level", "physical limit"}
    assert report["bf16_matmul_tflops"] > 0 and report["sana_600m_tflop_per_image"] > 0
    assert all(s > 0 for s in sana.values())
    shares = [r["share_vs_sana"] for r in report["verifiers"] if "share_vs_sana" in r]
    assert shares and all(0 < v < 1 for share in shares for v in share.values())


def test_merging_sweeps_of_different_seeds_averages_over_all_and_refuses_a_seed_twice(tmp_path: Path) -> None:
    def rows(seed: int, score: float) -> str:
        cells = [("best-of-n", 160, score), ("best-of-n", 320, score + 0.1), ("particle-filter", 160, score + 0.2)]
        spend = {"nfe": 160.0, "verifier_calls": 4.0, "generator_flops": 1e12, "verifier_flops": 0.0, "seconds": 1.0}
        return "".join(
            json.dumps({"strategy": s, "budget": b, "seed": seed, "overall": o, "tasks": {"colors": o}} | spend) + "\n"
            for s, b, o in cells
        )

    (tmp_path / "a.jsonl").write_text(rows(0, 0.5) + rows(1, 0.6))
    (tmp_path / "b.jsonl").write_text(rows(2, 0.7))
    done = _run(
        "benchmarks/merge_sweeps.py", str(tmp_path / "out"), str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "sweep_summary.json").read_text())
    pf = next(c for c in summary["cells"] if c["strategy"] == "particle-filter")
    assert pf["seeds"] == 3 and abs(pf["overall"] - 0.8) < 1e-9
    # the reference is best-of-n at its largest budget (320, mean 0.7); particle filtering's 0.8 at 160 reaches it
    assert summary["reach"]["budget"] == 320 and summary["reach"]["strategies"]["particle-filter"]["budget"] == 160
    assert len((tmp_path / "out" / "sweep.jsonl").read_text().splitlines()) == 9
    twice = _run(
        "benchmarks/merge_sweeps.py", str(tmp_path / "dup"), str(tmp_path / "b.jsonl"), str(tmp_path / "b.jsonl")
    )
    assert twice.returncode != 0 and "more than once" in twice.stderr
