"""Ray engine: shards as Ray tasks on a local Ray instance (CPU), against one process's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from ttscale.config import SearchConfig
from ttscale.distributed import Cluster, run_on_ray, sweep_on_ray
from ttscale.errors import TTScaleError
from ttscale.folder import prompt_dir
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import representative_subset
from ttscale.lab.verifiers import LabVerifier
from ttscale.outcome import PromptOutcome
from ttscale.runner import run
from ttscale.sweep import SweepSpec, cell, collect, run_cells, run_sweep

PLUGINS = Path(__file__).parent / "plugins"
PROMPTS = representative_subset(1)[:4]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[Path]:
    """Two CPU slots; workers find the crash plug-in and its settings through their environment."""
    marker = tmp_path_factory.mktemp("crash") / "crashed"
    env = {
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
        "CRASH_JUDGE": str(tiny_models["visa"]),
        "CRASH_MARKER": str(marker),
        "CRASH_PROMPT": PROMPTS[2]["prompt"],  # shard 0's second prompt: its first is done when the worker dies
        "OMP_NUM_THREADS": "1",
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield marker
    ray.shutdown()


def _config(tiny: dict[str, Path], verifier: str) -> SearchConfig:
    return SearchConfig(
        generator=str(tiny["generator"]), verifier=verifier, params={"n": 3}, steps=2, batch_size=4, device="cpu"
    )


def _folder(out: Path, index: int) -> dict[str, bytes]:
    folder = prompt_dir(out, index)
    names = [
        "metadata.jsonl",
        "candidates.jsonl",
        *(f"{d}/{p.name}" for d in ("samples", "candidates") for p in sorted((folder / d).glob("*.png"))),
    ]
    return {name: (folder / name).read_bytes() for name in names}


def test_workers_that_crash_resume_and_make_what_one_process_makes(
    local_ray: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    one = _config(tiny_models, str(tiny_models["visa"]))
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=4)
    run(one, PROMPTS, tmp_path / "one", gen, LabVerifier.from_pretrained(str(tiny_models["visa"])))

    seen: list[PromptOutcome] = []
    cfg = _config(tiny_models, "crashing_verifier:CrashOnce")
    totals = run_on_ray(cfg, PROMPTS, tmp_path / "ray", Cluster(2, poll_seconds=0.2), seen.append)

    assert local_ray.exists(), "the plug-in never crashed its worker, so nothing was resumed"
    assert sorted(o.index for o in seen) == [0, 1, 2, 3] and not any(o.skipped for o in seen)
    for outcome in seen:  # each prompt's best score, read back from its folder by the driver
        lines = (prompt_dir(tmp_path / "one", outcome.index) / "candidates.jsonl").read_text().splitlines()
        assert outcome.best == max(json.loads(line)["score"] for line in lines)
    assert totals.prompts == 4 and totals.candidates == 12 and totals.resumed == 1  # prompt 0, done before the crash
    shard0 = json.loads((tmp_path / "ray" / "run.shard0of2.json").read_text())
    assert len(shard0["resumed_at"]) == 1 and shard0["totals"]["resumed"] == 1
    for index in range(4):  # byte for byte: seeds depend on indices only, whoever ran the prompt
        assert _folder(tmp_path / "ray", index) == _folder(tmp_path / "one", index)


def test_a_user_error_in_a_worker_comes_back_as_one_line(
    local_ray: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    cfg = _config(tiny_models, "no-such-verifier")
    with pytest.raises(TTScaleError, match=r"shard 0/2 failed: unknown verifier 'no-such-verifier'"):
        run_on_ray(cfg, PROMPTS, tmp_path, Cluster(2, poll_seconds=0.2))
    assert not list(tmp_path.glob("0000*/metadata.jsonl"))


def test_without_ray_the_error_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if `ray` were not installed
    with pytest.raises(TTScaleError, match=r"needs the `ray` package: pip install 'ttscale\[cluster\]'"):
        run_on_ray(_config(tiny_models, "lab-visa"), PROMPTS, tmp_path, Cluster(2))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttscale", *args], capture_output=True, text=True, timeout=300)


def test_search_on_two_workers_from_the_command_line(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS[:2]))
    common = ["search", "--prompts", str(prompts), "--generator", str(tiny_models["generator"]), "--verifier"]
    common += [str(tiny_models["visa"]), "--n", "2", "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "out")]
    wrong = _cli(*common, "--workers", "2", "--shard", "1/2")
    assert wrong.returncode == 2 and "--workers splits the prompts itself; leave out --shard" in wrong.stderr
    done = _cli(*common, "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 prompts (0 resumed), 4 candidates" in done.stderr  # the console writes to stderr
    assert all((prompt_dir(tmp_path / "out", i) / "samples" / "00000.png").is_file() for i in range(2))


def test_a_sweep_on_two_workers_fills_the_cells_one_process_fills(
    local_ray: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=4)
    ver = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    s = gen.nfe_per_sample()
    base = _config(tiny_models, str(tiny_models["visa"]))
    spec = SweepSpec(["best-of-n", "particle-filter"], [2 * s], [0], base, reference=4 * s)
    run_sweep(spec, PROMPTS, tmp_path / "one", gen, ver)
    seen: list[PromptOutcome] = []
    sweep_on_ray(spec, PROMPTS, tmp_path / "ray", Cluster(2, poll_seconds=0.2), seen.append)
    assert len(seen) == len(run_cells(spec)) * len(PROMPTS) == 8
    for strategy, budget, seed in run_cells(spec):
        for index in range(len(PROMPTS)):
            ours = _folder(cell(tmp_path / "ray", strategy, budget, seed), index)
            assert ours == _folder(cell(tmp_path / "one", strategy, budget, seed), index)
    untimed = [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in collect(spec, PROMPTS, tmp_path / "ray", s, evaluator=LabEvaluator())
    ]
    assert untimed == [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in collect(spec, PROMPTS, tmp_path / "one", s, evaluator=LabEvaluator())
    ]
