"""The `ttscale` command line. Every command has --help; user errors print one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ttscale.errors import TTScaleError
from ttscale.strategies import STRATEGIES

if TYPE_CHECKING:
    from ttscale.config import SearchConfig
    from ttscale.distributed import Cluster
    from ttscale.registry import Kind

app = typer.Typer(
    help="Inference-time scaling for text-to-image diffusion: search over noise and paths, ranked by verifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
lab = typer.Typer(help="The lab world: scenes, prompts and small models shipped inside ttscale.", no_args_is_help=True)
app.add_typer(lab, name="lab")
console = Console(stderr=True)


@app.callback()
def global_options(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (batch jobs).")] = False,
    log_format: Annotated[
        str, typer.Option(help="Progress as `rich` bars, or `json`: one JSON object per line on stderr, for logs.")
    ] = "rich",
) -> None:
    """Options for every command; give them before the command: `ttscale --quiet search …`."""
    from ttscale.progress import set_mode

    if log_format not in ("rich", "json"):
        raise TTScaleError(f"--log-format {log_format!r}: choose rich or json")
    set_mode("quiet" if quiet else log_format)


@lab.command("prompts")
def lab_prompts(
    split: Annotated[
        str, typer.Option(help="train (every trainable prompt), test (553, GenEval's task sizes) or heldout.")
    ] = "test",
) -> None:
    """Print the lab prompt suite as GenEval-format JSONL (one prompt per line)."""
    from ttscale.lab.prompts import SPLITS, prompt_suite

    if split not in SPLITS:
        raise TTScaleError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    for metadata in prompt_suite(split):  # type: ignore[arg-type]
        sys.stdout.write(json.dumps(metadata) + "\n")


@lab.command("render")
def lab_render(
    out: Annotated[
        Path, typer.Option(help="Folder to write (GenEval layout: 00000/metadata.jsonl, 00000/samples/00000.png …).")
    ],
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
    from ttscale.progress import track

    for i in track(range(n), "rendering", console):
        metadata = suite[i % len(suite)]
        scene = sample_scene(metadata, rng, training=split == "train", resolution=resolution)
        write_prompt(out, i, metadata, [render(scene, resolution)])
    console.print(f"wrote {n} scenes to {out}")


@app.command("evaluate")
def evaluate(
    out: Annotated[Path, typer.Argument(help="A GenEval-format folder (ours or another tool's).")],
    evaluator: Annotated[str, typer.Option(help="Evaluator to judge with (`ttscale evaluators` lists them).")] = "lab",
) -> None:
    """Judge every kept image; write results.jsonl and summary.json (per-task accuracy and overall)."""
    from ttscale.evaluation import evaluate_folder
    from ttscale.registry import load_evaluator
    from ttscale.tables import summary_table

    summary = evaluate_folder(out, load_evaluator(evaluator), progress=True)
    Console().print(summary_table(summary, title=str(out)))


@lab.command("train-generator")
def lab_train_generator(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints (lab-<size>-step<N>.safetensors) and the log.")],
    size: Annotated[str, typer.Option(help="small (~2.3M parameters) or large (~5.2M).")] = "small",
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 20000,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of data, initialisation and batches.")] = 0,
    eval_every: Annotated[
        int, typer.Option(help="Evaluate on the test split and save a checkpoint every N steps.")
    ] = 8000,
    workers: Annotated[int, typer.Option(help="CPU processes for rendering and judging.")] = 8,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
) -> None:
    """Train a lab generator (rectified flow, pixel space) on rendered train-split scenes; GPU if present."""
    from ttscale.lab.train import SIZES, GeneratorRun, train_generator

    if size not in SIZES:
        raise TTScaleError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    train_generator(
        GeneratorRun(
            size=size,
            steps=steps,
            batch=batch,
            seed=seed,
            eval_every=eval_every,
            workers=workers,
            max_minutes=max_minutes,
        ),
        out,
    )


@lab.command("train-verifiers")
def lab_train_verifiers(
    out: Annotated[
        Path, typer.Option(help="Folder for lab-visa.safetensors, lab-clip.safetensors and verifiers.json.")
    ],
    only: Annotated[
        list[str] | None, typer.Option(help="Train only this verifier (repeatable): lab-visa or lab-clip.")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps per verifier.")] = 8000,
    batch: Annotated[int, typer.Option(help="Pairs per step.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of data, initialisation and batches.")] = 0,
    workers: Annotated[int, typer.Option(help="CPU processes for rendering and judging.")] = 8,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop a verifier's training after this long (checked every 1000 steps).")
    ] = None,
) -> None:
    """Train lab-visa and lab-clip on rendered scenes and the shipped generators' samples, labelled by the evaluator."""
    from ttscale.lab.train import JUDGES, VerifierRun, train_verifiers

    kinds = tuple(only or JUDGES)
    unknown = [k for k in kinds if k not in JUDGES]
    if unknown:
        raise TTScaleError(f"unknown lab verifier {unknown[0]!r}; choose from {', '.join(JUDGES)}")
    run = VerifierRun(kinds=kinds, steps=steps, batch=batch, seed=seed, workers=workers, max_minutes=max_minutes)
    train_verifiers(run, out)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2."""
    try:
        app()
    except TTScaleError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _prompts_from(source: str) -> list[dict[str, object]]:
    """A lab split name (train/test/heldout) or a GenEval-format JSONL file."""
    from ttscale.lab.prompts import SPLITS, prompt_suite
    from ttscale.prompts import load_prompts

    if source in SPLITS:
        return prompt_suite(source)  # type: ignore[arg-type]
    return load_prompts(Path(source))


# Options shared by `search` and `generate`: where prompts come from and how the run is spread out.
PromptsOption = Annotated[str, typer.Option(help="A lab split (train, test, heldout) or a GenEval-format JSONL file.")]
ShardOption = Annotated[
    str, typer.Option(help="I/N: run only prompts with index % N == I (one process per GPU or node).")
]
LimitOption = Annotated[int | None, typer.Option(help="Only the first N prompts.")]
WorkersOption = Annotated[
    int,
    typer.Option(
        help="Shards run as Ray tasks, one GPU each (pip install 'ttscale[cluster]'); the same images as one process."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster to run --workers on (e.g. auto); default: a Ray instance on this machine."),
]
StepsOption = Annotated[int | None, typer.Option(help="Denoising steps.")]
GuidanceOption = Annotated[
    float | None, typer.Option(help="Classifier-free guidance scale; <= 1 (e.g. 0) runs without CFG.")
]
SeedOption = Annotated[int | None, typer.Option(help="Run seed; each candidate's seed derives from it.")]
DeviceOption = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 … or auto.")]
GpusOption = Annotated[
    float | None, typer.Option(help="GPUs each Ray worker asks for (default: 1 on a GPU device, else 0).")
]


@app.command("search")
def search_cmd(
    out: Annotated[
        Path, typer.Option(help="Output folder (GenEval layout plus candidates.jsonl); an existing run resumes.")
    ],
    prompts: PromptsOption = "test",
    config: Annotated[
        Path | None, typer.Option(help="JSON file with any SearchConfig field; options below override it.")
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(
            help="lab-small, lab-large, a .safetensors file, a diffusers model (folder, cached hub id, diffusers:ID?dtype=bf16) or a plug-in: `ttscale generators` lists them."
        ),
    ] = None,
    verifier: Annotated[
        str | None,
        typer.Option(
            help="lab-visa, lab-clip, or any name `ttscale verifiers` lists (clip:…, vlm:…, openai:…, ensemble:A+B, module:Class)."
        ),
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="Search strategy (see `ttscale strategies`).")] = None,
    n: Annotated[
        int | None,
        typer.Option(
            help="The strategy's count: best-of-n's n, particle-filter's particles … (bold in `ttscale strategies`)."
        ),
    ] = None,
    k: Annotated[int | None, typer.Option(help="Images kept per prompt.")] = None,
    nfe: Annotated[int | None, typer.Option(help="Budget: NFEs per prompt (CFG branches counted).")] = None,
    verifier_calls: Annotated[int | None, typer.Option(help="Budget: verifier calls per prompt.")] = None,
    judge_requests: Annotated[
        int | None,
        typer.Option(help="Budget: judge requests per prompt (API requests with retries, pairwise comparisons)."),
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Budget: seconds per prompt.")] = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    shard: ShardOption = "0/1",
    limit: LimitOption = None,
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    gpus_per_worker: GpusOption = None,
) -> None:
    """Search each prompt with a strategy under a budget; keep the top k; record every candidate."""
    from ttscale.config import SearchConfig

    items = _prompts_from(prompts)[:limit]
    cfg = SearchConfig.load(  # checks the strategy and its parameters, before any model loads
        config,
        n=n,
        generator=generator,
        verifier=verifier,
        strategy=strategy,
        k=k,
        steps=steps,
        guidance=guidance,
        seed=seed,
        device=device,
        nfe=nfe,
        verifier_calls=verifier_calls,
        judge_requests=judge_requests,
        seconds=seconds,
    )
    _execute(cfg, items, out, _shard(shard), workers, ray_address, gpus_per_worker)


def _cluster(workers: int, ray_address: str | None, gpus_per_worker: float | None, shards: int) -> Cluster | None:
    """The Ray cluster that --workers / --ray-address ask for, or None to run in this process."""
    if workers == 1 and ray_address is None:
        return None
    if shards != 1:
        raise TTScaleError("--workers splits the prompts itself; leave out --shard")
    from ttscale.distributed import Cluster

    return Cluster(workers, ray_address, gpus_per_worker)


def _execute(
    cfg: SearchConfig,
    items: list[dict[str, object]],
    out: Path,
    shard: tuple[int, int],
    workers: int,
    ray_address: str | None,
    gpus_per_worker: float | None,
) -> None:
    """Run a search config over the prompts: in this process (one shard of them), or as Ray workers."""
    from ttscale.progress import prompt_progress
    from ttscale.registry import load_models
    from ttscale.runner import check_split, run

    shard_index, shards = shard
    check_split(cfg, max(shards, workers))  # before Ray starts or a model loads
    cluster = _cluster(workers, ray_address, gpus_per_worker, shards)
    total = len(range(shard_index, len(items), shards))
    nfe_budget = None if cfg.budget.nfe is None else cfg.budget.nfe * total
    label = f"{cfg.strategy} on {workers} workers " if cluster else f"{cfg.strategy} "
    with prompt_progress(total, label, console, nfe_budget=nfe_budget) as on_prompt:
        if cluster:
            from ttscale.distributed import run_on_ray

            totals = run_on_ray(cfg, items, out, cluster, on_prompt)
        else:
            gen, ver = load_models(cfg)
            totals = run(cfg, items, out, gen, ver, shard=(shard_index, shards), on_prompt=on_prompt)
    spend = totals.spend
    console.print(
        f"{totals.prompts} prompts ({totals.resumed} resumed), {totals.candidates} candidates, "
        f"{spend.shown('nfe')} NFEs, {spend.shown('verifier_calls')} verifier calls, "
        f"{spend.shown('judge_requests')} judge requests, {spend.seconds:.1f}s → {out}"
    )


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="Output folder (GenEval layout); an existing run resumes.")],
    prompts: PromptsOption = "test",
    generator: Annotated[
        str, typer.Option(help="lab-small, lab-large, a .safetensors file, or a diffusers model (as for search).")
    ] = "lab-small",
    n: Annotated[int, typer.Option(help="Images per prompt (GenEval's own script makes 4).")] = 4,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    shard: ShardOption = "0/1",
    limit: LimitOption = None,
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    gpus_per_worker: GpusOption = None,
) -> None:
    """Plain sampling, no search: n images per prompt, the baseline every search is compared to.

    The images are search's candidates 0 … n-1 (the same seeds), and nothing is scored, so `ttscale pick` can rank
    them later with any verifier.
    """
    from ttscale.config import NO_VERIFIER, SearchConfig

    if n < 1:
        raise TTScaleError("--n must be at least 1")
    cfg = SearchConfig.load(
        None,
        n=n,
        generator=generator,
        verifier=NO_VERIFIER,
        k=n,
        steps=steps,
        guidance=guidance,
        seed=seed,
        device=device,
    )
    _execute(cfg, _prompts_from(prompts)[:limit], out, _shard(shard), workers, ray_address, gpus_per_worker)


@app.command("strategies")
def strategies_cmd() -> None:
    """List the search strategies, whether each needs step access, and its parameters."""
    from rich.markup import escape
    from rich.table import Table

    from ttscale.strategies import parameters

    table = Table(title="strategies (parameters: --config {'params': {...}}; --n sets the one marked --n)")
    for col in ("name", "step access", "parameter", "type", "default", "what it is"):
        table.add_column(col)
    for name, strategy in STRATEGIES.items():
        rows = parameters(strategy.params)
        for j, (param, kind, default, description) in enumerate(rows):
            mark = " (--n)" if param == strategy.params.n_field else ""
            first = (
                (f"[bold]{name}[/bold]\n{strategy.summary}", "yes" if strategy.step_level else "no")
                if j == 0
                else ("", "")
            )
            cells = (param + mark, escape(kind), escape(repr(default)), escape(description))
            table.add_row(*first, *cells, end_section=j == len(rows) - 1)
    Console().print(table)


def _registry_table(kind: Kind) -> None:
    """What the registry knows of `kind`: built-ins, installed plug-ins and your own code, in matching order."""
    from rich.table import Table

    from ttscale.registry import GROUPS, entries

    table = Table(
        title=escape(f"{kind}s, the first that matches a name loads it (plug-ins: entry points {GROUPS[kind]})")
    )
    for col in ("name", "arguments", "what it is", "from"):
        table.add_column(col)
    for e in entries(kind):
        table.add_row(escape(e.scheme), escape("\n".join(e.arguments)), escape(e.description), escape(e.origin))
    Console().print(table)


@app.command("generators")
def generators_cmd() -> None:
    """List the names --generator takes: built-in models, installed plug-ins, and their arguments."""
    _registry_table("generator")


@app.command("verifiers")
def verifiers_cmd() -> None:
    """List the names --verifier takes: built-in judges, installed plug-ins, and their arguments."""
    _registry_table("verifier")


@app.command("evaluators")
def evaluators_cmd() -> None:
    """List the names --evaluator takes: built-ins, installed plug-ins, and their arguments."""
    _registry_table("evaluator")


@app.command("pick")
def pick_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder of `ttscale search` (with saved candidates).")],
    verifier: Annotated[
        str, typer.Option(help="Verifier to re-rank with (any --verifier name of `ttscale search`).")
    ] = "lab-visa",
    k: Annotated[int, typer.Option(help="Images to keep per prompt.")] = 1,
    metric: Annotated[str | None, typer.Option(help="Verifier metric to rank by.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda … or auto.")] = "auto",
) -> None:
    """Re-select the kept images from saved candidates with another verifier or k, generating nothing.

    The folder's evaluation judged the old kept images: a lab one is redone, any other removed (rerun `evaluate`).
    """
    from ttscale.config import resolve_device
    from ttscale.pick import pick
    from ttscale.registry import load_evaluator, load_verifier

    if k < 1:
        raise TTScaleError("--k must be at least 1")
    judge = load_verifier(verifier, device=resolve_device(device))
    done = pick(out, judge, k, metric, reevaluate=load_evaluator("lab"))
    console.print(f"re-picked {done.prompts} prompts with {verifier} (k={k})")
    if done.evaluation == "re-evaluated":
        console.print(f"re-evaluated the new kept images with the {done.evaluator} evaluator: `ttscale summary {out}`")
    elif done.evaluation == "removed":
        console.print(
            f"removed results.jsonl and summary.json, which judged the old kept images: run `ttscale evaluate {out}` "
            "again",
            highlight=False,
        )


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Output folder (left behind for `ttscale evaluate`, `pick` …).")] = Path(
        "demo-out"
    ),
    n: Annotated[int, typer.Option(help="Largest N; the curve covers 1, 2, 4 … N from one pool.")] = 32,
    per_task: Annotated[int, typer.Option(help="Test prompts per GenEval task.")] = 8,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 10,
    generator: Annotated[str, typer.Option(help="Lab generator.")] = "lab-small",
    verifier: Annotated[str, typer.Option(help="Lab verifier.")] = "lab-visa",
    device: Annotated[str, typer.Option(help="cpu, cuda … or auto.")] = "cpu",
) -> None:
    """Best-of-N with the lab models on the test prompts: a table of lab-GenEval against N and NFEs."""
    import time

    from rich.table import Table

    from ttscale.config import SearchConfig, resolve_device
    from ttscale.demo import finish
    from ttscale.lab.prompts import representative_subset
    from ttscale.progress import prompt_progress
    from ttscale.prompts import TASKS
    from ttscale.registry import load_evaluator, load_generator, load_verifier
    from ttscale.runner import run

    if n < 1:
        raise TTScaleError("--n must be at least 1")
    t0 = time.perf_counter()
    items = representative_subset(per_task)
    cfg = SearchConfig(generator=generator, verifier=verifier, params={"n": n}, steps=steps, device=device)
    dev = resolve_device(device)
    gen = load_generator(generator, steps=steps, guidance=cfg.guidance, device=dev, batch_size=cfg.batch_size)
    plan = n * gen.nfe_per_sample() * len(items)
    with prompt_progress(len(items), f"best-of-{n} ", console, nfe_budget=plan) as on_prompt:
        run(cfg, items, out, gen, load_verifier(verifier, device=dev), on_prompt=on_prompt)
    ns = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    result = finish(out, cfg, items, ns, gen.nfe_per_sample(), load_evaluator("lab"))
    table = Table(title=f"lab-GenEval of best-of-N ({generator}, picked by {verifier}, {len(items)} test prompts)")
    short = {
        "single_object": "single",
        "two_object": "two",
        "counting": "count",
        "position": "pos",
        "color_attr": "attr",
    }
    for col in ["N", "NFEs", *(short.get(t, t) for t in TASKS), "overall", "oracle"]:
        table.add_column(col, justify="right", no_wrap=True)
    for row in result["curve"]:
        table.add_row(
            str(row["n"]),
            str(row["nfe_per_prompt"]),
            *(f"{row['tasks'].get(t, float('nan')):.2f}" for t in TASKS),
            f"[bold]{row['overall']:.3f}[/bold]",
            f"{row['oracle']:.3f}",
        )
    Console().print(table)
    console.print(
        f"oracle = an evaluator pick, shown only as the verifier's headroom. {time.perf_counter() - t0:.0f}s; folder: {out}; "
        f"picture: {out / 'report' / 'scaling.png'}; gallery: `ttscale report {out}`"
    )


def _shard(text: str) -> tuple[int, int]:
    """Parse --shard I/N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise TTScaleError(f"--shard {text!r}: write it as I/N, e.g. 0/4") from None
    return index, count


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TTScaleError(f"{option} {text!r}: give comma-separated integers, e.g. 160,320,640") from None
    if not values:
        raise TTScaleError(f"{option} is empty")
    return values


