"""The registry: one list per kind of what a name can be, plug-ins of all three entry-point groups, the listing
commands, one-line errors for unknown names, and the README's verifier table kept to the registry's list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ttscale.errors import TTScaleError
from ttscale.evaluator import Evaluator
from ttscale.generator import Generator
from ttscale.lab.evaluator import LabEvaluator
from ttscale.lab.generator import LabGenerator
from ttscale.registry import BUILT_IN, GROUPS, KINDS, entries, entry, load_evaluator, load_generator, load_verifier
from ttscale.verifier import Verifier

README = Path(__file__).resolve().parents[1] / "README.md"
PLUGINS = '''
import torch

from ttscale.evaluator import Verdict


class Flat:
    """Flat grey images, every pixel at one level."""

    def __init__(self, level="0.5", *, steps=20, guidance=3.0, device="cpu", batch_size=64):
        self.name, self.level, self.steps = f"flat{level}", float(level), steps

    def sample(self, prompt, seeds):
        return torch.full((len(seeds), 3, 8, 8), self.level)

    def nfe_per_sample(self):
        return self.steps


class Brightness:
    """Mean brightness of an image."""

    metrics = ("brightness",)
    flops_per_image = 0.0

    def __init__(self, device="cpu"):
        self.name, self.device = "brightness", device

    def score(self, images, prompts):
        return {"brightness": images.mean(dim=(1, 2, 3))}


class Always:
    """Says yes (or no) to every image."""

    def __init__(self, answer="yes"):
        self.name, self.answer = f"always-{answer}", answer

    def evaluate(self, image, metadata):
        return Verdict(self.answer == "yes", reason=self.answer)
'''
ENTRY_POINTS = """
[ttscale.generators]
flat = fake_plugins:Flat

[ttscale.verifiers]
bright = fake_plugins:Brightness

