"""Live progress for long runs: prompts done, candidates, NFEs, images/s, best score, ETA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ttscale.runner import PromptOutcome


@contextmanager
def prompt_progress(total: int, description: str, console: Console) -> Iterator[Callable[[PromptOutcome], None]]:
    """Yields the `on_prompt` callback for `runner.run`, drawing a bar on `console` (stderr)."""
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    ]
    start = time.perf_counter()
    state = {"nfe": 0, "candidates": 0, "best": float("-inf")}
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(outcome: PromptOutcome) -> None:
            state["nfe"] += outcome.spend.nfe
            state["candidates"] += outcome.candidates
            if outcome.best == outcome.best:  # not NaN (resumed prompts carry no score)
                state["best"] = max(state["best"], outcome.best)
            rate = state["candidates"] / max(time.perf_counter() - start, 1e-9)
            info = f"{state['candidates']:,} cand · {state['nfe']:,} NFEs · {rate:.1f} img/s · best {state['best']:.3f}"
            bar.update(task, advance=1, info=info)

        yield update