@app.command("sweep")
def sweep_cmd(
    out: Annotated[
        Path, typer.Option(help="Sweep folder: one resumable run per strategy/budget/seed, plus sweep.jsonl.")
    ],
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] = ",".join(STRATEGIES),
    budgets: Annotated[str, typer.Option(help="Comma-separated NFE budgets per prompt.")] = "160,320,640,1280",
    seeds: Annotated[str, typer.Option(help="Comma-separated run seeds.")] = "0,1,2",
    reference: Annotated[
        int | None, typer.Option(help="Best-of-n also reaches this budget; report who matches it.")
    ] = None,
    prompts: Annotated[str, typer.Option(help="Lab split to draw the prompts from.")] = "test",
    per_task: Annotated[int, typer.Option(help="Prompts per GenEval task (evenly spread over the split).")] = 16,
    generator: Annotated[str, typer.Option(help="Generator.")] = "lab-small",
    verifier: Annotated[str, typer.Option(help="Verifier.")] = "lab-visa",
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 20,
    device: Annotated[str, typer.Option(help="cpu, cuda … or auto.")] = "auto",
    shard: ShardOption = "0/1",
    collect_only: Annotated[bool, typer.Option(help="Only evaluate and tabulate finished cells.")] = False,
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    gpus_per_worker: GpusOption = None,
) -> None:
    """Run strategies x budgets x seeds, evaluate, and write score vs total compute (table + sweep.jsonl)."""
    from rich.table import Table

    from ttscale.budget import Spend
    from ttscale.config import SearchConfig, resolve_device
    from ttscale.lab.prompts import SPLITS, representative_subset
    from ttscale.progress import prompt_progress
    from ttscale.registry import load_evaluator, load_generator, load_verifier
    from ttscale.strategies import get_strategy
    from ttscale.sweep import SweepSpec, aggregate, collect, reach, run_cells, run_sweep, write

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        get_strategy(name)
    if prompts not in SPLITS:
        raise TTScaleError(f"unknown split {prompts!r}; choose one of {', '.join(SPLITS)}")
    shard_index, shards = _shard(shard)
    dev = resolve_device(device)
    base = SearchConfig(generator=generator, verifier=verifier, steps=steps, device=device)
    spec = SweepSpec(names, _ints(budgets, "--budgets"), _ints(seeds, "--seeds"), base, reference)
    items = representative_subset(per_task, prompts)  # type: ignore[arg-type]
    gen = load_generator(generator, steps=steps, guidance=base.guidance, device=dev, batch_size=base.batch_size)
    cluster = _cluster(workers, ray_address, gpus_per_worker, shards)
    if not collect_only:
        mine = len(range(shard_index, len(items), shards))
        plan = sum(budget for _, budget, _ in run_cells(spec)) * mine
        with prompt_progress(len(run_cells(spec)) * mine, "sweep ", console, nfe_budget=plan) as on_prompt:
            if cluster:
                from ttscale.distributed import sweep_on_ray

                sweep_on_ray(spec, items, out, cluster, on_prompt)
            else:
                ver = load_verifier(verifier, device=dev)
                run_sweep(spec, items, out, gen, ver, (shard_index, shards), on_prompt)
        if shards > 1:
            console.print(f"shard {shard_index}/{shards} done; run with --collect-only once every shard has finished")
            return
    rows = collect(spec, items, out, gen.nfe_per_sample(), evaluator=load_evaluator("lab"))
    summary = aggregate(rows)
    reached = reach(summary, "best-of-n", spec.best_of_n_budgets[-1]) if "best-of-n" in names else {}
    write(out, rows, summary, reached)
    table = Table(
        title=f"lab-GenEval vs compute per prompt ({generator}, {verifier}, {len(items)} prompts, seeds {seeds})"
    )
    spent = ("NFEs", "verifier calls", "judge requests", "TFLOP", "seconds")
    for col in ("strategy", "NFE budget", *spent, "overall", "± std"):
        table.add_column(col, justify="right")
    for r in summary:
        spend = Spend.from_record(r)
        table.add_row(
            r["strategy"],
            f"{r['budget']}{'*' if r['derived'] else ''}",
            spend.shown("nfe"),
            spend.shown("verifier_calls", digits=1),
            spend.shown("judge_requests", digits=1),
            spend.shown("tflops", digits=4),
            spend.shown("seconds", digits=2),
            f"[bold]{r['overall']:.3f}[/bold]",
            f"{r['std']:.3f}",
        )
    Console().print(table)
    if any(r["derived"] for r in summary):
        console.print(
            "* derived from best-of-n's pool at its largest budget (its first n candidates), not a run of its own"
        )
    if reached:
        for name, hit in reached["strategies"].items():
            where = (
                f"at {hit['nfe']:.0f} NFEs = {hit['ratio']:.0%} of the reference" if hit else "never within the budgets"
            )
            console.print(f"{name}: reaches best-of-n@{reached['budget']} ({reached['score']:.3f}) {where}")


