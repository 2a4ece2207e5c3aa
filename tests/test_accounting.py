"""Accounting: one Spend record everywhere, judge requests as the judge counted them, estimates and unknowns
marked as such, request and time budgets, and best-of-n's derived sweep rows."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ttscale.budget import Budget, BudgetExceeded, Meter, Spend
from ttscale.cli import app
from ttscale.config import SearchConfig
from ttscale.folder import read_jsonl
from ttscale.generator import CallableGenerator
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.prompts import prompt_suite, representative_subset
from ttscale.report.build import build_report
from ttscale.report.html import compute_rows
from ttscale.report.runs import load_run
from ttscale.runner import run
from ttscale.search import Search
from ttscale.strategies.adaptive import Params as AdaptiveParams
from ttscale.strategies.adaptive import adaptive
from ttscale.strategies.best_of_n import best_of_n
from ttscale.sweep import SweepSpec, aggregate, collect, run_sweep, write
from ttscale.verifier import MeteredVerifier
from ttscale.verifiers.tournament import Mode, Pair, Tournament

PROMPTS = prompt_suite("test")[::250]  # three prompts of different tasks
NFE = 10  # what the black-box generator says one image costs


def levels(seeds: Sequence[int]) -> torch.Tensor:
    """Black-box images: uniform grey at a level set by the seed, so a brightness judge has a clear favourite."""
    level = torch.tensor([(s % 997) / 996 for s in seeds], dtype=torch.float32)
    return level.view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()


def black_box(clock: list[float] | None = None) -> CallableGenerator:
    """A black-box generator; with a clock, each image drawn advances it by 0.1 s (fake time, no sleeping)."""

    def sample(prompt: str, seeds: Sequence[int]) -> torch.Tensor:
        if clock is not None:
            clock[0] += 0.1 * len(seeds)
        return levels(seeds)

    return CallableGenerator(sample, name="grey", nfe_per_sample=NFE)


class Brightness:
    """A local verifier with a known cost: one judge request per image."""

    name, metrics, flops_per_image = "brightness", ("brightness",), 5.0

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {"brightness": images.mean(dim=(1, 2, 3))}


class PlainJudge:
    """Prefers the brighter image and keeps no count of its own: the tournament counts its comparisons."""

    name = "plain"

    def __init__(self) -> None:
        self.asked = 0

    def prefer(self, images: torch.Tensor, prompt: str, pairs: Sequence[Pair]) -> dict[Pair, float]:
        self.asked += len(pairs)
        bright = images.mean(dim=(1, 2, 3))
        return {(a, b): float(bright[a] > bright[b]) for a, b in pairs}


class RetryingJudge(PlainJudge):
    """As PlainJudge, but its first request of every call fails once and is sent again: it counts both."""

    name = "retrying"

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def prefer(self, images: torch.Tensor, prompt: str, pairs: Sequence[Pair]) -> dict[Pair, float]:
        self.requests += len(pairs) + 1
        return super().prefer(images, prompt, pairs)


def spend_of(out: Path, index: int) -> dict[str, object]:
    return dict(json.loads((out / f"{index:05d}" / "spend.json").read_text()))


def test_spend_records_round_trip_and_read_back_old_ones() -> None:
    spend = Spend(nfe=40, verifier_calls=4, judge_requests=6, generator_flops=2e9, verifier_flops=math.nan)
    spend.seconds, spend.estimated = 1.5, frozenset({"nfe"})
    row = spend.record()
    assert row == {
        "nfe": 40,
        "verifier_calls": 4,
        "judge_requests": 6,
        "generator_flops": 2e9,
        "verifier_flops": None,  # unknown, not 0
        "seconds": 1.5,
        "estimated": ["nfe"],
    }
    back = Spend.from_record(json.loads(json.dumps(row)))
    assert back.record() == row and math.isnan(back.flops)
    assert spend.record(per=4)["nfe"] == 10 and spend.record(per=4)["generator_flops"] == 5e8
    # sums with an unknown part stay unknown; estimates stay marked
    total = Spend.total([back, Spend(nfe=8, verifier_calls=2, judge_requests=2, verifier_flops=1e6)])
    assert total.record()["verifier_flops"] is None and total.record()["generator_flops"] == 2e9
    assert total.shown("nfe") == "~48" and total.shown("tflops") == "unknown" and total.shown("judge_requests") == "8"
    assert total.shown("verifier_calls", per=4, digits=1) == "1.5"
    # a spend.json written before judge requests were counted: its verifier calls stand in, marked as an estimate
    old = {"strategy": "best-of-n", "nfe": 24, "verifier_calls": 4, "generator_flops": 1.0, "verifier_flops": 2.0}
    legacy = Spend.from_record(old | {"seconds": 0.25})
    assert (legacy.judge_requests, legacy.estimated, legacy.flops) == (4, frozenset({"judge_requests"}), 3.0)
    assert legacy.shown("judge_requests") == "~4" and legacy.shown("nfe") == "24"


@pytest.mark.parametrize(
    ("mode", "judge", "requests"),
    [
        ("knockout", PlainJudge, 2 * (5 - 1)),  # 5 images: 2 + 1 + 1 matches, each judged in both orders
        ("round-robin", PlainJudge, 5 * 4),
        ("knockout", RetryingJudge, 2 * (5 - 1) + 3),  # its own count: one retry in each of its 3 rounds
    ],
)
def test_a_tournament_run_records_the_judge_requests_really_made(
    tmp_path: Path, mode: Mode, judge: type[PlainJudge], requests: int
) -> None:
    pairwise = judge()
    verifier = Tournament(pairwise, mode)
    cfg = SearchConfig(generator="grey", verifier=f"{mode}:{judge.name}", params={"n": 5}, batch_size=8)
    totals = run(cfg, PROMPTS, tmp_path, black_box(), verifier)
    made = pairwise.requests if isinstance(pairwise, RetryingJudge) else pairwise.asked
    assert made == requests * len(PROMPTS) and verifier.comparisons == pairwise.asked
    for i in range(len(PROMPTS)):
        spend = spend_of(tmp_path, i)
        assert spend["judge_requests"] == requests and spend["verifier_calls"] == 5
        # a black box's NFEs are what it says an image costs; its FLOPs and the judge's are unknown
        assert spend["nfe"] == 5 * NFE and spend["estimated"] == ["nfe"]
        assert spend["generator_flops"] is None and spend["verifier_flops"] is None
        # the brightest image won, as the judge's verdicts say
        records = read_jsonl(tmp_path / f"{i:05d}" / "candidates.jsonl")
        best = max(records, key=lambda r: r["seed"] % 997)
        assert best["rank"] == 0
    record = json.loads((tmp_path / "run.json").read_text())["totals"]
    assert record["judge_requests"] == totals.spend.judge_requests == requests * len(PROMPTS)
    assert record["estimated"] == ["nfe"] and record["generator_flops"] is None
    assert record["seconds"] == record["search_seconds"] == totals.spend.seconds


def test_a_judge_request_budget_stops_a_run_at_its_limit(tmp_path: Path) -> None:
    """Batches of 4 through a knock-out ask 6 requests each: 6, 12, 18; then only 2 images (2 requests) fit."""
    judge = PlainJudge()
    cfg = SearchConfig(generator="grey", verifier="knockout:plain", budget=Budget(judge_requests=20), batch_size=4)
    totals = run(cfg, PROMPTS[:1], tmp_path, black_box(), Tournament(judge))
    assert totals.candidates == 4 + 4 + 4 + 2
    assert spend_of(tmp_path, 0)["judge_requests"] == judge.asked == 20
    assert spend_of(tmp_path, 0)["verifier_calls"] == 14


def test_scoring_past_a_request_budget_raises_before_the_judge_is_asked() -> None:
    judge = RetryingJudge()
    meter = Meter(Budget(judge_requests=7))
    verifier = MeteredVerifier(Tournament(judge), meter)
    verifier.score(levels([1, 2, 3]), ["p"] * 3)  # 2 rounds: 4 comparisons and 2 retries
    assert meter.spent.judge_requests == judge.requests == 6 and meter.spent.verifier_calls == 3
    assert meter.affords(verifier_calls=1) and not meter.affords(verifier_calls=2)
    with pytest.raises(BudgetExceeded, match="judge requests"):
        verifier.score(levels([4, 5]), ["p"] * 2)  # at least one request per image: 6 + 2 > 7
    assert judge.requests == 6 and meter.spent.verifier_calls == 3  # nothing was asked or charged
    # a local verifier asks one request per image, so its request budget stops exactly like a verifier-call one
    search = Search.metered(black_box(), Brightness(), Meter(Budget(judge_requests=7)), "p", batch_size=3)
    drawn = best_of_n(search)
    assert len(drawn.candidates) == 7 and search.meter.spent.judge_requests == 7


def test_a_seconds_budget_stops_open_ended_strategies(tmp_path: Path) -> None:
    """Each image takes 0.1 s of fake time; a batch starts while less than a second has passed."""
    clock = [0.0]

    def search(batch_size: int) -> Search:
        meter = Meter(Budget(seconds=1.0), clock=lambda: clock[0])
        return Search.metered(black_box(clock), Brightness(), meter, "p", batch_size=batch_size)

    bon = search(4)
    result = best_of_n(bon)  # batches start at 0, 0.4 and 0.8 s; at 1.2 s none does
    assert len(result.candidates) == 12 and bon.meter.spent.nfe == 12 * NFE
    clock[0] = 0.0
    ada = search(8)
    result = adaptive(
        ada, AdaptiveParams(threshold=2.0, batch=3)
    )  # never confident: batches start at 0, 0.3, 0.6 and 0.9 s
    assert len(result.candidates) == 12 and [r.extra["drawn"] for r in result.rounds] == [3, 6, 9, 12]
    assert result.rounds[-1].extra["stop"] == "budget" and ada.meter.close().seconds == pytest.approx(1.2)


def test_resuming_an_old_folder_reads_its_spend(tmp_path: Path) -> None:
    cfg = SearchConfig(generator="grey", verifier="brightness", params={"n": 3})
    run(cfg, PROMPTS[:2], tmp_path, black_box(), Brightness())
    old = {k: v for k, v in spend_of(tmp_path, 0).items() if k not in ("judge_requests", "estimated")}
    (tmp_path / "00000" / "spend.json").write_text(json.dumps(old) + "\n")  # as ttscale wrote it before
    totals = run(cfg, PROMPTS[:2], tmp_path, black_box(), Brightness())
    assert totals.resumed == 2 and totals.spend.judge_requests == 6 and totals.spend.verifier_flops == 30.0
    assert json.loads((tmp_path / "run.json").read_text())["totals"]["estimated"] == ["judge_requests", "nfe"]


def test_search_takes_a_judge_request_budget_and_summary_shows_what_is_unknown(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS[:2]))
    args = ["search", "--out", str(tmp_path / "lab"), "--prompts", str(prompts), "--judge-requests", "3"]
    args += ["--generator", str(tiny_models["generator"]), "--verifier", str(tiny_models["visa"])]
    proc = CliRunner().invoke(app, [*args, "--steps", "2", "--device", "cpu"])
    assert proc.exit_code == 0, proc.output
    assert "6 verifier calls, 6 judge requests" in " ".join(proc.stderr.split())  # rich wraps the line
    for i in range(2):
        spend = spend_of(tmp_path / "lab", i)
        assert spend["judge_requests"] == spend["verifier_calls"] == 3 and spend["estimated"] == []
        assert isinstance(spend["generator_flops"], float) and spend["generator_flops"] > 0
    # a black-box run: its NFEs estimated, its FLOPs unknown, and the summary says so instead of 0
    cfg = SearchConfig(generator="grey", verifier="brightness", params={"n": 2})
    run(cfg, PROMPTS[:2], tmp_path / "bb", black_box(), Brightness())
    rows = {r["name"]: (r["total"], r["per_prompt"]) for r in compute_rows(load_run(tmp_path / "bb"))}
    assert rows["NFEs"] == ("~40", "~20.0") and rows["TFLOP"] == ("unknown", "")
    assert rows["verifier calls"] == rows["judge requests"] == ("4", "2.0")
    shown = CliRunner().invoke(app, ["summary", str(tmp_path / "bb")], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "unknown" in next(line for line in shown.stdout.splitlines() if "TFLOP" in line)


def test_sweep_rows_say_which_best_of_n_budgets_are_derived_from_its_pool(tmp_path: Path) -> None:
    prompts = representative_subset(1)[:2]
    spec = SweepSpec(["best-of-n", "random-search"], [2 * NFE, 4 * NFE], [0], SearchConfig(), reference=8 * NFE)
    run_sweep(spec, prompts, tmp_path, black_box(), Brightness())
    rows = collect(spec, prompts, tmp_path, NFE, evaluator=LabEvaluator())
    bon = [r for r in rows if r["strategy"] == "best-of-n"]
    assert [(r["budget"], r["derived"]) for r in bon] == [(2 * NFE, True), (4 * NFE, True), (8 * NFE, False)]
    assert [r["nfe"] for r in bon] == [2 * NFE, 4 * NFE, 8 * NFE] and [r["judge_requests"] for r in bon] == [2, 4, 8]
    assert all(not r["derived"] for r in rows if r["strategy"] == "random-search")
    assert all(r["estimated"] == ["nfe"] and r["generator_flops"] is None for r in rows)
    summary = aggregate(rows)
    write(tmp_path, rows, summary, {})
    cells = json.loads((tmp_path / "sweep_summary.json").read_text())["cells"]
    assert {(c["strategy"], c["budget"]): c["derived"] for c in cells} == {
        ("best-of-n", 2 * NFE): True,
        ("best-of-n", 4 * NFE): True,
        ("best-of-n", 8 * NFE): False,
        ("random-search", 2 * NFE): False,
        ("random-search", 4 * NFE): False,
    }
    assert all(c["tflops"] is None and c["judge_requests"] == c["verifier_calls"] for c in cells)
    assert [json.loads(line)["derived"] for line in (tmp_path / "sweep.jsonl").read_text().splitlines()] == [
        r["derived"] for r in rows
    ]
    _, page = build_report([tmp_path], tmp_path / "report")
    html = page.read_text(encoding="utf-8")
    assert f"<td>{2 * NFE}*</td>" in html and f"<td>{8 * NFE}</td>" in html and "derived from best-of-n" in html


def test_the_sweep_table_marks_derived_budgets(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    args = ["sweep", "--out", str(tmp_path), "--strategies", "best-of-n", "--budgets", "4,8", "--seeds", "0"]
    args += ["--per-task", "1", "--generator", str(tiny_models["generator"]), "--verifier", str(tiny_models["visa"])]
    proc = CliRunner().invoke(app, [*args, "--steps", "2", "--device", "cpu"], terminal_width=200)
    assert proc.exit_code == 0, proc.output
    budgets = [line.split("│")[2].strip() for line in proc.stdout.splitlines() if line.startswith("│ best-")]
    assert budgets == ["4*", "8"] and "* derived from best-of-n's pool" in " ".join(proc.stderr.split())
