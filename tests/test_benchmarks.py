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
    assert all(s > 0 for s in sana.values())
    shares = [r["share_vs_sana"] for r in report["verifiers"] if "share_vs_sana" in r]
    assert shares and all(0 < v < 1 for share in shares for v in share.values())