@app.command("report")
def report_cmd(
    folders: Annotated[list[Path], typer.Argument(help="Run folders (of search, demo …) and/or sweep folders.")],
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default: FOLDER/report for one input; needed for several).")
    ] = None,
    embed: Annotated[
        bool, typer.Option(help="Put images inside the pages (data URIs): one portable folder, larger pages.")
    ] = False,
    judge_candidates: Annotated[
        bool, typer.Option(help="For lab-evaluated runs, judge every candidate too (verdicts, calibration plot).")
    ] = True,
) -> None:
    """Write a static HTML report (no server, works offline): candidate gallery, scores, figures, run comparison."""
    from ttscale.registry import load_evaluator
    from ttscale.report.build import build_report

    if out is None:
        if len(folders) > 1:
            raise TTScaleError("give --out for a report of several folders")
        out = folders[0] / "report"
    judge = load_evaluator("lab") if judge_candidates else None
    pages = build_report(folders, out, embed=embed, judge=judge)
    console.print(f"wrote {len(pages)} pages; open {pages[0]}")


@app.command("plot")
def plot_cmd(
    folder: Annotated[Path, typer.Argument(help="A sweep folder (score vs compute) or a run folder.")],
    out: Annotated[Path | None, typer.Option(help="Folder for the PNG and SVG files (default: FOLDER/report).")] = None,
) -> None:
    """Only the figures of a run or sweep, as PNG and SVG, e.g. for a paper."""
    from ttscale.registry import load_evaluator
    from ttscale.report.build import write_figures

    paths = write_figures(folder, out or folder / "report", judge=load_evaluator("lab"))
    if not paths:
        raise TTScaleError(f"{folder} has nothing to plot: no candidate scores (candidates.jsonl) and no sweep.jsonl")
    for path in paths:
        console.print(str(path), highlight=False)


@app.command("summary")
def summary_cmd(
    out: Annotated[Path, typer.Argument(help="A run folder (of search, demo …).")],
) -> None:
    """A run at a glance: per-task scores of the kept images, compute spent and time."""
    from ttscale.report.summary import run_summary

    Console().print(run_summary(out))
