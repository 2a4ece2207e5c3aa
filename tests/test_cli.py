"""The CLI: GenEval folder layout, and one-line errors with non-zero exit codes for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from ttscale.cli import app
from ttscale.lab.prompts import prompt_suite


def ttscale(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ttscale", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]


def test_render_writes_geneval_layout_and_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    assert ttscale("lab", "render", "--n", "12", "--out", str(out)).returncode == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [f"{i:05d}" for i in range(12)]
    for i in range(12):
        meta = json.loads((out / f"{i:05d}" / "metadata.jsonl").read_text())
        assert meta == prompt_suite("test")[i]
        assert (out / f"{i:05d}" / "samples" / "00000.png").is_file()
    proc = ttscale("evaluate", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == 1.0 and summary["n_images"] == 12
    rows = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert set(rows[0]) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
    assert json.loads(rows[0]["metadata"]) == prompt_suite("test")[0]


def test_prompts_prints_jsonl() -> None:
    proc = ttscale("lab", "prompts", "--split", "heldout")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == len(prompt_suite("heldout"))
    assert json.loads(lines[0]) == prompt_suite("heldout")[0]


def test_evaluate_counts_every_sample_of_another_tools_folder(tmp_path: Path) -> None:
    out = tmp_path / "other"
    assert ttscale("lab", "render", "--n", "2", "--out", str(out)).returncode == 0
    samples = out / "00000" / "samples"
    (samples / "00000.png").rename(samples / "0007.png")  # another tool's numbering
    (samples / "notes.txt").write_text("ignored")
    assert ttscale("evaluate", str(out)).returncode == 0
    rows = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert [r["filename"] for r in rows] == ["00000/samples/0007.png", "00001/samples/00000.png"]


def _folder_with_metadata(tmp_path: Path, text: str) -> Path:
    out = tmp_path / "bad"
    (out / "00000" / "samples").mkdir(parents=True)
    (out / "00000" / "metadata.jsonl").write_text(text)
    return out


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ('{"prompt": "a photo of a cat", "tag": "single_object"', "malformed JSON"),
        (
            '{"prompt": "", "tag": "single_object", "include": [{"class": "cat", "count": 1}]}',
            "empty or missing `prompt`",
        ),
        (
            '{"prompt": "a cat", "tag": "animals", "include": [{"class": "cat", "count": 1}]}',
            "unknown task tag 'animals'",
        ),
    ],
)
def test_evaluate_rejects_bad_metadata(tmp_path: Path, metadata: str, needle: str) -> None:
    proc = ttscale("evaluate", str(_folder_with_metadata(tmp_path, metadata)))
    assert_one_line_error(proc, needle)
    assert "metadata.jsonl:1" in proc.stderr


def test_evaluate_missing_folder() -> None:
    assert_one_line_error(ttscale("evaluate", "/nonexistent/run"), "is not a folder")


def test_search_reports_malformed_prompt_file_line(tmp_path: Path) -> None:
    good = json.dumps(prompt_suite("test")[0])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(good + "\n" + good + "\n{broken\n")
    proc = ttscale("search", "--prompts", str(prompts), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "p.jsonl:3: malformed JSON")


def test_unknown_split_and_strategy_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(ttscale("lab", "prompts", "--split", "valid"), "unknown split 'valid'")
    proc = ttscale("search", "--strategy", "magic", "--out", str(tmp_path / "o"), "--limit", "1", "--n", "1")
    assert_one_line_error(proc, "unknown strategy 'magic'")


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under `command`, as the words that invoke it (the app itself: ())."""
    subcommands = command.commands.values() if isinstance(command, TyperGroup) else []
    return [path, *(p for sub in subcommands for p in _command_paths(sub, (*path, str(sub.name))))]


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_command_walk_finds_every_registered_command_and_group() -> None:
    """The help test below covers what this walk finds, so the walk must see what the app registers."""
    top = {info.name or typer.main.get_command_name(info.callback.__name__) for info in app.registered_commands}
    groups = {info.name for info in app.registered_groups}
    assert {p[0] for p in COMMANDS if len(p) == 1} == top | groups
    assert {("lab", "render"), ("lab", "prompts"), ("lab", "train-generator"), ("lab", "train-verifiers")} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words) or "ttscale")
