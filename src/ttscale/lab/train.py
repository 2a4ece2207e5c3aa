"""Training of the lab models; `ttscale lab train-generator` / `train-verifiers` call these.

Both are reproducible from their seed: data, initialisation and batches come from seeded
generators, and the learning rate is constant after warm-up, so the checkpoint saved at step N
equals a run stopped at N. The generators are evaluated on the test split while they train, so
the shipped checkpoint can be chosen by measured score (the model card says which).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from ttscale.evaluation import summarize
from ttscale.lab.data import GROUNDING_CLASSES, render_dataset, render_grounded
from ttscale.lab.evaluator import LabEvaluator, detect
from ttscale.lab.generator import LabGenerator
from ttscale.lab.nets import (
    VOCAB,
    DualEncoder,
    FlowUNet,
    JudgeConfig,
    UNetConfig,
    YesNoJudge,
    count_parameters,
    tokenize,
)
from ttscale.lab.prompts import prompt_suite
from ttscale.lab.scenes import render, sample_scene
from ttscale.lab.weights import save
from ttscale.lab.world import (
    COLORS,
    HELDOUT_COLOR_SHAPE,
    HELDOUT_SHAPE_COUNT,
    NUMBER_WORDS,
    PLURALS,
    RELATIONS,
    SHAPES,
)
from ttscale.progress import track
from ttscale.samplers import sample
from ttscale.seeds import candidate_seed

SIZES: dict[str, UNetConfig] = {
    "small": UNetConfig(base=32, text_dim=64, text_layers=2),
    "large": UNetConfig(base=48, text_dim=96, text_layers=2),
}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _log(path: Path | None, row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)
    if path is not None:
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def _judge_one(args: tuple[np.ndarray, dict[str, Any]]) -> bool:
    return LabEvaluator().evaluate(args[0], args[1]).correct


def shows_heldout_pair(image: np.ndarray) -> bool:
    """Whether the evaluator sees a held-out colour/shape or shape/count pair in the image (whatever was asked)."""
    for shape, found in detect(image).by_class.items():
        if (shape, len(found)) in HELDOUT_SHAPE_COUNT or any((d.color, shape) in HELDOUT_COLOR_SHAPE for d in found):
            return True
    return False


def _parallel(fn: Callable[[Any], bool], items: Sequence[Any], workers: int) -> np.ndarray:
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return np.array(list(pool.map(fn, items, chunksize=256)), dtype=bool)
    return np.array([fn(x) for x in items], dtype=bool)


def judge_all(images: np.ndarray, metadata: Sequence[dict[str, Any]], workers: int = 1) -> np.ndarray:
    """Evaluator verdicts for many images (uint8 NxHxWx3), in parallel when workers > 1."""
    return _parallel(_judge_one, list(zip(images, metadata, strict=True)), workers)


@torch.no_grad()
def sample_pairs(gen: LabGenerator, prompts: Sequence[str], seeds: Sequence[int], batch: int = 1024) -> np.ndarray:
    """One image per (prompt, seed) pair, batched across prompts; uint8 NxHxWx3 (for training and evals)."""
    out = []
    for s in range(0, len(prompts), batch):
        cond = gen.net.encode(tokenize(prompts[s : s + batch]).to(gen.device))
        x = gen.noise(seeds[s : s + batch])
        x = sample(lambda x, i: gen.denoise(x, i, cond), x, gen.schedule())  # noqa: B023
        out.append((gen.decode(x) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def evaluate_generator(gen: LabGenerator, split: str, seeds: int, run_seed: int, workers: int) -> dict[str, Any]:
    """Base score: one sample per prompt, `seeds` times, pooled (the issue's 'several seeds')."""
    suite = prompt_suite(split)  # type: ignore[arg-type]
    metas = [m for _ in range(seeds) for m in suite]
    seed_list = [candidate_seed(run_seed, i, r) for r in range(seeds) for i in range(len(suite))]
    images = sample_pairs(gen, [m["prompt"] for m in metas], seed_list)
    correct = judge_all(images, metas, workers)
    per_seed = [
        summarize(
            {"tag": m["tag"], "correct": c}
            for m, c in zip(suite, correct[r * len(suite) : (r + 1) * len(suite)], strict=True)
        )["overall"]
        for r in range(seeds)
    ]
    summary = summarize({"tag": m["tag"], "correct": c} for m, c in zip(metas, correct, strict=True))
    return summary | {"overall_per_seed": per_seed}


@dataclass
class GeneratorRun:
    size: str = "small"
    steps: int = 20000
    batch: int = 256
    lr: float = 3e-4
    warmup: int = 500
    ema: float = 0.999
    cond_drop: float = 0.1
    seed: int = 0
    data: int = 300_000
    eval_every: int = 8000  # after the early checkpoints below
    eval_early: tuple[int, ...] = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000)
    eval_seeds: int = 2
    guidance: float = 3.0
    sample_steps: int = 20
    workers: int = 8
    max_minutes: float | None = None