[ttscale.evaluators]
always = fake_plugins:Always
broken = fake_plugins:Missing
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution `fake-plugins` with one entry point per group (and one broken), on sys.path."""
    (tmp_path / "fake_plugins.py").write_text(textwrap.dedent(PLUGINS))
    info = tmp_path / "fake_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fake_plugins", None)


def ttscale(*args: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(path), *sys.path]), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "ttscale", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_plugins_of_every_group_load_by_name_and_import_string(plugins: Path) -> None:
    gen = load_generator("flat:0.25", steps=3)
    assert isinstance(gen, Generator) and gen.name == "flat0.25" and gen.nfe_per_sample() == 3
    assert torch.equal(gen.sample("p", [0, 1]), torch.full((2, 3, 8, 8), 0.25))
    assert load_generator("fake_plugins:Flat").name == "flat0.5"
    ver = load_verifier("bright")
    assert isinstance(ver, Verifier) and ver.metrics == ("brightness",)
    judge = load_evaluator("always:no")
    assert isinstance(judge, Evaluator) and not judge.evaluate(np.zeros((4, 4, 3), np.uint8), {}).correct
    assert load_evaluator("fake_plugins:Always").evaluate(np.zeros((4, 4, 3), np.uint8), {}).correct
    with pytest.raises(TTScaleError, match=r"cannot be called with steps=, guidance=, device=, batch_size=: "):
        load_generator("fake_plugins:Always")
    with pytest.raises(TTScaleError, match=r"did not make an evaluator: it lacks evaluate"):
        load_evaluator("fake_plugins:Brightness")


def test_plugins_are_listed_after_the_built_ins_with_their_arguments(plugins: Path) -> None:
    for kind, plugin in (("generator", "flat[:ARG]"), ("verifier", "bright[:ARG]"), ("evaluator", "always[:ARG]")):
        schemes = [e.scheme for e in entries(kind)]
        builtin = [e.scheme for e in BUILT_IN[kind]]
        assert schemes[: len(builtin)] == builtin and schemes[-1] == "package.module:ClassName"
        assert plugin in schemes[len(builtin) : -1]
    (flat,) = [e for e in entries("generator") if e.scheme == "flat[:ARG]"]
    assert flat.arguments == ("level='0.5'",)  # steps=, guidance=, device=, batch_size= are the registry's to give
    assert flat.description == "Flat grey images, every pixel at one level."
    assert flat.origin == "plug-in of fake-plugins 0.1"
    (broken,) = [e for e in entries("evaluator") if e.scheme == "broken[:ARG]"]
    assert broken.description.startswith("cannot be loaded: AttributeError")


def test_the_first_matching_entry_wins(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    assert entry("verifier", "aesthetic:head.safetensors").scheme == "aesthetic:HEAD[@CLIP]"
    assert entry("verifier", "/models/judge.safetensors").scheme == "FILE.safetensors"
    assert entry("generator", "org/model").scheme == "ORG/NAME"
    assert entry("generator", str(tmp_path)).scheme == "FOLDER"
    assert entry("generator", "diffusers:org/model?dtype=bf16").scheme == "diffusers:ID[?OPTIONS]"
    assert entry("generator", "some.module:Class").scheme == "package.module:ClassName"
    assert isinstance(load_generator(str(tiny_models["generator"]), steps=2), LabGenerator)
    assert isinstance(load_evaluator("lab"), LabEvaluator)
    with pytest.raises(TTScaleError, match=r"^unknown generator 'mine:org/model'; choose one of lab-small, "):
        entry("generator", "mine:org/model")  # an argument with a slash is no hub id


@pytest.mark.slow
def test_listing_commands_show_built_ins_and_plugins(plugins: Path) -> None:
    shown = {
        "generators": ("lab-small", "diffusers:ID[?OPTIONS]", "ORG/NAME", "flat[:ARG]", "level='0.5'"),
        "verifiers": ("lab-visa", "clip[:MODEL]", "pickscore[:MODEL[@PROCESSOR]]", "bright[:ARG]", "Mean brightness"),
        "evaluators": ("lab", "always[:ARG]", "answer='yes'", "cannot be loaded"),
    }
    for command, needles in shown.items():
        proc = ttscale(command, path=plugins)
        assert proc.returncode == 0, proc.stderr
        for needle in (*needles, "plug-in of fake-plugins 0.1", "package.module:ClassName"):
            assert needle in proc.stdout, (command, needle, proc.stdout)


@pytest.mark.slow
def test_an_unknown_name_is_one_line_listing_the_choices(plugins: Path, tmp_path: Path) -> None:
    calls = {
        "generator": ("search", "--generator", "nope", "--n", "2", "--out", str(tmp_path / "run"), "--limit", "1"),
        "verifier": ("pick", str(tmp_path), "--verifier", "nope"),
        "evaluator": ("evaluate", str(tmp_path), "--evaluator", "nope"),
    }
    plugin = {"generator": "flat[:ARG]", "verifier": "bright[:ARG]", "evaluator": "always[:ARG]"}
    for kind, args in calls.items():
        proc = ttscale(*args, path=plugins)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: unknown {kind} 'nope'; choose one of "), lines[0]
        for scheme in [e.scheme for e in BUILT_IN[kind]] + [plugin[kind], "package.module:ClassName"]:
            assert scheme in lines[0], (scheme, lines[0])  # rich markup such as [@PROCESSOR] printed as it is


def test_every_kind_has_an_entry_point_group_and_one_line_descriptions() -> None:
    assert GROUPS == {
        "generator": "ttscale.generators",
        "verifier": "ttscale.verifiers",
        "evaluator": "ttscale.evaluators",
    }
    assert [e.scheme for e in BUILT_IN["evaluator"]] == ["lab"]
    assert all(e.description and "\n" not in e.description for kind in KINDS for e in BUILT_IN[kind])


def test_the_readme_verifier_table_names_exactly_the_registry_schemes() -> None:
    section = README.read_text(encoding="utf-8").split("\n## Verifiers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = [name for row in rows for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
    assert named == [e.scheme for e in BUILT_IN["verifier"]]
