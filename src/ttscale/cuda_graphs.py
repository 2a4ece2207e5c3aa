"""Replay small networks as CUDA graphs: search calls a small denoiser hundreds of times per prompt at small
batches, where launching its kernels one by one costs more than running them.

`GraphedCall(fn)` captures one graph per input signature (shapes and dtypes) the first time it sees it and
replays it afterwards. Before trusting a capture it replays it once on the inputs of the eager warm-up and
compares the results; a capture that fails or disagrees turns graphs off for good (with a warning) and the
call runs eagerly, so a graph can make a search faster but never different. On the CPU it is a plain call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

Signature = tuple[tuple[tuple[int, ...], torch.dtype], ...]


class GraphedCall:
    def __init__(self, fn: Callable[..., torch.Tensor], *, enabled: bool = True, warmup: int = 2):
        self.fn, self.enabled, self.warmup = fn, enabled, warmup
        self.graphs: dict[Signature, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]] = {}
        self._pool: Any = None  # one memory pool for all of this call's graphs, which never run at once

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        if not (self.enabled and args and all(a.is_cuda for a in args)):
            return self.fn(*args)
        key: Signature = tuple((tuple(a.shape), a.dtype) for a in args)
        entry = self.graphs.get(key)
        if entry is None:
            try:
                entry = self._capture(args)
            except (RuntimeError, AssertionError) as err:  # an op that cannot be captured, or a mismatch
                self.enabled = False
                warnings.warn(f"CUDA graphs off, running eagerly: {err}", RuntimeWarning, stacklevel=2)
                return self.fn(*args)
            self.graphs[key] = entry
        graph, inputs, output = entry
        for static, new in zip(inputs, args, strict=True):
            static.copy_(new)
        graph.replay()
        return output.clone()

    def _capture(self, args: tuple[torch.Tensor, ...]) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]:
        inputs = [a.clone() for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(self.warmup):
                expected = self.fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            output = self.fn(*inputs)
        graph.replay()
        scale = float(expected.abs().max()) + 1e-6
        error = float((output - expected).abs().max())
        if error > 1e-4 * scale:
            raise AssertionError(f"a replayed graph differs from the eager call by {error:.3g} (scale {scale:.3g})")
        return graph, inputs, output