def train_generator(run: GeneratorRun, out: Path, progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train one lab generator; writes `lab-<size>-step<N>.safetensors` and `train-<size>.jsonl` to `out`."""
    device = default_device()
    torch.manual_seed(run.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"train-{run.size}.jsonl"
    log.unlink(missing_ok=True)
    t0 = time.time()
    images, metas = render_dataset(run.data, run.seed, "train", workers=run.workers)
    data = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous()
    ids = tokenize([m["prompt"] for m in metas]).to(device)
    progress(f"rendered {len(metas)} scenes in {time.time() - t0:.0f}s")
    net = FlowUNet(SIZES[run.size]).to(device)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=run.lr, weight_decay=0.01, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / run.warmup))
    gen = torch.Generator(device=device).manual_seed(run.seed)
    info = {"parameters": count_parameters(net), "config": SIZES[run.size].to_dict(), "run": run.__dict__}
    _log(log, info)
    rows = []
    start = time.time()
    for step in track(range(1, run.steps + 1), f"training lab-{run.size}", Console(stderr=True)):
        idx = torch.randint(0, len(metas), (run.batch,), device=device, generator=gen)
        x0 = data[idx].float() / 127.5 - 1
        t = torch.rand(run.batch, device=device, generator=gen)
        eps = torch.randn(x0.shape, device=device, generator=gen)
        xt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * eps
        drop = torch.rand(run.batch, device=device, generator=gen) < run.cond_drop
        loss = F.mse_loss(net(xt, t, net.encode(ids[idx], drop)), eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                pe.lerp_(p, 1 - run.ema)
        over_time = run.max_minutes is not None and time.time() - start > run.max_minutes * 60
        if step % run.eval_every == 0 or step in run.eval_early or step == run.steps or over_time:
            sampler = LabGenerator(
                copy.deepcopy(ema).cpu(), guidance=run.guidance, steps=run.sample_steps, device=device
            )
            summary = evaluate_generator(sampler, "test", run.eval_seeds, run_seed=1234, workers=run.workers)
            row = {"step": step, "loss": loss.item(), "minutes": (time.time() - start) / 60, "test": summary}
            _log(log, row)
            rows.append(row)
            name = f"lab-{run.size}-step{step}"
            save(
                ema,
                out / f"{name}.safetensors",
                "lab-generator",
                SIZES[run.size].to_dict(),
                info | {"step": step, "test": summary},
            )
        if over_time:
            progress(f"stopping at step {step}: --max-minutes reached")
            break
    return rows


# ---------------------------------------------------------------- verifiers


_RELATION_WORDS = frozenset(w for r in RELATIONS for w in r.split() if w != "of")


def _word_kind(word: str) -> str:
    if word in COLORS:
        return "colour"
    if word in SHAPES or word in PLURALS.values():
        return "shape"
    if word in NUMBER_WORDS.values():
        return "count"
    return "relation" if word in _RELATION_WORDS else "other"


def near_misses(prompts: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """For each prompt, the same-task prompts one or two words away, grouped by what the change is.

    The kinds are "swap" (the same words reordered: objects or colours trade places) or the kinds of the
    changed words ("relation", "shape", "colour+shape", ...). Grouping lets a near-miss be drawn kind by
    kind: drawn uniformly over prompts, the few relation flips of a position prompt drown among its many
    shape changes, and a judge never learns left from right.
    """
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in prompts:
        words = p["prompt"].split()
        kinds: dict[str, list[dict[str, Any]]] = {}
        for q in prompts:
            other = q["prompt"].split()
            if q["tag"] != p["tag"] or q is p or len(other) != len(words):
                continue
            changed = [(a, b) for a, b in zip(words, other, strict=True) if a != b]
            if 1 <= len(changed) <= 2:
                kind = (
                    "swap" if sorted(words) == sorted(other) else "+".join(sorted({_word_kind(a) for a, _ in changed}))
                )
                kinds.setdefault(kind, []).append(q)
        out[p["prompt"]] = kinds
    return out


def draw_near_miss(kinds: dict[str, list[dict[str, Any]]], rng: np.random.Generator) -> dict[str, Any] | None:
    """A near-miss prompt: a kind of change uniformly, then a prompt of that kind; None when there is none."""
    if not kinds:
        return None
    group = kinds[sorted(kinds)[int(rng.integers(len(kinds)))]]
    return group[int(rng.integers(len(group)))]


def relation_probe(net: YesNoJudge | DualEncoder, scenes: int = 300, seed: int = 0) -> float:
    """How often a judge prefers the true relation to the flipped one on rendered test-split position scenes.

    0.5 is blind to relations; a judge that reads them is near 1.0. Rendered scenes are clean, so this
    isolates relations from the generators' blur.
    """
    from ttscale.lab.verifiers import LabVerifier

    flip = {"left": "right", "right": "left", "above": "below", "below": "above"}
    rng = np.random.default_rng(seed)
    suite = [p for p in prompt_suite("test") if p["tag"] == "position"]
    picks = [suite[i % len(suite)] for i in range(scenes)]
    images = np.stack([render(sample_scene(p, rng)) for p in picks])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    true = [p["prompt"] for p in picks]
    flipped = [" ".join(flip.get(w, w) for w in t.split()) for t in true]
    verifier = LabVerifier(copy.deepcopy(net).cpu(), name="probe")
    metric = verifier.metrics[0]
    return float((verifier.score(x, true)[metric] > verifier.score(x, flipped)[metric]).float().mean())


# The judges' shapes. lab-visa sees an 8x8 token grid with positions, relates regions jointly as a VLM does,
# learns where each named object is from the rendered scenes (locate) and compares the subject's and the
# object's places (relate): without the last two it stayed blind to left/right (relation probe 0.55).
# lab-clip stays a plain dual encoder (its image head already sees positions through its flattening).
JUDGES: dict[str, JudgeConfig] = {
    "lab-visa": JudgeConfig(grid=8, positions=True, fusion_layers=2, locate=True, relate=True),
    "lab-clip": JudgeConfig(),
}


def grounding_classes() -> torch.Tensor:
    """For each vocabulary id, the grounding class its word names (shape, plural or colour), else -1."""
    table = torch.full((len(VOCAB),), -1, dtype=torch.long)
    for word, i in VOCAB.items():
        singular = next((s for s, p in PLURALS.items() if p == word), word)
        if singular in GROUNDING_CLASSES:
            table[i] = GROUNDING_CLASSES.index(singular)
    return table


def grounding_loss(where: torch.Tensor, ids: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between where each shape or colour word looks and where that shape or colour is.

    `where` (B, T, G) are attention weights, `maps` (B, classes, G) coverage; words whose class is not in
    the image (or samples without maps, all zeros) take no part.
    """
    cls = classes[ids]  # (B, T)
    target = maps.float().gather(1, cls.clamp(min=0)[..., None].expand(-1, -1, maps.shape[-1]))
    total = target.sum(-1)
    valid = (cls >= 0) & (total > 0)
    if not bool(valid.any()):
        return where.sum() * 0
    target = target / total.clamp(min=1e-6)[..., None]
    return -(target * torch.log(where + 1e-8)).sum(-1)[valid].mean()


@dataclass
class VerifierRun:
    kinds: tuple[str, ...] = ("lab-visa", "lab-clip")
    generators: tuple[str, ...] = ("lab-small", "lab-large")
    rendered: int = 120_000
    generated: int = 60_000  # per generator
    steps: int = 8000
    batch: int = 1024
    lr: float = 3e-4
    seed: int = 0
    eval_seeds: int = 4
    guidance: float = 3.0
    sample_steps: int = 20
    workers: int = 8
    max_minutes: float | None = None  # per verifier; stops early (and says so) on a slow machine
    # Generated samples that happen to show a held-out pair (a red cube drawn for "a red sphere") are always
    # failures; kept, they teach a verifier that such pairs mean "no", and it ranks them last on the heldout split.
    drop_heldout_pairs: bool = True
    grounding: float = 1.0  # weight of `grounding_loss` for judges that locate (JudgeConfig.locate)


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    from scipy.stats import rankdata

    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def verifier_data(run: VerifierRun, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Rendered pairs with hard-negative prompts, and the generators' own samples, all labelled by the evaluator."""
    device = default_device()
    rng = np.random.default_rng(run.seed)
    train = prompt_suite("train")
    misses = near_misses(train)
    t0 = time.time()
    grid = JUDGES["lab-visa"].grid
    images, metas, maps = render_grounded(run.rendered, run.seed + 1, "train", workers=run.workers, grid=grid)
    progress(f"rendered {run.rendered} scenes in {time.time() - t0:.0f}s")
    # Half the rendered pairs keep their prompt; the other half get a near-miss prompt, kind by kind.
    swap = rng.random(len(metas)) < 0.5
    paired = [(draw_near_miss(misses[m["prompt"]], rng) or m) if s else m for m, s in zip(metas, swap, strict=True)]
    all_images, all_metas, all_maps = [images], list(paired), [maps]
    for name in run.generators:
        gen = LabGenerator.from_pretrained(name, guidance=run.guidance, steps=run.sample_steps, device=device)
        picks = [train[int(j)] for j in rng.integers(len(train), size=run.generated)]
        seeds = [candidate_seed(run.seed + 7, j, 0, stream=name) for j in range(run.generated)]
        t0 = time.time()
        drawn = sample_pairs(gen, [m["prompt"] for m in picks], seeds)
        progress(f"sampled {run.generated} images from {name} in {time.time() - t0:.0f}s")
        if run.drop_heldout_pairs:
            keep = ~_parallel(shows_heldout_pair, list(drawn), run.workers)
            drawn, picks = drawn[keep], [m for m, k in zip(picks, keep, strict=True) if k]
            progress(f"dropped {int((~keep).sum())} of them that show a held-out pair")
        all_images.append(drawn)
        all_metas.extend(picks)
        all_maps.append(np.zeros((len(drawn), *maps.shape[1:]), dtype=np.uint8))  # no ground truth for samples
    imgs = np.concatenate(all_images)
    t0 = time.time()
    labels = judge_all(imgs, all_metas, run.workers)
    progress(f"labelled {len(labels)} pairs in {time.time() - t0:.0f}s: {labels.mean():.2f} positive")
    return {"images": imgs, "metas": all_metas, "labels": labels, "maps": np.concatenate(all_maps)}


def verifier_eval_data(run: VerifierRun) -> dict[str, dict[str, Any]]:
    """Held-out generated images (new seeds; test and heldout prompts) for ROC-AUC."""
    device = default_device()
    out = {}
    for split in ("test", "heldout"):
        suite = prompt_suite(split)
        imgs, metas = [], []
        for name in run.generators:
            gen = LabGenerator.from_pretrained(name, guidance=run.guidance, steps=run.sample_steps, device=device)
            m = [p for _ in range(run.eval_seeds) for p in suite]
            seeds = [
                candidate_seed(99_999, i, r, stream=name) for r in range(run.eval_seeds) for i in range(len(suite))
            ]
            imgs.append(sample_pairs(gen, [p["prompt"] for p in m], seeds))
            metas.extend(m)
        images = np.concatenate(imgs)
        out[split] = {"images": images, "metas": metas, "labels": judge_all(images, metas, run.workers)}
    return out


def train_verifier(kind: str, data: dict[str, Any], run: VerifierRun) -> tuple[YesNoJudge | DualEncoder, int]:
    """lab-visa: BCE on the yes-logit. lab-clip: InfoNCE on matching pairs plus a sigmoid loss on all pairs.

    Returns the net and the number of steps it took (fewer than `run.steps` only under `run.max_minutes`).
    The judge's shape comes from JUDGES.
    """
    device = default_device()
    torch.manual_seed(run.seed)
    net: YesNoJudge | DualEncoder = (YesNoJudge if kind == "lab-visa" else DualEncoder)(JUDGES[kind]).to(device)
    bias = torch.zeros((), device=device, requires_grad=True)
    images = torch.from_numpy(data["images"]).to(device).permute(0, 3, 1, 2).contiguous()
    ids = tokenize([m["prompt"] for m in data["metas"]]).to(device)
    labels = torch.from_numpy(data["labels"]).to(device).float()
    maps, classes = torch.from_numpy(data["maps"]).to(device), grounding_classes().to(device)
    opt = torch.optim.AdamW([*net.parameters(), bias], lr=run.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 300))
    gen = torch.Generator(device=device).manual_seed(run.seed)
    start, step = time.time(), 0
    for step in track(range(1, run.steps + 1), f"training {kind}", Console(stderr=True)):
        idx = torch.randint(0, len(labels), (run.batch,), device=device, generator=gen)
        x, y = images[idx].float() / 255, labels[idx]
        if isinstance(net, YesNoJudge):
            logit, where = net.judge(x, ids[idx])
            loss = F.binary_cross_entropy_with_logits(logit, y)
            if where is not None:
                loss = loss + run.grounding * grounding_loss(where, ids[idx], maps[idx], classes)
        else:
            ei, et = net.embed_images(x), net.embed_texts(ids[idx])
            scale = net.logit_scale.exp()
            pair = F.binary_cross_entropy_with_logits(scale * (ei * et).sum(-1) + bias, y)
            pos = y > 0.5
            logits = scale * ei[pos] @ et[pos].T
            target = torch.arange(int(pos.sum()), device=device)
            loss = pair + 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 1000 == 0:
            print(json.dumps({"verifier": kind, "step": step, "loss": float(loss.detach())}), flush=True)
        if run.max_minutes is not None and time.time() - start > 60 * run.max_minutes:
            print(json.dumps({"verifier": kind, "stopped_at": step, "reason": "max_minutes"}), flush=True)
            break
    return net.eval().requires_grad_(False), step


@torch.no_grad()
def verifier_auc(net: YesNoJudge | DualEncoder, data: dict[str, Any]) -> float:
    from ttscale.lab.verifiers import LabVerifier

    device = default_device()
    verifier = LabVerifier(copy.deepcopy(net).cpu(), name="eval", device=device)
    images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 255
    scores = verifier.score(images, [m["prompt"] for m in data["metas"]])[verifier.metrics[0]].numpy()
    return _auc(scores, data["labels"])


def train_verifiers(run: VerifierRun, out: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the verifiers in `run.kinds`; save them to `out` with their held-out ROC-AUC in the header.

    `out/verifiers.json` keeps one entry per verifier, so retraining one leaves the other's record in place.
    """
    data = verifier_data(run, progress)
    held = verifier_eval_data(run)
    record = out / "verifiers.json"
    report: dict[str, Any] = json.loads(record.read_text()) if record.is_file() else {}
    for kind in run.kinds:
        t0 = time.time()
        net, steps = train_verifier(kind, data, run)
        aucs = {split: verifier_auc(net, d) for split, d in held.items()}
        report[kind] = {
            "auc": aucs,
            "relation_probe": relation_probe(net),
            "parameters": count_parameters(net),
            "config": JUDGES[kind].to_dict(),
            "steps": steps,
            "batch": run.batch,
            "minutes": (time.time() - t0) / 60,
            "train_pairs": len(data["labels"]),
            "train_positive": float(data["labels"].mean()),
            "eval_images": {k: len(v["labels"]) for k, v in held.items()},
            "eval_positive": {k: float(v["labels"].mean()) for k, v in held.items()},
        }
        info = {"run": {**run.__dict__, "steps": steps}, "auc": aucs}
        save(net, out / f"{kind}.safetensors", kind, JUDGES[kind].to_dict(), info)
        progress(json.dumps({kind: report[kind]}))
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(report, indent=2))
    return report
