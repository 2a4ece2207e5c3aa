"""What a run reports as it goes: one `PromptOutcome` per prompt searched (or resumed), and the run's totals.

These are plain values, apart from the runner that makes them, so that whatever watches a run (the progress
line, the Ray driver, a sweep, lab training's progress bars) depends on them and not on the search stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ttscale.budget import Spend


@dataclass
class PromptOutcome:
    """One prompt done: what it spent, how many candidates it drew, its best score; `skipped` if resumed."""

    index: int
    spend: Spend
    candidates: int
    best: float
    skipped: bool = False


@dataclass
class RunTotals:
    """A run's (or a shard's) prompts, of which resumed, candidates and spend, summed over its prompts."""

    prompts: int = 0
    resumed: int = 0
    candidates: int = 0
    spend: Spend = field(default_factory=Spend)

    def add(self, other: RunTotals) -> None:
        self.prompts += other.prompts
        self.resumed += other.resumed
        self.candidates += other.candidates
        self.spend.add(other.spend)

    def record(self) -> dict[str, Any]:
        """run.json's totals: the counts, then the spend (its seconds also as `search_seconds`, the older name)."""
        counts = {"prompts": self.prompts, "resumed": self.resumed, "candidates": self.candidates}
        return counts | self.spend.record() | {"search_seconds": self.spend.seconds}
