"""`ttscale summary`: a run's per-task scores, compute spent and time, as terminal tables."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ttscale.errors import TTScaleError
from ttscale.report.html import compute_rows, score_rows
from ttscale.report.runs import is_sweep, load_run


def run_summary(out: Path) -> Group:
    """Tables for one run folder; the candidates are not judged again, so this stays instant."""
    if is_sweep(out):
        raise TTScaleError(
            f"{out} is a sweep: `ttscale report {out}` or `ttscale plot {out}` show it; "
            "`summary` takes one of its runs, e.g. <sweep>/best-of-n/nfe640/seed0"
        )
    view = load_run(out)
    cfg = view.config
    if cfg:
        head = Text.assemble(
            (f"{out}", "bold"),
            f"  {view.strategy} {json.dumps(cfg.get('params', {}))} · generator {cfg.get('generator', '?')} · ",
            f"verifier {cfg.get('verifier', '?')} · k={cfg.get('k', '?')}",
        )
    else:
        head = Text.assemble((f"{out}", "bold"), "  a GenEval-format folder without run.json: no config or compute")
    parts: list[Table | Text] = [head]
    scores = score_rows(view)
    if scores is None:
        parts.append(Text(f"not evaluated: run `ttscale evaluate {out}` for per-task scores", style="yellow"))
    else:
        table = Table(title=f"scores of the kept images ({(view.summary or {}).get('evaluator', '?')})")
        for col in ("task", "accuracy", "images"):
            table.add_column(col, justify="left" if col == "task" else "right")
        for row in scores["rows"]:
            style = "bold" if row["total"] else None
            table.add_row(row["task"], row["kept"], str(row["images"]), style=style)
        parts.append(table)
    if not view.prompts_with_spend:
        return Group(*parts)
    compute = Table(title="compute spent")
    for col in ("", "total", "per prompt"):
        compute.add_column(col, justify="left" if not col else "right")
    for row in compute_rows(view):
        compute.add_row(row["name"], row["total"], row["per_prompt"])
    parts.append(compute)
    return Group(*parts)
