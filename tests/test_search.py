"""Search end to end on tiny random lab models: folder, candidates, budget, resume, shards, pick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.folder import encode_png, encode_pngs, load_image, read_jsonl
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.pick import pick
from ttscale.runner import run

PROMPTS = prompt_suite("test")[::100]  # one prompt of each task


def _models(tiny: dict[str, Path], steps: int = 3) -> tuple[LabGenerator, LabVerifier]:
    return LabGenerator.from_pretrained(str(tiny["generator"]), steps=steps, batch_size=4), LabVerifier.from_pretrained(
        str(tiny["visa"])
    )


def test_best_of_n_writes_every_candidate(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    gen, ver = _models(tiny_models)
    cfg = SearchConfig(generator="tiny", verifier="tiny", params={"n": 6}, k=2, steps=3)
    totals = run(cfg, PROMPTS, tmp_path, gen, ver)
    assert totals.candidates == 6 * len(PROMPTS)
    assert totals.spend.nfe == 6 * len(PROMPTS) * 3 * 2  # CFG: two NFEs per step
    for i in range(len(PROMPTS)):
        folder = tmp_path / f"{i:05d}"
        records = read_jsonl(folder / "candidates.jsonl")
        assert [r["index"] for r in records] == list(range(6))
        assert sorted(r["rank"] for r in records) == list(range(6))
        kept = sorted((r for r in records if r["kept"]), key=lambda r: r["rank"])
        assert [r["rank"] for r in kept] == [0, 1]
        assert kept[0]["score"] == max(r["score"] for r in records)
        assert all(r["nfe"] == 6 and "yes_prob" in r["scores"] for r in records)
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["00000.png", "00001.png"]
        assert len(list((folder / "candidates").iterdir())) == 6
        # the kept image is the top-ranked candidate's image
        top = kept[0]["index"]
        assert (folder / "samples" / "00000.png").read_bytes() == (
            folder / "candidates" / f"{top:05d}.png"
        ).read_bytes()
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["totals"]["nfe"] == totals.spend.nfe and record["config"]["params"] == {"n": 6}


def test_budget_stops_the_draw_exactly(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    gen, ver = _models(tiny_models)
    per_sample = gen.nfe_per_sample()
    cfg = SearchConfig(params={}, steps=3, budget={"nfe": per_sample * 5 + per_sample // 2})
    totals = run(cfg, PROMPTS[:2], tmp_path, gen, ver)
    assert totals.candidates == 10 and totals.spend.nfe == 2 * 5 * per_sample


def test_resume_skips_finished_prompts_and_refuses_a_changed_config(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    gen, ver = _models(tiny_models)
    cfg = SearchConfig(params={"n": 2}, steps=3)
    run(cfg, PROMPTS[:2], tmp_path, gen, ver)
    (tmp_path / "00001" / "metadata.jsonl").unlink()  # as if the run crashed while writing prompt 1
    stamp = (tmp_path / "00000" / "candidates.jsonl").stat().st_mtime_ns
    totals = run(cfg, PROMPTS[:2], tmp_path, gen, ver)
    assert totals.resumed == 1 and totals.prompts == 2
    assert (tmp_path / "00000" / "candidates.jsonl").stat().st_mtime_ns == stamp
    assert (tmp_path / "00001" / "metadata.jsonl").is_file()
    with pytest.raises(TTScaleError, match="different config"):
        run(cfg.model_copy(update={"k": 2}), PROMPTS[:2], tmp_path, gen, ver)


def test_shards_write_the_same_images_as_one_run(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    gen, ver = _models(tiny_models)
    cfg = SearchConfig(params={"n": 2}, steps=3)
    run(cfg, PROMPTS[:4], tmp_path / "one", gen, ver)
    for shard in range(2):
        run(cfg, PROMPTS[:4], tmp_path / "sharded", gen, ver, shard=(shard, 2))
    for i in range(4):
        name = f"{i:05d}/samples/00000.png"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "sharded" / name).read_bytes()


def test_pick_reranks_saved_candidates_without_generating(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    gen, ver = _models(tiny_models)
    run(SearchConfig(params={"n": 4}, steps=3), PROMPTS[:2], tmp_path, gen, ver)
    clip = LabVerifier.from_pretrained(str(tiny_models["clip"]))
    assert pick(tmp_path, clip, k=3) == 2
    records = read_jsonl(tmp_path / "00000" / "candidates.jsonl")
    assert all("clip_score" in r["scores"] and "yes_prob" in r["scores"] for r in records)
    best = max(records, key=lambda r: r["scores"]["clip_score"])
    assert best["rank"] == 0 and sum(r["kept"] for r in records) == 3
    assert len(list((tmp_path / "00000" / "samples").iterdir())) == 3
    assert json.loads((tmp_path / "run.json").read_text())["picks"][0]["verifier"] == clip.name


def test_metering_keeps_step_access_visible_to_protocol_checks(tiny_models: dict[str, Path]) -> None:
    """Python >= 3.12 checks Protocols with getattr_static, which ignores __getattr__ forwarding."""
    import inspect

    from ttscale.budget import Budget, Meter
    from ttscale.generator import CallableGenerator, StepGenerator, metered

    gen, _ = _models(tiny_models)
    wrapped = metered(gen, Meter(Budget()))
    for member in ("encode", "noise", "schedule", "denoise", "decode", "nfe_per_call", "flops_per_nfe", "sample"):
        inspect.getattr_static(wrapped, member)  # raises AttributeError if only reachable through __getattr__
    assert isinstance(wrapped, StepGenerator)
    black_box = metered(CallableGenerator(gen.sample, nfe_per_sample=gen.nfe_per_sample()), Meter(Budget()))
    assert not isinstance(black_box, StepGenerator)
    x = gen.noise([1, 2])
    wrapped.denoise(x, 0, wrapped.encode("a photo of a red circle"))
    assert wrapped.meter.spent.nfe == 2 * gen.nfe_per_call


def test_png_encoding_over_threads_is_the_serial_encoding_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, 24, 3), dtype=np.uint8) for h in (8, 16, 24, 32, 40)]
    pngs = encode_pngs(images)
    assert pngs == [encode_png(image) for image in images]
    for j, (png, image) in enumerate(zip(pngs, images, strict=True)):
        (tmp_path / f"{j}.png").write_bytes(png)
        np.testing.assert_array_equal(load_image(tmp_path / f"{j}.png"), image)
