"""Per-candidate seeds: derived from (run seed, prompt index, candidate index) alone.

So a candidate's noise never depends on batch size, sharding, GPU count or which strategy ran
before it, and any candidate can be re-created from the number stored in candidates.jsonl.
"""

from __future__ import annotations

import hashlib

import torch


def candidate_seed(run_seed: int, prompt_index: int, candidate_index: int, stream: str = "noise") -> int:
    """A 63-bit seed, stable across platforms and Python versions (no built-in `hash`)."""
    key = f"{stream}:{run_seed}:{prompt_index}:{candidate_index}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def gaussian(seeds: list[int], shape: tuple[int, ...]) -> torch.Tensor:
    """One standard-normal tensor per seed, drawn on the CPU so every device sees the same numbers."""
    out = torch.empty((len(seeds), *shape))
    for row, seed in enumerate(seeds):
        out[row] = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return out
