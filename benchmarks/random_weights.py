"""Shared by the real-shape benchmarks: models built at their released shapes with random weights."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PROMPT = "a red fox sitting in tall grass at sunrise, soft light"  # ten words, as in ANCHORS.md


@contextlib.contextmanager
def built_on(device: str, dtype: torch.dtype) -> Iterator[None]:
    """Initialise modules directly on the device in their dtype: a 12B model never exists in fp32 or on the CPU."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)