def test_every_command_has_help(words: tuple[str, ...]) -> None:
    """`--help` on every command and group: a new command is covered without touching this test."""
    result = CliRunner().invoke(app, [*words, "--help"], prog_name="ttscale")
    assert result.exit_code == 0, result.output
    assert f"Usage: ttscale {' '.join(words)}".rstrip() in " ".join(result.output.split())


def test_carry_over_is_refused_with_shards_or_workers(tmp_path: Path) -> None:
    """carry_over hands unspent budget from prompt to prompt in order, which a split run cannot do the same way;
    the refusal comes before Ray starts or a model loads, so it writes nothing."""
    config = tmp_path / "carry.json"
    config.write_text(json.dumps({"carry_over": True, "strategy": "adaptive", "budget": {"nfe": 400}}))
    for split in (["--shard", "1/2"], ["--workers", "2"]):
        proc = ttscale("search", "--config", str(config), "--out", str(tmp_path / "o"), *split)
        assert_one_line_error(proc, "carry_over hands each prompt's unspent budget to the next")
        assert proc.returncode == 2
    assert not (tmp_path / "o").exists()


def test_generate_makes_searchs_first_candidates_unscored_and_pick_ranks_them_later(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    common = ["--generator", str(tiny_models["generator"]), "--steps", "2", "--limit", "2", "--device", "cpu"]
    done = ttscale("generate", "--out", str(tmp_path / "gen"), "--n", "3", *common)
    assert done.returncode == 0, done.stderr
    assert "0 verifier calls" in done.stderr
    searched = ttscale(
        "search", "--out", str(tmp_path / "bon"), "--n", "3", "--verifier", str(tiny_models["visa"]), *common
    )
    assert searched.returncode == 0, searched.stderr
    for index in range(2):
        gen, bon = tmp_path / "gen" / f"{index:05d}", tmp_path / "bon" / f"{index:05d}"
        # every image kept, in seed order, and each is the search's candidate of the same seed, byte for byte
        samples = sorted(p.name for p in (gen / "samples").iterdir())
        assert samples == ["00000.png", "00001.png", "00002.png"]
        for j, name in enumerate(samples):
            assert (gen / "samples" / name).read_bytes() == (bon / "candidates" / f"{j:05d}.png").read_bytes()
        records = [json.loads(line) for line in (gen / "candidates.jsonl").read_text().splitlines()]
        assert [r["seed"] for r in records] == [
            json.loads(line)["seed"] for line in (bon / "candidates.jsonl").read_text().splitlines()
        ]
        assert all(r["scores"] == {} and r["kept"] for r in records)
        assert json.loads((gen / "spend.json").read_text())["verifier_calls"] == 0
    assert ttscale("evaluate", str(tmp_path / "gen")).returncode == 0
    assert json.loads((tmp_path / "gen" / "summary.json").read_text())["n_images"] == 2 * 3
    picked = ttscale(
        "pick", str(tmp_path / "gen"), "--verifier", str(tiny_models["visa"]), "--k", "1", "--device", "cpu"
    )
    assert picked.returncode == 0, picked.stderr
    # the evaluation of the three images kept before is redone on the one kept now
    assert "re-evaluated the new kept images with the lab evaluator" in picked.stderr
    assert json.loads((tmp_path / "gen" / "summary.json").read_text())["n_images"] == 2
    assert [p.name for p in (tmp_path / "gen" / "00000" / "samples").iterdir()] == ["00000.png"]
    first_searched = json.loads((tmp_path / "bon" / "00000" / "candidates.jsonl").read_text().splitlines()[0])
    first_picked = json.loads((tmp_path / "gen" / "00000" / "candidates.jsonl").read_text().splitlines()[0])
    # the same judge on the same image, later: pick reads the PNG, search scored the image before rounding to uint8
    assert first_picked["scores"]["yes_prob"] == pytest.approx(first_searched["scores"]["yes_prob"], abs=1e-4)


def test_a_run_without_a_verifier_only_suits_plain_sampling(tmp_path: Path) -> None:
    proc = ttscale("search", "--verifier", "none", "--strategy", "particle-filter", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "strategy particle-filter ranks by a verifier; 'none' suits best-of-n")
    proc = ttscale("search", "--verifier", "none", "--verifier-calls", "8", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "verifier 'none' makes no verifier calls")
