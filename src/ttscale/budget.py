"""Compute budgets and the meter every strategy spends through.

NFE = one denoiser evaluation of one sample, each CFG branch counted. Verifier calls = images
scored. Judge requests = questions put to a judge model (see `Spend`). A strategy asks `affords`
before it launches work; the metered generator and verifier raise `BudgetExceeded` if it did not,
so a run can never go over its budget silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ttscale.errors import TTScaleError


class BudgetExceeded(TTScaleError):
    """A strategy tried to spend more than its budget allows."""


class Budget(BaseModel):
    """Per-prompt limits; None means unlimited. At least one limit is needed for open-ended strategies.

    NFEs and verifier calls are known before the work is done, so they are never passed. Judge requests are
    known only once the judge has answered (an API's retries, a tournament's matches) and seconds once they
    have passed, so those two stop the search when reached: each image still to be scored counts as at least
    one request beforehand, and the call that reaches the limit may make more (a knock-out ~2 per image).
    """

    model_config = ConfigDict(frozen=True)

    nfe: int | None = Field(default=None, ge=0)
    verifier_calls: int | None = Field(default=None, ge=0)
    judge_requests: int | None = Field(default=None, ge=0)
    seconds: float | None = Field(default=None, gt=0)

    @property
    def bounded(self) -> bool:
        """True when some limit is set, so an open-ended strategy knows when to stop."""
        limits = (self.nfe, self.verifier_calls, self.judge_requests, self.seconds)
        return any(limit is not None for limit in limits)


def cost(per_unit: float, units: int) -> float:
    """`per_unit` x `units`: what nothing costs is 0 even at an unknown (NaN) rate, so it cannot blur a sum."""
    return per_unit * units if units else 0.0


def json_float(value: float) -> float | None:
    """NaN (unknown) as JSON's null, which every reader parses; `json.dumps` would write a bare NaN."""
    return None if math.isnan(value) else value


@dataclass
class Spend:
    """What a prompt's search (or a whole run) spent: the one record behind spend.json, run.json's totals,
    sweep rows and the progress line.

    A judge request is one question put to a judge model, counted each time it is asked: an image to rate
    (a local model answers a batch in one forward pass, but each image in it is its own question, so the count
    does not depend on the batch size), one HTTP request of an API judge (retries included), one ordered pair
    of a pairwise judge (a knock-out over n images asks 2 (n - 1), a round robin n (n - 1)). So it equals
    verifier calls for a plain local verifier and counts what API and pairwise judges really cost.
    FLOPs are NaN where unknown (a black-box or API model), and a sum with an unknown part stays unknown.
    `estimated` names the amounts that are estimates, not counts: "nfe" where a black-box generator was
    charged its stated NFEs per image, "judge_requests" read back from a record written before they were
    counted. Amounts are whole numbers for a prompt and a run; sweep rows hold means per prompt.
    """

    nfe: float = 0
    verifier_calls: float = 0
    judge_requests: float = 0
    generator_flops: float = 0.0
    verifier_flops: float = 0.0
    seconds: float = 0.0
    estimated: frozenset[str] = frozenset()

    def add(self, other: Spend) -> None:
        self.nfe += other.nfe
        self.verifier_calls += other.verifier_calls
        self.judge_requests += other.judge_requests
        self.generator_flops += other.generator_flops
        self.verifier_flops += other.verifier_flops
        self.seconds += other.seconds
        self.estimated |= other.estimated

    @classmethod
    def total(cls, spends: Iterable[Spend]) -> Spend:
        out = cls()
        for spend in spends:
            out.add(spend)
        return out

    @property
    def flops(self) -> float:
        return self.generator_flops + self.verifier_flops

    def record(self, per: float = 1) -> dict[str, Any]:
        """The JSON form, every amount divided by `per` (the prompts, for a mean per prompt); unknown FLOPs are null."""

        def scaled(value: float) -> float:
            return value if per == 1 else value / per

        return {
            "nfe": scaled(self.nfe),
            "verifier_calls": scaled(self.verifier_calls),
            "judge_requests": scaled(self.judge_requests),
            "generator_flops": json_float(scaled(self.generator_flops)),
            "verifier_flops": json_float(scaled(self.verifier_flops)),
            "seconds": scaled(self.seconds),
            "estimated": sorted(self.estimated),
        }

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Spend:
        """A record read back, also one written before judge requests were counted (an old folder resumed):
        its verifier calls then stand in for them, marked as an estimate (each image asked its judge at least once).
        """
        estimated = set(row.get("estimated", ()))
        if "judge_requests" not in row:
            estimated.add("judge_requests")

        def flops(key: str) -> float:
            value = row[key]
            return math.nan if value is None else float(value)

        return cls(
            nfe=row["nfe"],
            verifier_calls=row["verifier_calls"],
            judge_requests=row.get("judge_requests", row["verifier_calls"]),
            generator_flops=flops("generator_flops"),
            verifier_flops=flops("verifier_flops"),
            seconds=row["seconds"],
            estimated=frozenset(estimated),
        )

    def shown(self, amount: str, per: float = 1, digits: int = 0) -> str:
        """An amount for people (a field, or "tflops"; divided by `per`, e.g. per prompt): "unknown" where it is,
        "~" before an estimate."""
        value = self.flops / 1e12 if amount == "tflops" else float(getattr(self, amount))
        if math.isnan(value):
            return "unknown"
        text = f"{value / per:,.{digits}f}"
        return f"~{text}" if amount in self.estimated else text


