"""Per-candidate seeds: derived from (run seed, prompt index, candidate index) alone.

So a candidate's noise never depends on batch size, sharding, GPU count or which strategy ran
before it, and any candidate can be re-created from its seed and path in candidates.jsonl (`ttscale.recreate`).
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
    return SeedStreams(seeds, shape).draw(draw)


class SeedStreams:
    """The seeds' streams of `gaussian` draws, kept open: reading draws in increasing order costs one draw each
    (a consistency sampler's steps), where `gaussian(draw=k)` alone would re-draw k tensors at every step.
    Opened on the first read, so samplers that take no step noise pay nothing."""

    def __init__(self, seeds: list[int], shape: tuple[int, ...]):
        self.seeds, self.shape = list(seeds), shape
        self._rngs: list[torch.Generator] = []
        self._position = 0  # the draw each generator makes next

    def draw(self, k: int) -> torch.Tensor:
        """Draw k of every stream (as `gaussian(seeds, shape, draw=k)`); an earlier draw re-opens the streams."""
        if not self._rngs or k < self._position:
            self._rngs = [torch.Generator().manual_seed(seed) for seed in self.seeds]
            self._position = 0
        out = torch.empty((len(self.seeds), *self.shape))
        for row, rng in enumerate(self._rngs):
            for _ in range(k - self._position):
                torch.randn(self.shape, generator=rng)
            out[row] = torch.randn(self.shape, generator=rng)
        self._position = k + 1
        return out
