"""The lab world: prompt suite shape, and the evaluator's exactness on rendered truth and garbage."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.lab.evaluator import LabEvaluator, classify_shape
from ttscale.lab.prompts import is_heldout, prompt_suite
from ttscale.lab.scenes import SceneError, SceneObject, render, sample_scene, shape_mask
from ttscale.lab.world import COLORS, HELDOUT_COLOR_SHAPE, SHAPES, TASK_SIZES

EVALUATOR = LabEvaluator()
TEST = prompt_suite("test")


def test_test_split_has_geneval_task_sizes() -> None:
    assert Counter(p["tag"] for p in TEST) == Counter(TASK_SIZES)
    assert len(TEST) == 553


def test_heldout_split_is_disjoint_from_training() -> None:
    train = {p["prompt"] for p in prompt_suite("train")}
    held = prompt_suite("heldout")
    assert held and all(is_heldout(p) for p in held)
    assert not train & {p["prompt"] for p in held}
    assert not any(is_heldout(p) for p in TEST)


def test_training_scenes_never_show_a_heldout_pair() -> None:
    rng = np.random.default_rng(0)
    single = [p for p in prompt_suite("train") if p["tag"] in ("single_object", "two_object", "position")]
    for i in range(600):
        scene = sample_scene(single[i % len(single)], rng, training=True)
        assert all((o.color, o.shape) not in HELDOUT_COLOR_SHAPE for o in scene.objects)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, 552), seed=st.integers(0, 2**32 - 1), resolution=st.sampled_from([32, 48, 64]))
def test_any_rendered_scene_round_trips(index: int, seed: int, resolution: int) -> None:
    metadata = TEST[index]
    image = render(sample_scene(metadata, np.random.default_rng(seed), resolution=resolution), resolution)
    verdict = EVALUATOR.evaluate(image, metadata)
    assert verdict.correct, verdict.reason


@settings(max_examples=200, deadline=None)
@given(
    shape=st.sampled_from(SHAPES),
    size=st.floats(0.25, 0.34),
    cx=st.floats(0.25, 0.75),
    cy=st.floats(0.25, 0.75),
)
def test_every_shape_is_classified_exactly(shape: str, size: float, cx: float, cy: float) -> None:
    assert classify_shape(shape_mask(SceneObject(shape, "red", cx, cy, size), 32)) == shape


@pytest.mark.parametrize("seed", range(3))
def test_noise_and_speckle_never_count_as_objects(seed: int) -> None:
    rng = np.random.default_rng(seed)
    palette = np.array([*COLORS.values(), (240, 240, 240)], dtype=np.uint8)
    for metadata in TEST[::7]:
        noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        speckle = palette[rng.integers(0, len(palette), (32, 32))]
        sparse = np.full((32, 32, 3), 240, dtype=np.uint8)
        dots = rng.random((32, 32)) < 0.15
        sparse[dots] = palette[rng.integers(0, 6, int(dots.sum()))]
        for image in (noise, speckle, sparse):
            assert not EVALUATOR.evaluate(image, metadata).correct


def test_wrong_attribute_is_caught() -> None:
    image = render(sample_scene(TEST[80 + 99 + 80], np.random.default_rng(1)))  # first `colors` prompt
    metadata = TEST[80 + 99 + 80]
    entry = metadata["include"][0]
    other = next(c for c in COLORS if c != entry["color"])
    wrong = metadata | {"include": [entry | {"color": other}]}
    assert EVALUATOR.evaluate(image, metadata).correct
    assert not EVALUATOR.evaluate(image, wrong).correct


def test_counting_uses_exclude() -> None:
    four = {"tag": "counting", "prompt": "a photo of four squares", "include": [{"class": "square", "count": 4}]}
    image = render(sample_scene(four, np.random.default_rng(0)))
    three = {
        "tag": "counting",
        "prompt": "a photo of three squares",
        "include": [{"class": "square", "count": 3}],
        "exclude": [{"class": "square", "count": 4}],
    }
    assert not EVALUATOR.evaluate(image, three).correct
    assert EVALUATOR.evaluate(image, four).correct


def test_unknown_class_is_a_clear_error() -> None:
    with pytest.raises(SceneError, match="unknown class"):
        sample_scene({"include": [{"class": "dog", "count": 1}]}, np.random.default_rng(0))


@pytest.mark.parametrize("per_task", [1, 4, 8, 100])
def test_representative_subset_spreads_over_each_task(per_task: int) -> None:
    from ttscale.lab.prompts import representative_subset

    subset = representative_subset(per_task)
    counts = Counter(p["tag"] for p in subset)
    assert counts == Counter({t: min(per_task, n) for t, n in TASK_SIZES.items()})
    if per_task >= 100:
        assert subset == TEST  # asking for at least a task's size gives the whole split