@dataclass
class Meter:
    """Counts what one prompt's search spends against its budget; `clock` only for a test's fake time."""

    budget: Budget = field(default_factory=Budget)
    spent: Spend = field(default_factory=Spend)
    clock: Callable[[], float] = time.perf_counter
    _start: float = field(init=False)

    def __post_init__(self) -> None:
        self._start = self.clock()

    def affords(self, nfe: int = 0, verifier_calls: int = 0) -> bool:
        """Whether this much more work fits the limits, and time is left."""
        b = self.budget
        if self._excess(nfe, verifier_calls) is not None:
            return False
        return not (b.seconds is not None and self.elapsed() >= b.seconds)

    def _excess(self, nfe: int, verifier_calls: int) -> str | None:
        """Which limit spending this much more would pass, in words; None when it fits.

        Each image scored asks its judge at least once, so verifier calls count against a request limit too.
        """
        b, s = self.budget, self.spent
        if b.nfe is not None and s.nfe + nfe > b.nfe:
            return f"{s.nfe} + {nfe} NFEs would exceed the budget of {b.nfe}"
        if b.verifier_calls is not None and s.verifier_calls + verifier_calls > b.verifier_calls:
            return f"{s.verifier_calls} + {verifier_calls} verifier calls would exceed the budget of {b.verifier_calls}"
        if b.judge_requests is not None and s.judge_requests + verifier_calls > b.judge_requests:
            return (
                f"{s.judge_requests} judge requests + at least {verifier_calls} more would exceed the budget of "
                f"{b.judge_requests}"
            )
        return None

    def elapsed(self) -> float:
        return self.clock() - self._start

    def charge(
        self,
        nfe: int = 0,
        verifier_calls: int = 0,
        generator_flops: float = 0,
        verifier_flops: float = 0,
        *,
        nfe_estimated: bool = False,
    ) -> None:
        """Charge work about to be done; `nfe_estimated` when the NFEs are a model's stated cost, not counted."""
        excess = self._excess(nfe, verifier_calls)
        if excess is not None:
            raise BudgetExceeded(excess)
        self.spent.add(
            Spend(
                nfe=nfe,
                verifier_calls=verifier_calls,
                generator_flops=generator_flops,
                verifier_flops=verifier_flops,
                estimated=frozenset({"nfe"} if nfe_estimated else ()),
            )
        )

    def count_requests(self, requests: int) -> None:
        """Record the requests a judge made in a call that `charge` let through.

        Never refused: they are spent once the judge has answered, and `charge` held the call to at least one
        request per image beforehand.
        """
        self.spent.judge_requests += requests

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
