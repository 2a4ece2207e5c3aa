"""SearchConfig's validation, and what its values mean to the generators that receive them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.registry import load_generator
from ttscale.runner import run

PROMPTS = prompt_suite("test")[:1]


def test_guidance_zero_is_valid_and_a_negative_one_is_not() -> None:
    """0 is how models without guidance (FLUX.1-schnell) are run; below 0 is a mistake."""
    assert SearchConfig(guidance=0.0).guidance == 0.0
    with pytest.raises(TTScaleError, match="guidance"):
        SearchConfig.load(None, guidance=-1.0)


def test_lab_generator_without_guidance_runs_the_conditional_model_once_per_step(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """guidance <= 1 skips the unconditional branch (not w = 0 in the CFG formula, which is the unconditional model)."""
    cfg = SearchConfig(params={"n": 3}, steps=3, guidance=0.0, batch_size=2)
    gen = load_generator(str(tiny_models["generator"]), steps=cfg.steps, guidance=cfg.guidance, batch_size=2)
    totals = run(cfg, PROMPTS, tmp_path, gen, LabVerifier.from_pretrained(str(tiny_models["visa"])))
    assert totals.candidates == 3
    assert gen.nfe_per_sample() == cfg.steps and totals.spend.nfe == 3 * cfg.steps
    conditional = load_generator(str(tiny_models["generator"]), steps=cfg.steps, guidance=1.0)
    prompt = PROMPTS[0]["prompt"]
    assert torch.equal(gen.sample(prompt, [5, 6]), conditional.sample(prompt, [5, 6]))
