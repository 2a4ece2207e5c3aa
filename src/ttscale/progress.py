"""Live progress for long runs: prompts done, candidates, NFEs against the budget, images/s, best score, ETA.

The JSON events carry the run's `Spend` record so far (judge requests, FLOPs with null for unknown, what is
estimated); the bar writes "~" before estimated NFEs.

Three modes, chosen once per process by the CLI's global options: `rich` bars on stderr (default),
`quiet` (nothing), and `json` (one JSON object per line on stderr, for batch jobs and log collectors).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ttscale.budget import Spend
from ttscale.errors import TTScaleError
from ttscale.outcome import PromptOutcome

Mode = Literal["rich", "quiet", "json"]
MODES: tuple[str, ...] = get_args(Mode)
T = TypeVar("T")

_mode: Mode = "rich"  # set by the CLI's global options (--quiet, --log-format)


def set_mode(mode: str) -> None:
    global _mode
    if mode not in MODES:
        raise TTScaleError(f"unknown progress mode {mode!r}; choose one of {', '.join(MODES)}")
    _mode = mode  # type: ignore[assignment]


def get_mode() -> Mode:
    return _mode


def _emit(console: Console, event: dict[str, Any]) -> None:
    """One JSON line, written to the console's stream directly so rich never wraps or styles it."""
    console.file.write(json.dumps(event) + "\n")
    console.file.flush()


@dataclass
class _Tally:
    """Running totals; resumed prompts count as done but not toward speed, ETA or best score."""

    total: int
    nfe_budget: int | None
    start: float = field(default_factory=time.perf_counter)
    done: int = 0
    fresh: int = 0
    candidates: int = 0
    fresh_candidates: int = 0
    spend: Spend = field(default_factory=Spend)
    best: float = -math.inf

    def add(self, outcome: PromptOutcome) -> None:
        self.done += 1
        self.candidates += outcome.candidates
        self.spend.add(outcome.spend)
        if not outcome.skipped:
            self.fresh += 1
            self.fresh_candidates += outcome.candidates
            if not math.isnan(outcome.best):
                self.best = max(self.best, outcome.best)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def images_per_second(self) -> float:
        return self.fresh_candidates / max(self.elapsed(), 1e-9)

    def eta(self) -> float | None:
        """Seconds left at the pace of the prompts searched so far (None before the first one)."""
        return self.elapsed() / self.fresh * (self.total - self.done) if self.fresh else None

    def event(self, name: str) -> dict[str, Any]:
        eta = self.eta()
        return (
            {"event": name, "done": self.done, "total": self.total, "candidates": self.candidates}
            | self.spend.record()
            | {
                "nfe_budget": self.nfe_budget,
                "elapsed_s": round(self.elapsed(), 3),
                "images_per_s": round(self.images_per_second(), 3),
                "eta_s": None if eta is None else round(eta, 1),
                "best": None if self.best == -math.inf else self.best,
            }
        )

    def line(self) -> str:
        nfe = self.spend.shown("nfe") + (f"/{self.nfe_budget:,}" if self.nfe_budget is not None else "")
        best = "–" if self.best == -math.inf else f"{self.best:.3f}"
        eta = self.eta()
        left = "–" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        return (
            f"{self.candidates:,} cand · {nfe} NFEs · {self.images_per_second():.1f} img/s · best {best} · ETA {left}"
        )


@contextmanager
def prompt_progress(
    total: int, description: str, console: Console, *, nfe_budget: int | None = None
) -> Iterator[Callable[[PromptOutcome], None]]:
    """Yields the `on_prompt` callback for `runner.run`, reporting on `console` (stderr) in the current mode.

    `nfe_budget` is the whole run's NFE allowance (or plan), shown as "spent/budget" when known.
    """
    tally = _Tally(total, nfe_budget)
    mode = get_mode()
    if mode == "quiet":
        yield tally.add
        return
    if mode == "json":
        _emit(console, {"event": "start", "description": description.strip(), "total": total, "nfe_budget": nfe_budget})

        def report(outcome: PromptOutcome) -> None:
            tally.add(outcome)
            _emit(console, tally.event("prompt") | {"index": outcome.index, "skipped": outcome.skipped})

        yield report
        _emit(console, tally.event("end"))
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, info=tally.line())

        def update(outcome: PromptOutcome) -> None:
            tally.add(outcome)
            bar.update(task, advance=1, info=tally.line())

        yield update


def track(items: Sequence[T], description: str, console: Console) -> Iterable[T]:
    """Iterate over `items`, showing progress in the current mode (json: at most one line a second, plus the end)."""
    mode = get_mode()
    if mode == "quiet":
        yield from items
        return
    if mode == "json":
        last = time.perf_counter()
        for done, item in enumerate(items, start=1):
            yield item
            if time.perf_counter() - last >= 1.0 or done == len(items):
                last = time.perf_counter()
                _emit(console, {"event": "progress", "description": description, "done": done, "total": len(items)})
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        yield from bar.track(items, description=description)
