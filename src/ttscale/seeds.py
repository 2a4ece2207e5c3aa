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


def gaussian(seeds: list[int], shape: tuple[int, ...], draw: int = 0) -> torch.Tensor:
    """One standard-normal tensor per seed, drawn on the CPU so every device sees the same numbers.

    `draw` picks the draw-th tensor of the seed's stream (0: the first, a candidate's initial noise): a
    sampler that re-noises at every step takes its step i noise as draw i + 1, in the order diffusers'
    pipelines draw from one `torch.Generator` per sample, so the stream re-creates every step's noise.
    """
    out = torch.empty((len(seeds), *shape))
    for row, seed in enumerate(seeds):
        rng = torch.Generator().manual_seed(seed)
        for _ in range(draw):
            torch.randn(shape, generator=rng)
        out[row] = torch.randn(shape, generator=rng)
    return out
