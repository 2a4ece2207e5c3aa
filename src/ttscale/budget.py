"""Compute budgets and the meter every strategy spends through.

NFE = one denoiser evaluation of one sample, each CFG branch counted. Verifier calls = images
scored. A strategy asks `affords` before it launches work; the metered generator and verifier
raise `BudgetExceeded` if it did not, so a run can never go over its budget silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ttscale.errors import TTScaleError


class BudgetExceeded(TTScaleError):
    """A strategy tried to spend more than its budget allows."""


class Budget(BaseModel):
    """Per-prompt limits; None means unlimited. At least one limit is needed for open-ended strategies."""

    model_config = ConfigDict(frozen=True)

    nfe: int | None = Field(default=None, ge=0)
    verifier_calls: int | None = Field(default=None, ge=0)
    seconds: float | None = Field(default=None, gt=0)

    @property
    def bounded(self) -> bool:
        """True when some limit is set, so an open-ended strategy knows when to stop."""
        return self.nfe is not None or self.verifier_calls is not None or self.seconds is not None


@dataclass
class Spend:
    nfe: int = 0
    verifier_calls: int = 0
    generator_flops: float = 0.0
    verifier_flops: float = 0.0
    seconds: float = 0.0

    def add(self, other: Spend) -> None:
        self.nfe += other.nfe
        self.verifier_calls += other.verifier_calls
        self.generator_flops += other.generator_flops
        self.verifier_flops += other.verifier_flops
        self.seconds += other.seconds

    @property
    def flops(self) -> float:
        return self.generator_flops + self.verifier_flops


@dataclass
class Meter:
    """Counts what one prompt's search spends against its budget."""

    budget: Budget = field(default_factory=Budget)
    spent: Spend = field(default_factory=Spend)
    _start: float = field(default_factory=time.perf_counter)

    def affords(self, nfe: int = 0, verifier_calls: int = 0) -> bool:
        b = self.budget
        if b.nfe is not None and self.spent.nfe + nfe > b.nfe:
            return False
        if b.verifier_calls is not None and self.spent.verifier_calls + verifier_calls > b.verifier_calls:
            return False
        return not (b.seconds is not None and self.elapsed() >= b.seconds)

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def charge(
        self, nfe: int = 0, verifier_calls: int = 0, generator_flops: float = 0, verifier_flops: float = 0
    ) -> None:
        b = self.budget
        if b.nfe is not None and self.spent.nfe + nfe > b.nfe:
            raise BudgetExceeded(f"{self.spent.nfe} + {nfe} NFEs would exceed the budget of {b.nfe}")
        if b.verifier_calls is not None and self.spent.verifier_calls + verifier_calls > b.verifier_calls:
            raise BudgetExceeded(
                f"{self.spent.verifier_calls} + {verifier_calls} verifier calls would exceed the budget of {b.verifier_calls}"
            )
        self.spent.nfe += nfe
        self.spent.verifier_calls += verifier_calls
        self.spent.generator_flops += generator_flops
        self.spent.verifier_flops += verifier_flops

    def close(self) -> Spend:
        self.spent.seconds = self.elapsed()
        return self.spent


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call (matrix products, convolutions and attention), counted by running it once.

    Attention runs as plain matrix products while counting, because torch's counter sees fused CPU kernels as
    0 FLOPs and fails on grouped-query ones; so a model counts the same on every device. NaN when the counter
    still cannot follow the call: unknown, not zero.
    """
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            fn()
    except AssertionError:
        return float("nan")
    return float(counter.get_total_flops())
