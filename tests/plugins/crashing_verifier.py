"""A verifier plug-in that kills its own process once, on one prompt: a worker lost mid-run (OOM killer, node loss)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ttscale.lab.verifiers import LabVerifier


class CrashOnce:
    """lab judge scores; the first time it sees $CRASH_PROMPT it writes $CRASH_MARKER and exits without cleanup."""

    def __init__(self, device: str = "cpu"):
        self.inner = LabVerifier.from_pretrained(os.environ["CRASH_JUDGE"], device=device)
        self.name, self.metrics, self.flops_per_image = "crash-once", self.inner.metrics, self.inner.flops_per_image

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        marker = Path(os.environ["CRASH_MARKER"])
        if os.environ["CRASH_PROMPT"] in prompts and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return self.inner.score(images, prompts)
