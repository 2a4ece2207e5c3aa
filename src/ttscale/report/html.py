"""Render report pages from Jinja2 templates with autoescaping, so every prompt and metadata value shows as text.

Pages are self-contained: CSS and JS are inlined, images are relative links (or data URIs), and a
Content-Security-Policy forbids any network request and any script but the page's own (by hash),
so even a value that slipped past escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ttscale import __version__
from ttscale.prompts import TASKS
from ttscale.report.runs import Card, PromptView, RunView, SweepView

_ENV = Environment(
    loader=PackageLoader("ttscale.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=False,
    lstrip_blocks=False,
)


@dataclass
class Page:
    name: str
    href: str
    current: bool = False


@dataclass
class Figure:
    png: str
    svg: str
    caption: str


def _asset(name: str) -> str:
    return files("ttscale.report").joinpath("assets", name).read_text(encoding="utf-8")


def _csp(css: str, js: str) -> str:
    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    return (
        f"default-src 'none'; img-src 'self' file: data:; style-src {digest(css)}; script-src {digest(js)}; "
        "base-uri 'none'; form-action 'none'"
    )


def render(template: str, pages: list[Page], title: str, **context: Any) -> str:
    css, js = _asset("report.css"), _asset("report.js")
    return _ENV.get_template(template).render(
        pages=pages,
        title=title,
        css=Markup(css),  # our own files, inlined verbatim
        js=Markup(js),
        csp=_csp(css, js),
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        body_class=context.pop("body_class", ""),
        **context,
    )


def image_src(image: Path, page_dir: Path, embed: bool) -> str:
    """A link relative to the page (so the report opens from disk) or, with `embed`, a data URI."""
    if embed:
        return "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    rel = Path(os.path.relpath(image.resolve(), page_dir.resolve()))
    return "/".join(quote(part) for part in rel.parts)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _verdict(value: bool | None) -> str:
    return "none" if value is None else ("correct" if value else "wrong")


def _card(card: Card, page_dir: Path, embed: bool) -> dict[str, Any]:
    meta = [f"seed {card.seed}" if card.seed >= 0 else "", f"{card.nfe} NFE" if card.nfe else ""]
    if card.round:
        meta.append(f"round {card.round}")
    return {
        "index": card.index,
        "rank": card.rank,
        "score": "nan" if math.isnan(card.score) else repr(card.score),
        "kept": card.kept,
        "verdict": _verdict(card.verdict),
        "correct": card.verdict,
        "reason": card.reason,
        "src": image_src(card.image, page_dir, embed) if card.image is not None else "",
        "scores": [(name, f"{value:.4f}") for name, value in card.scores.items()],
        "meta": " · ".join(m for m in meta if m),
    }


def _prompt(p: PromptView, page_dir: Path, embed: bool) -> dict[str, Any]:
    spend = f"{len(p.cards)} candidates"
    if p.spend is not None:
        spent = p.spend
        spend += f" · {spent.shown('nfe')} NFEs · {spent.shown('verifier_calls')} verifier calls"
        spend += f" · {spent.shown('judge_requests')} judge requests · {spent.seconds:.2f} s"
    return {
        "id": f"{p.index:05d}",
        "index": p.index,
        "tag": p.tag,
        "prompt": p.prompt,
        "best": "nan" if math.isnan(p.best) else repr(p.best),
        "verdict": p.kept_verdict,
        "spend": spend,
        "cards": [_card(c, page_dir, embed) for c in sorted(p.cards, key=lambda c: c.rank)],
    }


def score_rows(view: RunView) -> dict[str, Any] | None:
    """Per-task accuracy of the kept images, and with every candidate judged, the oracle's and a random pick's."""
    if view.summary is None:
        return None
    summary, pool = view.summary, view.pool
    extra: dict[str, tuple[float, float]] = {}
    if pool is not None:
        for task in {*pool.tags}:
            picks = [c for tag, c in zip(pool.tags, pool.correct, strict=True) if tag == task and len(c)]
            extra[task] = (float(np.mean([c.any() for c in picks])), float(np.mean([c.mean() for c in picks])))
    rows = [
        {
            "task": task,
            "kept": _num(summary["tasks"][task]),
            "images": summary["images"][task],
            "oracle": _num(extra[task][0]) if task in extra else "–",
            "random": _num(extra[task][1]) if task in extra else "–",
            "total": False,
        }
        for task in TASKS
        if task in summary["tasks"]
    ]
    present = [t for t in TASKS if t in extra]
    rows.append(
        {
            "task": "overall",
            "kept": _num(summary["overall"]),
            "images": summary["n_images"],
            "oracle": _num(float(np.mean([extra[t][0] for t in present]))) if present else "–",
            "random": _num(float(np.mean([extra[t][1] for t in present]))) if present else "–",
            "total": True,
        }
    )
    return {"rows": rows, "pool": pool is not None}


def compute_rows(view: RunView) -> list[dict[str, str]]:
    """Totals and means per prompt; unknown FLOPs say "unknown", estimates start with "~"."""
    spend = view.spend_totals()
    n = max(len(view.prompts), 1)
    totals = view.record.get("totals", {})
    rows = [
        ("prompts", f"{len(view.prompts):,}", ""),
        ("candidates", f"{view.candidates:,}", _num(view.candidates / n, 1)),
        ("NFEs", spend.shown("nfe"), spend.shown("nfe", n, 1)),
        ("verifier calls", spend.shown("verifier_calls"), spend.shown("verifier_calls", n, 1)),
        ("judge requests", spend.shown("judge_requests"), spend.shown("judge_requests", n, 1)),
        ("TFLOP", spend.shown("tflops", digits=4), ""),
        ("search seconds", spend.shown("seconds", digits=1), spend.shown("seconds", n, 3)),
    ]
    if "wall_seconds" in view.record:
        rows.append(("wall seconds", _num(view.record["wall_seconds"], 1), ""))
    if totals.get("resumed"):
        rows.append(("prompts resumed", str(totals["resumed"]), ""))
    return [{"name": a, "total": b, "per_prompt": c} for a, b, c in rows]


def run_row(view: RunView, name: str, href: str) -> dict[str, Any]:
    """One line of the index's comparison table."""
    spend, n = view.spend_totals(), max(len(view.prompts), 1)
    cfg = view.config
    summary = view.summary or {}
    return {
        "name": name,
        "href": href,
        "strategy": view.strategy,
        "generator": cfg.get("generator", "?"),
        "verifier": cfg.get("verifier", "?"),
        "prompts": len(view.prompts),
        "candidates": f"{view.candidates:,}",
        "nfe": spend.shown("nfe", n),
        "verifier_calls": spend.shown("verifier_calls", n, 1),
        "seconds": spend.shown("seconds", n, 2),
        "overall": _num(summary["overall"]) if summary else "–",
        "tasks": {t: _num(v) for t, v in summary.get("tasks", {}).items()},
    }


