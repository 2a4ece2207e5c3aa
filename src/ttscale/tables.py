"""Rich tables shared by the CLI commands."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ttscale.prompts import TASKS


def summary_table(summary: dict[str, Any], title: str = "") -> Table:
    table = Table(title=title)
    table.add_column("task")
    table.add_column("accuracy", justify="right")
    table.add_column("images", justify="right")
    for task in TASKS:
        if task in summary["tasks"]:
            table.add_row(task, f"{summary['tasks'][task]:.3f}", str(summary["images"][task]))
    table.add_row("[bold]overall[/bold]", f"[bold]{summary['overall']:.3f}[/bold]", str(summary["n_images"]))
    return table
