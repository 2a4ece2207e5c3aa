"""Evaluators: judge one kept image against its GenEval metadata, independently of any verifier.

A verifier ranks candidates during a search; an evaluator scores what a run kept, afterwards, the way
GenEval does (`evaluation.evaluate_folder` walks a folder with one). Keeping the two apart is the point:
a search must never be judged by the model that chose its images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Verdict:
    """One image's judgement: right or wrong, why, and what the evaluator saw (GenEval's `details`)."""

    correct: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Judges one image (HxWx3 uint8) against its GenEval metadata."""

    name: str

    def evaluate(self, image: np.ndarray, metadata: Mapping[str, Any]) -> Verdict: ...
