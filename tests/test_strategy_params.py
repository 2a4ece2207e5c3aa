"""Strategy parameters: one typed model per strategy, checked when a config is read (one line, exit 2, before
any model loads), and the registry, `ttscale strategies`, the sweep and the README all reading the same models."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import ttscale.registry
import ttscale.runner
from ttscale.budget import Budget, Meter
from ttscale.cli import app, main
from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.verifiers import LabVerifier
from ttscale.runner import run
from ttscale.search import Search
from ttscale.strategies import STRATEGIES, strategy_table
from ttscale.strategies.rounds import Params as RoundsParams
from ttscale.strategies.rounds import rounds
from ttscale.sweep import SWEEP_PARAMS

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(STRATEGIES)


def takes(name: str) -> str:
    return ", ".join(STRATEGIES[name].params.parameters())


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model load fails the test: parameter errors must come first."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the parameters were checked")

    for module, attr in [
        (ttscale.registry, "load_generator"),
        (ttscale.registry, "load_verifier"),
        (ttscale.registry, "load_models"),
        (ttscale.runner, "load_judges"),
    ]:
        monkeypatch.setattr(module, attr, refuse)


def cli_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `ttscale search …` in this process; return its one error line (exit code 2, within 2 s)."""
    monkeypatch.setattr(sys, "argv", ["ttscale", "search", *args])
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main()
    assert time.perf_counter() - start < 2.0
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- the models


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_has_one_documented_closed_model(name: str) -> None:
    params = STRATEGIES[name].params
    assert params.name() == name and params().strategy == name
    assert params.model_config.get("extra") == "forbid"
    for field in params.parameters():
        assert params.model_fields[field].description, field
    assert (params.n_field in params.parameters()) if params.n_field else params.n_instead
    for role in params.judges:  # names of verifiers, unset by default
        assert params.model_fields[role].default is None
    if params.open_ended:
        assert params.model_fields[params.open_ended].default is None


def test_strategies_import_no_loader_config_or_registry() -> None:
    for path in (ROOT / "src" / "ttscale" / "strategies").glob("*.py"):
        if path.name == "__init__.py":
            continue
        imported = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)}
        assert not imported & {"ttscale.config", "ttscale.strategies", "ttscale.registry"}, path


@pytest.mark.parametrize("name", NAMES)
def test_the_written_shape_is_accepted_and_kept(name: str) -> None:
    field = STRATEGIES[name].params.parameters()[-1]
    default = STRATEGIES[name].params.model_fields[field].default
    value = default if default is not None else {"confirm": "lab-clip", "cheap_verifier": "lab-clip"}.get(field, 2)
    config = SearchConfig.model_validate({"strategy": name, "params": {field: value}, "budget": {"nfe": 100}})
    assert isinstance(config.params, STRATEGIES[name].params) and getattr(config.params, field) == value
    assert config.model_dump(mode="json")["params"] == {field: value}  # run.json: as written, no tag or defaults
    assert SearchConfig.model_validate(config.model_dump(mode="json")) == config


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    params=st.dictionaries(
        st.sampled_from(sorted({p for s in STRATEGIES.values() for p in s.params.parameters()} | {"bogus"})),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-3, 40),
            st.floats(-2, 40, allow_nan=False),
            st.text(max_size=4),
            st.lists(st.integers(0, 6), max_size=3),
        ),
        max_size=4,
    ),
    n=st.one_of(st.none(), st.integers(-1, 9)),
)
def test_any_params_give_a_config_or_one_line_naming_what_is_wrong(
    name: str, params: dict[str, Any], n: int | None
) -> None:
    try:
        config = SearchConfig.load(None, n=n, strategy=name, params=params, nfe=1000)
    except TTScaleError as err:
        message = str(err)
        assert "\n" not in message
        assert message.startswith(("config: params.", "--n: ")), message
        if message.startswith("config: params."):
            field = message.split(":")[1].strip().removeprefix("params.").split(".")[0]
            assert field in params or field == STRATEGIES[name].params.n_field, message
            assert takes(name) in message
        return
    assert isinstance(config.params, STRATEGIES[name].params)
    if n is not None:
        field = STRATEGIES[name].params.n_field
        assert field is not None and getattr(config.params, field) == n


@pytest.mark.parametrize("name", NAMES)
def test_n_sets_the_strategys_count_or_says_what_to_set(name: str) -> None:
    params = STRATEGIES[name].params
    if params.n_field is None:
        with pytest.raises(TTScaleError, match=f"--n: {name} has no n; .*params\\."):
            SearchConfig.load(None, n=3, strategy=name)
    else:
        config = SearchConfig.load(None, n=3, strategy=name, nfe=1000)
        assert getattr(config.params, params.n_field) == 3
        assert config.model_dump()["params"] == {params.n_field: 3}


def test_open_ended_strategies_need_their_count_or_a_budget() -> None:
    for name in ("best-of-n", "random-search", "adaptive"):
        field = STRATEGIES[name].params.open_ended
        with pytest.raises(TTScaleError, match=f"{name} needs params.{field} or a budget"):
            SearchConfig.load(None, strategy=name)
        assert SearchConfig.load(None, strategy=name, seconds=5.0).budget.bounded


