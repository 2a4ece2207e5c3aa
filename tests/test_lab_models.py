"""The shipped lab models: present, small enough, loadable, bit-for-bit reproducible on CPU, and working."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttscale.errors import TTScaleError
from ttscale.generator import StepGenerator
from ttscale.images import to_uint8
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.nets import count_parameters
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.lab.weights import header, weights_dir
from ttscale.registry import load_generator, load_verifier


def test_weights_ship_in_the_package_under_20_mb() -> None:
    files = sorted(p.name for p in weights_dir().glob("*.safetensors"))
    assert files == ["lab-clip.safetensors", "lab-large.safetensors", "lab-small.safetensors", "lab-visa.safetensors"]
    assert sum(p.stat().st_size for p in weights_dir().glob("*.safetensors")) < 20_000_000
    assert header(weights_dir() / "lab-small.safetensors")["info"]["step"] == 4000


def test_sizes_match_the_model_card() -> None:
    small = LabGenerator.from_pretrained("lab-small")
    large = LabGenerator.from_pretrained("lab-large")
    assert 2.0e6 < count_parameters(small.net) < 2.5e6 < 5.0e6 < count_parameters(large.net) < 5.5e6
    assert large.flops_per_nfe > 2 * small.flops_per_nfe
    assert isinstance(small, StepGenerator)


def test_same_seed_same_images_bit_for_bit_on_cpu() -> None:
    gen = LabGenerator.from_pretrained("lab-small", steps=6, batch_size=4)
    prompt = prompt_suite("test")[300]["prompt"]
    a = gen.sample(prompt, [11, 12, 13])
    b = LabGenerator.from_pretrained("lab-small", steps=6, batch_size=4).sample(prompt, [11, 12, 13])
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_the_small_generator_draws_recognisable_scenes() -> None:
    """Real weights, real evaluator: a few single-object prompts should mostly come out right."""
    gen = LabGenerator.from_pretrained("lab-small", steps=20, batch_size=16)
    evaluator = LabEvaluator()
    metadata = prompt_suite("test")[0]  # "a photo of a <shape>"
    images = to_uint8(gen.sample(metadata["prompt"], list(range(16))))
    hits = sum(evaluator.evaluate(img, metadata).correct for img in images)
    assert hits >= 6, hits


def test_verifiers_prefer_the_matching_prompt() -> None:
    from ttscale.lab.scenes import render, sample_scene

    rng = np.random.default_rng(0)
    suite = prompt_suite("test")
    colors = [p for p in suite if p["tag"] == "colors"][:12]
    images = torch.stack(
        [torch.from_numpy(render(sample_scene(p, rng))).permute(2, 0, 1).float() / 255 for p in colors]
    )
    for name in ("lab-visa", "lab-clip"):
        ver = LabVerifier.from_pretrained(name)
        right = ver.score(images, [p["prompt"] for p in colors])[ver.metrics[0]]
        wrong = ver.score(
            images,
            [
                p["prompt"].replace(
                    p["include"][0]["class"], "circle" if p["include"][0]["class"] != "circle" else "square"
                )
                for p in colors
            ],
        )[ver.metrics[0]]
        assert (right > wrong).float().mean() >= 0.75, name


def test_verifiers_judge_larger_images_at_their_own_32_pixels() -> None:
    """A diffusers-sized image is area-resized to the judges' 32x32: a scene blown up 8x scores as the scene."""
    prompt = prompt_suite("test")[0]["prompt"]
    images = LabGenerator.from_pretrained("lab-small", steps=6, batch_size=4).sample(prompt, [1, 2])
    large = images.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    for name in ("lab-visa", "lab-clip"):
        ver = LabVerifier.from_pretrained(name)
        torch.testing.assert_close(ver.score(large, [prompt] * 2), ver.score(images, [prompt] * 2))


def test_loading_errors_are_clear() -> None:
    with pytest.raises(TTScaleError, match="unknown generator"):
        load_generator("lab-huge")
    with pytest.raises(TTScaleError, match="does not exist"):
        load_verifier("/nowhere/judge.safetensors")
