"""`ttscale lab train-verifiers` end to end at toy size: data, training, held-out AUC, saved weights and records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ttscale.lab import data, train
from ttscale.lab.nets import VOCAB, JudgeConfig, YesNoJudge, tokenize
from ttscale.lab.prompts import colors, counting, prompt_suite
from ttscale.lab.scenes import Scene, SceneObject, render, sample_scene
from ttscale.lab.verifiers import LabVerifier
from ttscale.lab.weights import header
from ttscale.lab.world import BACKGROUND, HELDOUT_COLOR_SHAPE, HELDOUT_SHAPE_COUNT, SHAPES

TINY = {
    "lab-visa": JudgeConfig(
        base=8, dim=16, text_layers=1, grid=8, positions=True, fusion_layers=1, locate=True, relate=True
    ),
    "lab-clip": JudgeConfig(base=8, dim=16, text_layers=1),
}


def _run(generator: Path | str, **kwargs: object) -> train.VerifierRun:
    base: dict[str, object] = {
        "kinds": ("lab-visa",),
        "generators": (str(generator),),
        "rendered": 256,
        "generated": 64,
        "steps": 3,
        "batch": 16,
        "eval_seeds": 1,
        "sample_steps": 1,
        "workers": 1,
    }
    return train.VerifierRun(**(base | kwargs))  # type: ignore[arg-type]


def test_retraining_one_verifier_keeps_the_others_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train, "JUDGES", TINY)
    (tmp_path / "verifiers.json").write_text(json.dumps({"lab-clip": {"auc": {"test": 0.5}}}))
    # The shipped small generator at 4 steps draws some correct scenes, so both AUCs are defined.
    run = _run("lab-small", sample_steps=4)
    report = train.train_verifiers(run, tmp_path, progress=lambda _: None)

    assert json.loads((tmp_path / "verifiers.json").read_text()) == report
    assert report["lab-clip"] == {"auc": {"test": 0.5}}
    visa = report["lab-visa"]
    assert visa["steps"] == 3 and visa["config"] == TINY["lab-visa"].to_dict()
    # The run is seeded and runs on the CPU, so its data are fixed: 6 of lab-small's 64 samples show a held-out
    # pair and are dropped, 155 of the 314 pairs are right, and the evaluation images are the suites' own.
    assert visa["train_pairs"] == 256 + 64 - 6
    assert visa["train_positive"] == 155 / 314
    assert visa["eval_images"] == {"test": 553, "heldout": 100}
    assert visa["eval_positive"] == {"test": 200 / 553, "heldout": 19 / 100}
    # The three optimiser steps make a judge of these exact scores on this machine's float kernels. Another
    # CPU's kernels round differently (~1e-7 on a score), which can reorder the 3 of the test split's 200 x 353
    # (right, wrong) pairs lying within 1e-6 of each other, each worth 1 / 70600 of AUC: hence 1e-4. The
    # relation probe's 300 true/flipped score gaps are all above 1e-5, so its count cannot move: 156 of 300.
    assert visa["auc"] == {
        "test": pytest.approx(0.5938951841359773, abs=1e-4),
        "heldout": pytest.approx(0.6205328135152697, abs=1e-4),
    }
    assert visa["relation_probe"] == pytest.approx(156 / 300, abs=1e-6)  # abs: a float32 mean
    head = header(tmp_path / "lab-visa.safetensors")
    assert head["config"] == TINY["lab-visa"].to_dict() and head["info"]["run"]["steps"] == 3
    verifier = LabVerifier.from_pretrained(str(tmp_path / "lab-visa.safetensors"))
    assert verifier.net.image.pos is not None and verifier.net.image.pos.shape == (64, 16)


def test_max_minutes_stops_training_early_and_says_so(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "JUDGES", TINY)
    report = train.train_verifiers(
        _run(tiny_models["generator"], kinds=("lab-clip",), steps=50, max_minutes=0.0), tmp_path, progress=str
    )
    assert report["lab-clip"]["steps"] == 1
    assert header(tmp_path / "lab-clip.safetensors")["info"]["run"]["steps"] == 1


@pytest.mark.parametrize("pair", sorted(HELDOUT_COLOR_SHAPE))
def test_a_scene_with_a_held_out_colour_shape_pair_is_flagged(pair: tuple[str, str]) -> None:
    scene = sample_scene(colors(*pair), np.random.default_rng(0))
    assert train.shows_heldout_pair(render(scene))


@pytest.mark.parametrize("pair", sorted(HELDOUT_SHAPE_COUNT))
def test_a_scene_with_a_held_out_count_is_flagged(pair: tuple[str, int]) -> None:
    scene = sample_scene(counting(*pair), np.random.default_rng(0), training=True)
    assert train.shows_heldout_pair(render(scene))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 2**32 - 1))
def test_training_scenes_are_never_flagged(index: int, seed: int) -> None:
    """Rendered training data never shows a held-out pair, so the filter only ever removes generated samples."""
    suite = prompt_suite("train")
    scene = sample_scene(suite[index % len(suite)], np.random.default_rng(seed), training=True)
    assert not train.shows_heldout_pair(render(scene))


def test_near_misses_are_one_or_two_words_away_and_grouped_by_kind() -> None:
    suite = prompt_suite("train")
    misses = train.near_misses(suite)
    for p in suite[::7]:
        words = p["prompt"].split()
        for kind, group in misses[p["prompt"]].items():
            for q in group:
                other = q["prompt"].split()
                assert q["tag"] == p["tag"] and len(other) == len(words)
                assert 1 <= sum(a != b for a, b in zip(words, other, strict=True)) <= 2
                assert (kind == "swap") == (sorted(words) == sorted(other))
    position = next(p for p in suite if p["tag"] == "position")
    assert {"relation", "swap"} <= set(misses[position["prompt"]])


def test_near_misses_are_drawn_kind_by_kind() -> None:
    """Relation flips are 1 of a position prompt's 16 near-misses but 1 of its 4 kinds: they must be drawn often."""
    suite = prompt_suite("train")
    position = next(p for p in suite if p["tag"] == "position")
    kinds = train.near_misses(suite)[position["prompt"]]
    which = {q["prompt"]: k for k, group in kinds.items() for q in group}
    rng = np.random.default_rng(0)
    draws = [which[q["prompt"]] for q in (train.draw_near_miss(kinds, rng) for _ in range(4000)) if q]
    for kind in kinds:
        assert abs(draws.count(kind) / len(draws) - 1 / len(kinds)) < 0.03
    assert train.draw_near_miss({}, rng) is None