# ---------------------------------------------------------------- the CLI: one line, exit 2, nothing loaded


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_parameter_from_the_cli_is_one_line_before_any_model_loads(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_models: None
) -> None:
    out, config = str(tmp_path / "o"), tmp_path / "bad.json"
    config.write_text(json.dumps({"strategy": name, "params": {"nope": 1}}))
    line = cli_error(monkeypatch, capsys, "--config", str(config), "--out", out)
    assert line.endswith(f"config: params.nope: unknown parameter for {name}; it takes {takes(name)}")
    for field in STRATEGIES[name].params.parameters():  # a wrong type, field by field
        config.write_text(json.dumps({"strategy": name, "params": {field: {"a": 1}}, "budget": {"nfe": 99}}))
        line = cli_error(monkeypatch, capsys, "--config", str(config), "--out", out)
        assert f"config: params.{field}: " in line and line.endswith(f"; {name} takes {takes(name)}")
    n_field = STRATEGIES[name].params.n_field
    line = cli_error(monkeypatch, capsys, "--strategy", name, "--n", "0", "--out", out)
    if n_field is None:
        assert f"--n: {name} has no n; " in line and "params." in line
    else:  # counts start at 1
        assert f"config: params.{n_field}: Input should be greater than or equal to 1" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_parameter_from_a_config_file_exits_2_in_a_fresh_process(name: str, tmp_path: Path) -> None:
    """With a generator that does not exist, reaching the loader would print its error instead."""
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"strategy": name, "params": {"n_": 4}}))
    args = ["search", "--config", str(config), "--generator", "no-such-generator", "--out", str(tmp_path / "o")]
    if STRATEGIES[name].params.n_field is None:
        config.write_text(json.dumps({"strategy": name}))
        args += ["--n", "4"]
    proc = subprocess.run([sys.executable, "-m", "ttscale", *args], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    field = "n_" if STRATEGIES[name].params.n_field else "--n"
    assert f"{field}" in lines[0] and name in lines[0] and "generator" not in lines[0]


def test_ttscale_strategies_shows_every_parameter_with_type_default_and_meaning() -> None:
    result = CliRunner().invoke(app, ["strategies"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name, strategy in STRATEGIES.items():
        assert name in result.output and strategy.summary in result.output
        for field in strategy.params.parameters():
            info = strategy.params.model_fields[field]
            row = next(
                line for line in result.output.splitlines() if f" {field} " in line and (info.description or "") in line
            )
            assert repr(info.default) in row


# ---------------------------------------------------------------- generated from the models


def test_the_readme_table_is_the_registrys() -> None:
    readme = (ROOT / "README.md").read_text()
    table = strategy_table()
    assert table in readme
    rows = [line for line in table.splitlines()[2:]]
    assert [row.split("|")[1].strip(" `") for row in rows] == NAMES
    for row, strategy in zip(rows, STRATEGIES.values(), strict=True):
        listed = [cell.strip(" *`").split("=")[0] for cell in row.split("|")[4].split(",")]
        assert listed == strategy.params.parameters()


def test_sweep_parameters_are_the_strategies_models() -> None:
    assert set(SWEEP_PARAMS) == set(STRATEGIES) - {"best-of-n"}
    for name, make in SWEEP_PARAMS.items():
        for budget in (160, 640, 2560):
            assert isinstance(make(budget, 40), STRATEGIES[name].params)


# ---------------------------------------------------------------- judges: resolved by the runner, handed over


def test_the_runner_loads_each_extra_judge_once_per_run_and_hands_it_over(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[tuple[str, str]] = []

    def load_verifier(name: str, *, device: str = "cpu") -> LabVerifier:
        loads.append((name, device))
        return LabVerifier.from_pretrained(name, device=device)

    monkeypatch.setattr(ttscale.registry, "load_verifier", load_verifier)  # what `registry.load_judges` calls
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=4)
    visa = LabVerifier.from_pretrained(str(tiny_models["visa"]))
    clip = str(tiny_models["clip"])
    config = SearchConfig(strategy="rounds", params={"rounds": 1, "samples": 3, "confirm": clip, "top": 2}, steps=2)
    run(config, prompt_suite("test")[:3], tmp_path, gen, visa)
    assert loads == [(clip, "cpu")]
    for index in range(3):
        records = [
            json.loads(line) for line in (tmp_path / f"{index:05d}" / "candidates.jsonl").read_text().splitlines()
        ]
        assert sum("clip_score" in r["scores"] for r in records) == 2
    assert json.loads((tmp_path / "run.json").read_text())["config"]["params"] == {
        "rounds": 1,
        "samples": 3,
        "confirm": clip,
        "top": 2,
    }


def test_a_strategy_without_the_judge_its_parameters_name_says_so(tiny_models: dict[str, Path]) -> None:
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=4)
    search = Search.metered(gen, LabVerifier.from_pretrained(str(tiny_models["visa"])), Meter(Budget()), "a red circle")
    with pytest.raises(TTScaleError, match=r"params\.confirm names the judge 'lab-clip'"):
        rounds(search, RoundsParams(rounds=1, samples=2, confirm="lab-clip"))
    assert search.meter.spent.nfe == 0