def run_page(
    view: RunView, name: str, pages: list[Page], page_dir: Path, figs: list[Figure], *, embed: bool = False
) -> str:
    cfg = view.config
    small = next((c.image for p in view.prompts for c in p.cards if c.image is not None), None)
    pixelated = small is not None and _width(small) < 118
    return render(
        "run.html.j2",
        pages,
        name,
        body_class="pixelated" if pixelated else "",
        run={
            "name": name,
            "strategy": view.strategy,
            "generator": cfg.get("generator", "?"),
            "verifier": cfg.get("verifier", "?"),
        },
        has_config=bool(cfg),
        params=json.dumps(cfg.get("params", {})),
        k=cfg.get("k", "?"),
        folder=str(view.path),
        scores=score_rows(view),
        evaluator=(view.summary or {}).get("evaluator", "evaluator"),
        compute=compute_rows(view),
        figs=figs,
        record_json=json.dumps(view.record, indent=2),
        gallery_tasks=[t for t in TASKS if any(p.tag == t for p in view.prompts)],
        prompts=[_prompt(p, page_dir, embed) for p in view.prompts],
    )


def _width(image: Path) -> int:
    from PIL import Image

    with Image.open(image) as im:
        return int(im.width)


def sweep_page(view: SweepView, name: str, pages: list[Page], figs: list[Figure]) -> str:
    cells = [
        {
            "strategy": c["strategy"],
            "budget": f"{c['budget']}{'*' if c.get('derived') else ''}",
            "nfe": ("~" if "nfe" in c.get("estimated", ()) else "") + _num(c["nfe"], 0),
            "verifier_calls": _num(c["verifier_calls"], 1),
            "judge_requests": _num(c.get("judge_requests"), 1),  # sweeps before it was counted: –
            "tflops": "unknown" if c["tflops"] is None else _num(c["tflops"], 4),
            "seconds": _num(c["seconds"], 2),
            "overall": _num(c["overall"]),
            "std": _num(c["std"]),
            "seeds": c["seeds"],
        }
        for c in sorted(view.cells, key=lambda c: (c["strategy"], c["budget"]))
    ]
    reach = None
    if view.reach:
        items = [
            (s, f"at {hit['nfe']:.0f} NFEs, {hit['ratio']:.0%} of the reference" if hit else "not within the budgets")
            for s, hit in view.reach["strategies"].items()
        ]
        reach = {"budget": view.reach["budget"], "score": _num(view.reach["score"]), "hits": items}
    return render(
        "sweep.html.j2",
        pages,
        name,
        name=name,
        folder=str(view.path),
        strategies=", ".join(sorted({r["strategy"] for r in view.rows})),
        seeds=len({r["seed"] for r in view.rows}),
        figs=figs,
        cells=cells,
        derived=any(c.get("derived") for c in view.cells),
        reach=reach,
    )


def index_page(pages: list[Page], runs: list[dict[str, Any]], sweeps: list[dict[str, Any]]) -> str:
    tasks = [t for t in TASKS if any(t in r["tasks"] for r in runs)]
    return render("index.html.j2", pages, "index", runs=runs, sweeps=sweeps, tasks=tasks)
