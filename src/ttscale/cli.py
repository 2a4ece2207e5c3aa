"""The `ttscale` command line. Every command has --help; user errors print one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ttscale.errors import TTScaleError

app = typer.Typer(
    help="Inference-time scaling for text-to-image diffusion: search over noise and paths, ranked by verifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
lab = typer.Typer(help="The lab world: scenes, prompts and small models shipped inside ttscale.", no_args_is_help=True)
app.add_typer(lab, name="lab")
console = Console(stderr=True)


@lab.command("prompts")
def lab_prompts(
    split: Annotated[str, typer.Option(help="train (every trainable prompt), test (553, GenEval's task sizes) or heldout.")] = "test",
) -> None:
    """Print the lab prompt suite as GenEval-format JSONL (one prompt per line)."""
    from ttscale.lab.prompts import SPLITS, prompt_suite

    if split not in SPLITS:
        raise TTScaleError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    for metadata in prompt_suite(split):  # type: ignore[arg-type]
        sys.stdout.write(json.dumps(metadata) + "\n")


@lab.command("render")
def lab_render(
    out: Annotated[Path, typer.Option(help="Folder to write (GenEval layout: 00000/metadata.jsonl, 00000/samples/00000.png …).")],
    n: Annotated[int, typer.Option(help="Number of scenes; prompts cycle through the split.")] = 553,
    split: Annotated[str, typer.Option(help="Prompt split to draw scenes for.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the scene sampler.")] = 0,
    resolution: Annotated[int, typer.Option(help="Image side in pixels.")] = 32,
) -> None:
    """Render ground-truth scenes for the lab prompts as a GenEval-format folder (one image per prompt)."""
    import numpy as np

    from ttscale.folder import write_prompt
    from ttscale.lab.prompts import SPLITS, prompt_suite
    from ttscale.lab.scenes import render, sample_scene

    if split not in SPLITS:
        raise TTScaleError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if n < 1:
        raise TTScaleError("--n must be at least 1")
    if resolution < 24:
        raise TTScaleError("--resolution must be at least 24 pixels for shapes to stay recognisable")
    suite = prompt_suite(split)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    from rich.progress import track

    for i in track(range(n), description="rendering", console=console, transient=True):
        metadata = suite[i % len(suite)]
        scene = sample_scene(metadata, rng, training=split == "train", resolution=resolution)
        write_prompt(out, i, metadata, [render(scene, resolution)])
    console.print(f"wrote {n} scenes to {out}")


@app.command("evaluate")
def evaluate(
    out: Annotated[Path, typer.Argument(help="A GenEval-format folder (ours or another tool's).")],
    evaluator: Annotated[str, typer.Option(help="Evaluator to judge with.")] = "lab",
) -> None:
    """Judge every kept image; write results.jsonl and summary.json (per-task accuracy and overall)."""
    from ttscale.evaluation import evaluate_folder, get_evaluator
    from ttscale.tables import summary_table

    summary = evaluate_folder(out, get_evaluator(evaluator), progress=True)
    Console().print(summary_table(summary, title=str(out)))


@lab.command("train-generator")
def lab_train_generator(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints (lab-<size>-step<N>.safetensors) and the log.")],
    size: Annotated[str, typer.Option(help="small (~2.3M parameters) or large (~5.2M).")] = "small",
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of data, initialisation and batches.")] = 0,
    eval_every: Annotated[int, typer.Option(help="Evaluate on the test split and save a checkpoint every N steps.")] = 8000,
    workers: Annotated[int, typer.Option(help="CPU processes for rendering and judging.")] = 8,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
) -> None:
    """Train a lab generator (rectified flow, pixel space) on rendered train-split scenes; GPU if present."""
    from ttscale.lab.train import SIZES, GeneratorRun, train_generator

    if size not in SIZES:
        raise TTScaleError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    train_generator(
        GeneratorRun(size=size, steps=steps, batch=batch, seed=seed, eval_every=eval_every, workers=workers, max_minutes=max_minutes),
        out,
    )


@lab.command("train-verifiers")
def lab_train_verifiers(
    out: Annotated[Path, typer.Option(help="Folder for lab-visa.safetensors, lab-clip.safetensors and verifiers.json.")],
    steps: Annotated[int, typer.Option(help="Optimiser steps per verifier.")] = 6000,
    seed: Annotated[int, typer.Option(help="Seed of data, initialisation and batches.")] = 0,
    workers: Annotated[int, typer.Option(help="CPU processes for rendering and judging.")] = 8,
) -> None:
    """Train lab-visa and lab-clip on rendered scenes and the shipped generators' samples, labelled by the evaluator."""
    from ttscale.lab.train import VerifierRun, train_verifiers

    train_verifiers(VerifierRun(steps=steps, seed=seed, workers=workers), out)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2."""
    try:
        app()
    except TTScaleError as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
