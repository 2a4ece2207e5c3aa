"""The report of a small lab run: one card per candidate, kept ones marked, scores and verdicts shown, prompt text
escaped; figures written as real PNG/SVG files; the summary command; progress in json and quiet modes."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ttscale import progress
from ttscale.budget import Spend
from ttscale.cli import app
from ttscale.config import SearchConfig
from ttscale.demo import finish
from ttscale.evaluation import evaluate_folder
from ttscale.folder import read_jsonl
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import representative_subset
from ttscale.lab.verifiers import LabVerifier
from ttscale.outcome import PromptOutcome
from ttscale.report.build import build_report, write_figures
from ttscale.runner import run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = "a photo of a red circle <script>alert(1)</script> & \"friends\" 'x'"
EVIL_PROMPT = {"tag": "colors", "include": [{"class": "circle", "count": 1, "color": "red"}], "prompt": EVIL}
N = 3


def lab_run(out: Path, tiny_models: dict[str, Path]) -> list[dict[str, Any]]:
    """A best-of-3 run of tiny random lab models on one prompt per task plus a hostile one, evaluated."""
    prompts = [*representative_subset(1), EVIL_PROMPT]
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=8)
    ver = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    run(SearchConfig(params={"n": N}, steps=2), prompts, out, gen, ver)
    evaluate_folder(out, LabEvaluator())
    return prompts


class Page(HTMLParser):
    """Collects the elements the assertions look at: cards, scores, badges, scripts, images, sections."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.sections: list[dict[str, str]] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.scores: list[str] = []
        self.prompt_texts: list[str] = []
        self._capture: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "figure" and "card" in classes:
            section = self.sections[-1]["data-index"]
            self.cards.append(a | {"prompt": section, "kept_class": str("kept" in classes), "badges": ""})
        if tag == "section" and "prompt" in classes:
            self.sections.append(a)
        if tag == "img":
            self.images.append(a["src"])
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "dd" and "score" in classes:
            self._capture = "score"
        if tag == "q" and "prompt-text" in classes:
            self._capture = "prompt"
        if tag == "span" and "badge" in classes and self.cards:
            self.cards[-1]["badges"] += " ".join(classes) + ";"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag in ("dd", "q"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._capture == "score":
            self.scores.append(data)
        elif self._capture == "prompt":
            self.prompt_texts.append(data)


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    lab_run(out, tiny_models)
    return out


def test_report_shows_every_candidate_with_scores_and_verdicts(lab_folder: Path, tmp_path: Path) -> None:
    pages = build_report([lab_folder], tmp_path / "report", judge=LabEvaluator())
    index, run_page = pages
    assert index.name == "index.html" and run_page.name == "run.html"
    page = Page()
    page.feed(run_page.read_text(encoding="utf-8"))
    prompts = sorted(p for p in lab_folder.iterdir() if p.is_dir() and p.name.isdigit())
    records = {p.name: read_jsonl(p / "candidates.jsonl") for p in prompts}
    assert len(page.sections) == len(prompts) == 7
    assert len(page.cards) == N * len(prompts)
    # every card is a candidate of its prompt, marked kept exactly when candidates.jsonl says so
    shown = {(int(c["prompt"]), int(c["data-index"]), c["data-kept"] == "1") for c in page.cards}
    assert shown == {(int(p), r["index"], r["kept"]) for p, rows in records.items() for r in rows}
    kept_cards = [c for c in page.cards if c["data-kept"] == "1"]
    assert len(kept_cards) == len(prompts)
    assert all(c["kept_class"] == "True" and "kept-badge" in c["badges"] for c in kept_cards)
    assert all(c["kept_class"] == "False" for c in page.cards if c["data-kept"] == "0")
    all_scores = sorted(r["score"] for rows in records.values() for r in rows)
    assert sorted(float(c["data-score"]) for c in page.cards) == pytest.approx(all_scores)
    assert sorted(float(s) for s in page.scores) == pytest.approx(all_scores, abs=1e-4)
    # verdicts: kept images agree with results.jsonl; lab-evaluated runs get every candidate judged
    results = read_jsonl(lab_folder / "results.jsonl")
    assert sorted(c["data-verdict"] for c in kept_cards) == sorted(
        "correct" if r["correct"] else "wrong" for r in results
    )
    assert all(c["data-verdict"] in ("correct", "wrong") for c in page.cards)
    assert all(("correct" in c["badges"]) != ("wrong" in c["badges"]) for c in page.cards)
    # images: relative links to the run's own candidate PNGs, which exist
    assert len(page.images) == len(page.cards) + 3  # + scaling curve, calibration, score histogram
    for src in page.images:
        assert not src.startswith(("http", "/", "data:")) and (run_page.parent / src).is_file()
    # the hostile prompt is text: no script of its own, escaped in the markup, intact once parsed
    raw = run_page.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert len(page.scripts) == 1 and "alert(1)" not in page.scripts[0]
    assert EVIL in page.prompt_texts
    assert EVIL in [s["data-prompt"] for s in page.sections]
    # the config is shown, escaped, as text; and the summary table has the evaluator's overall score
    overall = json.loads((lab_folder / "summary.json").read_text())["overall"]
    assert f"{overall:.3f}" in raw
    index_page = index.read_text(encoding="utf-8")
    assert 'href="run.html"' in index_page and f"{overall:.3f}" in index_page


def test_report_compares_runs_and_embeds_images_on_request(lab_folder: Path, tmp_path: Path) -> None:
    pages = build_report([lab_folder, lab_folder], tmp_path / "cmp", embed=True)
    assert [p.name for p in pages] == ["index.html", "run.html", "run-2.html"]
    for page_path in pages[1:]:
        page = Page()
        page.feed(page_path.read_text(encoding="utf-8"))
        assert all(src.startswith("data:image/png;base64,") for src in page.images)
        raw = page_path.read_text(encoding="utf-8")
        assert 'href="run.html"' in raw and 'href="run-2.html"' in raw and 'href="index.html"' in raw
        # without judging candidates, only the kept images carry a verdict
        judged = [c for c in page.cards if c["data-verdict"] != "none"]
        assert judged and all(c["data-kept"] == "1" for c in judged)


def _assert_figure(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == PNG_MAGIC
    else:
        assert path.read_text().lstrip().startswith("<?xml") and "<svg" in path.read_text()


def test_run_figures_are_png_and_svg(lab_folder: Path, tmp_path: Path) -> None:
    paths = write_figures(lab_folder, tmp_path / "figs", judge=LabEvaluator())
    assert sorted(p.name for p in paths) == sorted(
        f"{stem}.{ext}" for stem in ("scaling", "calibration", "scores") for ext in ("png", "svg")
    )
    for path in paths:
        _assert_figure(path)


def test_sweep_figures_and_page(tmp_path: Path) -> None:
    """Score vs NFEs and seconds from a sweep's rows, with bands over seeds (and best-of-n's bootstrap)."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    tasks = ("single_object", "counting")
    rows = []
    for seed in range(3):
        for strategy, shift in (("best-of-n", 0.0), ("random-search", 0.05)):
            for budget in (40, 80, 160):
                score = min(1.0, 0.3 + 0.1 * math.log2(budget / 40) + shift + 0.02 * seed)
                row = {"strategy": strategy, "budget": budget, "seed": seed, "overall": score}
                row |= {"tasks": dict.fromkeys(tasks, score), "nfe": budget, "seconds": budget / 100}
                rows.append(row | ({"ci": [score - 0.1, score + 0.1]} if strategy == "best-of-n" else {}))
    (sweep / "sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cells = [
        {"strategy": s, "budget": b, "seeds": 3, "overall": 0.5, "std": 0.02, "tasks": {}}
        | {"nfe": b, "verifier_calls": b / 20, "tflops": 0.001, "seconds": b / 100}
        for s in ("best-of-n", "random-search")
        for b in (40, 80, 160)
    ]
    reach = {"reference": "best-of-n", "budget": 160, "score": 0.5, "strategies": {"best-of-n": None}}
    (sweep / "sweep_summary.json").write_text(json.dumps({"cells": cells, "reach": reach}))
    proc = CliRunner().invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "plots")])
    assert proc.exit_code == 0, proc.output
    for stem in ("compute-nfe", "compute-seconds"):
        for ext in ("png", "svg"):
            _assert_figure(tmp_path / "plots" / f"{stem}.{ext}")
    index, page = build_report([sweep], tmp_path / "report")
    raw = page.read_text(encoding="utf-8")
    assert raw.count('<img src="sweep/compute-') == 2 and "random-search" in raw
    assert 'href="sweep.html"' in index.read_text(encoding="utf-8")
    wrong = CliRunner().invoke(app, ["summary", str(sweep)])
    assert wrong.exit_code != 0 and "is a sweep" in str(wrong.exception)


def test_demo_finish_draws_the_scaling_curve(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    out = tmp_path / "demo"
    prompts = representative_subset(1)[:3]
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=8)
    cfg = SearchConfig(params={"n": 4}, steps=2)
    run(cfg, prompts, out, gen, LabVerifier.from_pretrained(str(tiny_models["visa"])))
    result = finish(out, cfg, prompts, [1, 2, 4], gen.nfe_per_sample(), LabEvaluator())
    assert [r["n"] for r in result["curve"]] == [1, 2, 4]
    for ext in ("png", "svg"):
        _assert_figure(out / "report" / f"scaling.{ext}")


def test_summary_command_tabulates_scores_and_compute(lab_folder: Path) -> None:
    proc = CliRunner().invoke(app, ["summary", str(lab_folder)], terminal_width=200)
    assert proc.exit_code == 0, proc.output
    summary = json.loads((lab_folder / "summary.json").read_text())
    totals = json.loads((lab_folder / "run.json").read_text())["totals"]
    for task, score in summary["tasks"].items():
        assert any(task in line and f"{score:.3f}" in line for line in proc.stdout.splitlines())
    assert f"{summary['overall']:.3f}" in proc.stdout
    nfe_line = next(line for line in proc.stdout.splitlines() if "NFEs" in line)
    assert f"{totals['nfe']:,}" in nfe_line and f"{totals['nfe'] / 7:,.1f}" in nfe_line
    assert "best-of-n" in proc.stdout and "verifier calls" in proc.stdout


def test_summary_and_report_fail_in_one_line_on_a_wrong_folder(tmp_path: Path) -> None:
    for args in (["summary", str(tmp_path)], ["report", str(tmp_path)], ["report", str(tmp_path), str(tmp_path)]):
        proc = CliRunner().invoke(app, args)
        assert proc.exit_code != 0 and proc.exception is not None
        assert "no prompt folders" in str(proc.exception) or "--out" in str(proc.exception)


def _outcomes() -> list[PromptOutcome]:
    return [
        PromptOutcome(0, Spend(nfe=8, verifier_calls=2), 2, float("nan"), skipped=True),
        PromptOutcome(1, Spend(nfe=8, verifier_calls=2), 2, 0.25),
        PromptOutcome(2, Spend(nfe=8, verifier_calls=2), 2, 0.75),
    ]


def test_progress_json_lines_and_quiet(tmp_path: Path) -> None:
    log = tmp_path / "log"
    try:
        progress.set_mode("json")
        with log.open("w") as f, progress.prompt_progress(3, "best-of-2 ", Console(file=f), nfe_budget=24) as update:
            for outcome in _outcomes():
                update(outcome)
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert [e["event"] for e in events] == ["start", "prompt", "prompt", "prompt", "end"]
        assert events[0] == {"event": "start", "description": "best-of-2", "total": 3, "nfe_budget": 24}
        first, last = events[1], events[-1]
        assert first["skipped"] and first["best"] is None and first["eta_s"] is None and first["images_per_s"] == 0
        assert [e["done"] for e in events[1:4]] == [1, 2, 3]
        assert last["nfe"] == 24 and last["nfe_budget"] == 24 and last["candidates"] == 6
        assert last["verifier_calls"] == 6 and last["best"] == 0.75 and last["eta_s"] == 0
        progress.set_mode("quiet")
        quiet = Console(file=(tmp_path / "quiet").open("w"))
        with progress.prompt_progress(3, "x", quiet) as update:
            for outcome in _outcomes():
                update(outcome)
        assert (tmp_path / "quiet").read_text() == ""
        with pytest.raises(Exception, match="progress mode"):
            progress.set_mode("loud")
    finally:
        progress.set_mode("rich")


def test_global_log_format_option_streams_json_from_search(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in representative_subset(1)[:2]))
    args = ["--log-format", "json", "search", "--out", str(tmp_path / "out"), "--prompts", str(prompts)]
    args += ["--generator", str(tiny_models["generator"]), "--verifier", str(tiny_models["visa"])]
    args += ["--n", "2", "--steps", "2", "--nfe", "8", "--device", "cpu"]
    try:
        proc = CliRunner().invoke(app, args)
    finally:
        progress.set_mode("rich")
    assert proc.exit_code == 0, proc.output
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["start", "prompt", "prompt", "end"]
    assert events[-1]["nfe"] == 16 and events[-1]["nfe_budget"] == 16 and events[-1]["best"] is not None
    bad = CliRunner().invoke(app, ["--log-format", "xml", "summary", str(tmp_path / "out")])
    assert bad.exit_code != 0 and "--log-format" in str(bad.exception)
