"""Shared fixtures: tiny random-initialised lab models saved as safetensors, so tests never need shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ttscale.lab.generator import LabGenerator
from ttscale.lab.nets import DualEncoder, FlowUNet, JudgeConfig, UNetConfig, YesNoJudge
from ttscale.lab.verifiers import LabVerifier
from ttscale.lab.weights import save

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-step-trainable-size generator and both judges with random weights (fast on one CPU core)."""
    root = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    gen_cfg = UNetConfig(base=8, text_dim=16, text_layers=1)
    judge_cfg = JudgeConfig(base=8, dim=16, text_layers=1)
    paths = {
        "generator": root / "gen.safetensors",
        "visa": root / "visa.safetensors",
        "clip": root / "clip.safetensors",
    }
    save(FlowUNet(gen_cfg), paths["generator"], "lab-generator", gen_cfg.to_dict(), {})
    save(YesNoJudge(judge_cfg), paths["visa"], "lab-visa", judge_cfg.to_dict(), {})
    save(DualEncoder(judge_cfg), paths["clip"], "lab-clip", judge_cfg.to_dict(), {})
    return paths


@pytest.fixture(scope="module")
def gen(tiny_models: dict[str, Path]) -> LabGenerator:
    """The tiny generator at 4 steps (batches of 8): enough grid points for look-aheads, branches and resampling."""
    return LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=4, batch_size=8)


@pytest.fixture(scope="module")
def visa(tiny_models: dict[str, Path]) -> LabVerifier:
    return LabVerifier.from_pretrained(str(tiny_models["visa"]))
