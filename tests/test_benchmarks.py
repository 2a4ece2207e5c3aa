"""The GPU benchmarks cannot run in CI, but their configs and code paths can: these keep them from rotting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"sd15", "sana-600m", "pixart-sigma", "sdxl", "sd3-medium", "flux-schnell", "flux-dev"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_real_shape_pipelines_match_the_released_parameter_counts() -> None:
    """Every family's pipeline assembles on the meta device with its denoiser and encoders at the real size."""
    done = _run("benchmarks/diffusers_real_shapes.py", "--check-shapes")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {r["family"] for r in rows} == FAMILIES
    assert not [r for r in rows if "error" in r]


def test_verifier_throughput_runs_every_verifier_at_smoke_size(tmp_path: Path) -> None:
    """The benchmark's code path for each verifier works; figures at smoke size mean nothing and are not checked."""
    done = _run("benchmarks/verifier_throughput.py", "--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    measured = {r["verifier"].split(",")[0] for r in rows if r["images_per_s"] > 0}
    assert {"CLIPScore", "LAION aesthetic", "PickScore and HPS v2", "SigLIP so400m/14 @384", "ImageReward"} <= measured
