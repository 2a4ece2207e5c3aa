"""Search end to end on tiny random lab models: folder, candidates, budget, resume, shards, pick."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ttscale.budget import Budget
from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.evaluation import evaluate_folder, summarize
from ttscale.folder import read_jsonl
from ttscale.images import encode_png, encode_pngs, load_image
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.pick import Picked, pick
from ttscale.report.runs import load_run
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
    assert pick(tmp_path, clip, k=3) == Picked(2, "none")  # nothing was evaluated, so nothing is stale
    records = read_jsonl(tmp_path / "00000" / "candidates.jsonl")
    assert all("clip_score" in r["scores"] and "yes_prob" in r["scores"] for r in records)
    best = max(records, key=lambda r: r["scores"]["clip_score"])
    assert best["rank"] == 0 and sum(r["kept"] for r in records) == 3
    assert len(list((tmp_path / "00000" / "samples").iterdir())) == 3
    assert json.loads((tmp_path / "run.json").read_text())["picks"][0]["verifier"] == clip.name


def test_pick_redoes_a_lab_evaluation_of_the_images_it_replaced(tmp_path: Path) -> None:
    """After a pick, `summary` and `report` must show verdicts of the new kept images: a lab evaluation
    (offline, cheap) is run again on them. The shipped lab-small at four steps draws some right images, so the
    verdicts differ between candidates and are worth comparing."""
    gen = LabGenerator.from_pretrained("lab-small", steps=4, batch_size=8)
    prompts = prompt_suite("test")[::150]
    run(SearchConfig(params={"n": 4}, steps=4), prompts, tmp_path, gen, LabVerifier.from_pretrained("lab-visa"))
    before = evaluate_folder(tmp_path, LabEvaluator())
    assert before["n_images"] == len(prompts)
    done = pick(tmp_path, LabVerifier.from_pretrained("lab-clip"), k=3, reevaluate=LabEvaluator())
    assert done == Picked(len(prompts), "re-evaluated", "lab")
    judge = LabEvaluator()
    rows = read_jsonl(tmp_path / "results.jsonl")
    assert len(rows) == 3 * len(prompts)  # the three kept images of every prompt, not the one kept before
    for row in rows:
        image = load_image(tmp_path / row["filename"])
        assert row["correct"] == judge.evaluate(image, json.loads(row["metadata"])).correct
    assert {r["correct"] for r in rows} == {True, False}  # lab-small's candidates differ, so verdicts can be stale
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == summarize(rows) | {"evaluator": "lab"}
    shown = {
        f"{p.index:05d}/samples/{c.rank:05d}.png": c.verdict
        for p in load_run(tmp_path, judge=None).prompts
        for c in p.cards
        if c.kept
    }
    assert shown == {r["filename"]: r["correct"] for r in rows}  # what the report shows for the kept images
    assert json.loads((tmp_path / "run.json").read_text())["picks"][-1]["evaluation"] == "re-evaluated"


def test_pick_removes_an_evaluation_it_cannot_redo(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """An evaluator other than the lab one (GenEval's own, run outside ttscale) cannot be rerun here: its
    verdicts of the replaced images are removed, and run.json says so, rather than left to be shown as current."""
    gen, ver = _models(tiny_models)
    run(SearchConfig(params={"n": 3}, steps=3), PROMPTS[:2], tmp_path, gen, ver)
    (tmp_path / "results.jsonl").write_text('{"filename": "00000/samples/00000.png", "correct": true}\n')
    (tmp_path / "summary.json").write_text(json.dumps({"overall": 1.0, "evaluator": "geneval"}))
    (tmp_path / "curve.json").write_text("{}")
    assert pick(tmp_path, ver, k=2, reevaluate=LabEvaluator()) == Picked(2, "removed", "geneval")
    assert not any((tmp_path / name).exists() for name in ("results.jsonl", "summary.json", "curve.json"))
    assert load_run(tmp_path).summary is None  # `ttscale summary` says: not evaluated, run `ttscale evaluate`
    assert json.loads((tmp_path / "run.json").read_text())["picks"][-1]["evaluation"] == "removed"


def test_without_saved_candidates_the_kept_images_and_records_are_those_of_a_saving_run(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """save_candidates=False only leaves out the candidates/ folder: what GenEval evaluates (samples/) and
    what re-creates or audits any candidate (candidates.jsonl) are the same as with it on."""
    gen, ver = _models(tiny_models)
    cfg = SearchConfig(params={"n": 4}, k=2, steps=3)
    run(cfg, PROMPTS[:2], tmp_path / "saved", gen, ver)
    run(cfg.model_copy(update={"save_candidates": False}), PROMPTS[:2], tmp_path / "lean", gen, ver)
    for i in range(2):
        saved, lean = tmp_path / "saved" / f"{i:05d}", tmp_path / "lean" / f"{i:05d}"
        assert not (lean / "candidates").exists() and (saved / "candidates").is_dir()
        names = sorted(p.name for p in (saved / "samples").iterdir())
        assert names == ["00000.png", "00001.png"] == sorted(p.name for p in (lean / "samples").iterdir())
        for name in names:
            assert (lean / "samples" / name).read_bytes() == (saved / "samples" / name).read_bytes()
        records = read_jsonl(lean / "candidates.jsonl")
        assert records == read_jsonl(saved / "candidates.jsonl")
        assert [r["index"] for r in records] == list(range(4)) and sum(r["kept"] for r in records) == 2


@settings(max_examples=8, deadline=None)
@example(samples_x2=5, calls=None)  # 2.5 samples a prompt: 2, 3, 2, 3 candidates
@example(samples_x2=6, calls=2)  # the calls bind: 2 candidates each, a sample's NFEs saved every prompt
@given(samples_x2=st.integers(2, 7), calls=st.one_of(st.none(), st.integers(1, 4)))
def test_carry_over_adds_exactly_what_each_prompt_left_to_the_next(
    samples_x2: int, calls: int | None, tiny_models: dict[str, Path]
) -> None:
    """Best-of-n without n spends as many whole samples as its budget allows, so each prompt's spend says
    exactly which budget it was given; a rerun after a crash reads the savings back from spend.json."""
    gen, ver = _models(tiny_models)
    per_sample = gen.nfe_per_sample()
    nfe = samples_x2 * per_sample // 2
    cfg = SearchConfig(params={}, steps=3, budget=Budget(nfe=nfe, verifier_calls=calls), carry_over=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(cfg, PROMPTS[:4], out, gen, ver)
        saved_nfe, saved_calls = 0, 0
        for i in range(4):
            spend = json.loads((out / f"{i:05d}" / "spend.json").read_text())
            budget_nfe, budget_calls = nfe + saved_nfe, None if calls is None else calls + saved_calls
            drawn = budget_nfe // per_sample if budget_calls is None else min(budget_nfe // per_sample, budget_calls)
            assert (spend["nfe"], spend["verifier_calls"]) == (drawn * per_sample, drawn)
            saved_nfe = budget_nfe - spend["nfe"]
            saved_calls = 0 if budget_calls is None else budget_calls - spend["verifier_calls"]
        (out / "00001" / "metadata.jsonl").unlink()  # as if the run had crashed while writing prompt 1
        first = (out / "00001" / "candidates.jsonl").read_text()
        run(cfg, PROMPTS[:4], out, gen, ver)
        assert (out / "00001" / "candidates.jsonl").read_text() == first


def test_carry_over_is_refused_on_a_split_run(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """Each shard would restart the savings at its first prompt, so the folder would depend on the split."""
    gen, ver = _models(tiny_models)
    cfg = SearchConfig(params={}, steps=3, budget={"nfe": 30}, carry_over=True)
    with pytest.raises(TTScaleError, match="carry_over hands each prompt's unspent budget to the next"):
        run(cfg, PROMPTS[:2], tmp_path, gen, ver, shard=(0, 2))
    assert not any(tmp_path.iterdir())  # refused before anything is written


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