def test_relation_probe_is_a_deterministic_rate(tiny_models: dict[str, Path]) -> None:
    """The probe's scenes come from its own seed, so a judge gets one rate: the random-initialised tiny judge
    prefers the true relation in 17 of 40 scenes, about the half a judge blind to relations gets (its 40 score
    gaps are all above 3e-5, far above float rounding, so no other CPU moves the count)."""
    from ttscale.lab.weights import load_judge

    net, _ = load_judge(str(tiny_models["visa"]))
    rate = train.relation_probe(net, scenes=40)
    assert rate == pytest.approx(17 / 40, abs=1e-6)  # abs: a float32 mean
    assert rate == train.relation_probe(net, scenes=40)


def test_grounded_rendering_gives_the_same_images_and_maps_that_cover_each_object() -> None:
    images, metas = data.render_dataset(40, seed=3)
    grounded, metas2, maps = data.render_grounded(40, seed=3, grid=8)
    assert np.array_equal(images, grounded) and metas == metas2
    assert maps.shape == (40, len(data.GROUNDING_CLASSES), 64) and maps.dtype == np.uint8
    shapes, colours = maps[:, : len(SHAPES)], maps[:, len(SHAPES) :]
    # Every foreground pixel is one shape and one colour, so both halves cover the same area.
    foreground = (images != np.array(BACKGROUND, dtype=np.uint8)).any(-1).mean((1, 2))
    assert np.allclose(shapes.sum((1, 2)) / 255 / 64, foreground, atol=0.02)
    assert np.allclose(colours.sum((1, 2)) / 255 / 64, foreground, atol=0.02)


def test_grounding_maps_put_an_object_in_its_cells() -> None:
    scene = Scene((SceneObject("square", "red", cx=0.125, cy=0.875, size=0.25),))
    maps = data.grounding_maps(scene, 32, 8).reshape(-1, 8, 8)
    square, red = maps[data.GROUNDING_CLASSES.index("square")], maps[data.GROUNDING_CLASSES.index("red")]
    assert np.array_equal(square, red) and square.sum() == 4 * 255  # 8x8 px = four 4x4 px cells, bottom left
    assert square[6:8, 0:2].min() == 255 and square.sum() == square[6:8, 0:2].sum()


def test_grounding_loss_is_the_targets_entropy_when_the_gaze_is_right() -> None:
    ids = tokenize(["a photo of a red circle", "a photo of two squares"])
    maps = torch.zeros(2, len(data.GROUNDING_CLASSES), 4, dtype=torch.uint8)
    maps[0, data.GROUNDING_CLASSES.index("circle"), :2] = 255
    maps[0, data.GROUNDING_CLASSES.index("red"), :2] = 255  # no square in either image: "squares" is left out
    classes = train.grounding_classes()
    right = torch.full((2, ids.shape[1], 4), 0.25)
    right[0, :, :2], right[0, :, 2:] = 0.5 - 1e-9, 1e-9
    assert float(train.grounding_loss(right, ids, maps, classes)) == pytest.approx(np.log(2), abs=1e-6)
    wrong = right.flip(-1)
    assert float(train.grounding_loss(wrong, ids, maps, classes)) > 10
    assert float(train.grounding_loss(right, ids, torch.zeros_like(maps), classes)) == 0.0
    assert classes[VOCAB["squares"]] == classes[VOCAB["square"]] == data.GROUNDING_CLASSES.index("square")
    assert classes[VOCAB["photo"]] == -1


@pytest.mark.parametrize(
    ("prompt", "sign"), [("a photo of a circle left of a square", -1.0), ("a photo of a square right of a circle", 1.0)]
)
def test_relate_reads_the_subject_minus_the_object_offset(prompt: str, sign: float) -> None:
    judge = YesNoJudge(JudgeConfig(base=8, dim=16, text_layers=1, grid=4, locate=True, relate=True))
    ids = tokenize([prompt])
    where = torch.zeros(1, ids.shape[1], 16)
    words = prompt.split()
    circle = words.index("circle")
    where[0, :, 5] = 1.0
    where[0, circle] = 0.0
    where[0, circle, 4] = 1.0  # the circle in the left column, the square one column to its right
    offset = judge._offset(where, ids)
    step = 2 / 3  # cell centres are 2/3 apart on a 4x4 grid in [-1, 1]
    assert offset[0].tolist() == pytest.approx([sign * step, 0.0])
    assert judge._offset(where, tokenize(["a photo of a circle"])).abs().sum() == 0
    logit, gaze = judge.judge(torch.rand(1, 3, 32, 32), ids)
    assert logit.shape == (1,) and gaze is not None and torch.allclose(gaze.sum(-1), torch.ones(1, ids.shape[1]))


def test_relate_needs_locate() -> None:
    with pytest.raises(ValueError, match="locate=True"):
        YesNoJudge(JudgeConfig(relate=True))
