"""Trajectories: the state a step-level strategy acts on, as a k-diffusion sampler's loop holds it.

A value holds one prompt's rows at one grid point: x, per row the seed (its stream gives the initial noise
and a consistency sampler's step noise) and the path that re-creates the row from it, and, private, the
multistep solver's last x0 estimate. Every method returns a new value (the old one stays usable, so a
strategy may keep a copy), and re-indexing rows moves x, solver history, seeds and paths together, so no
strategy threads them by hand. Denoising runs in batches of `batch_size` rows with `samplers.advance`
underneath, exactly as a plain run of each seed does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ttscale.generator import Schedule, StepGenerator
from ttscale.samplers import advance, seed_noise, step, step_noise

TrajectoryPath = list[list[Any]]  # what a strategy did to a row after its initial noise, e.g. [["branch", 4, seed]]


@dataclass(frozen=True)
class Trajectories:
    gen: StepGenerator
    cond: Any  # the prompt's encoding (gen.encode)
    x: torch.Tensor
    seeds: tuple[int, ...]
    paths: tuple[TrajectoryPath, ...]
    at: int = 0  # the grid point x is at
    batch_size: int = 64
    _prev_x0: torch.Tensor | None = field(default=None, repr=False)  # x0 estimate at at - 1 (None: first order)

    @classmethod
    def start(
        cls,
        gen: StepGenerator,
        cond: Any,
        seeds: Sequence[int],
        batch_size: int,
        noise: torch.Tensor | None = None,
        paths: Sequence[TrajectoryPath] | None = None,
    ) -> Trajectories:
        """Rows at grid point 0: each seed's own initial noise, or the given one (zero-order's perturbed noises)."""
        x = gen.noise(list(seeds)) if noise is None else noise
        paths = [[] for _ in seeds] if paths is None else paths
        return cls(gen, cond, x, tuple(seeds), tuple(paths), 0, batch_size)

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def schedule(self) -> Schedule:
        return self.gen.schedule()

    @property
    def steps(self) -> int:
        return self.schedule.steps

    @property
    def nfe_per_sample(self) -> int:
        """NFEs of one row's whole trajectory, whatever a strategy did to it."""
        return self.steps * self.gen.nfe_per_call

    def advance(self, stop: int) -> Trajectories:
        """The schedule's own solver steps to grid point `stop`, continuing each row's solver history."""
        parts = [
            advance(
                lambda y, i: self.gen.denoise(y, i, self.cond),
                self.x[s : s + self.batch_size],
                self.schedule,
                self.at,
                stop,
                None if self._prev_x0 is None else self._prev_x0[s : s + self.batch_size],
                noise=seed_noise(self.seeds[s : s + self.batch_size], self.x),
            )
            for s in range(0, len(self), self.batch_size)
        ]
        last = [p for _, p in parts if p is not None]  # all chunks have one, or none has (no step, no history)
        x = torch.cat([y for y, _ in parts])
        return replace(self, x=x, at=stop, _prev_x0=torch.cat(last) if last else None)

    def lookahead(self) -> torch.Tensor:
        """The model's x0 estimate at the current grid point: what a look-ahead judges, and what `step` moves by."""
        return torch.cat(
            [
                self.gen.denoise(self.x[s : s + self.batch_size], self.at, self.cond)
                for s in range(0, len(self), self.batch_size)
            ]
        )

    def decode(self, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Images of x (finished rows) or of a look-ahead."""
        return self.gen.decode(self.x if x0 is None else x0)

    def take(self, rows: Sequence[int], ops: Sequence[list[Any]] | None = None) -> Trajectories:
        """These rows, in this order (repeats copy a row: a branch, a resampled particle), with ops[j] added to
        row j's path; x, solver history, seeds and paths move together."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.x.device)
        paths = [[*self.paths[j]] for j in rows]
        if ops is not None:
            paths = [[*p, op] for p, op in zip(paths, ops, strict=True)]
        prev = None if self._prev_x0 is None else self._prev_x0[index]
        return replace(
            self, x=self.x[index], seeds=tuple(self.seeds[j] for j in rows), paths=tuple(paths), _prev_x0=prev
        )

    def step(self, x0: torch.Tensor, eta: float = 0.0, noise: torch.Tensor | None = None) -> Trajectories:
        """One step from the current grid point by the estimate x0 (from `lookahead`, rows as x's).

        Without `noise` the step is the rows' own (their seeds' step noise where the sampler re-noises), so they
        go on as plain runs would. With `eta` > 0 part of each row's noise is replaced by `noise` (a branch, a
        particle move), which leaves the path the solver history was made on: the next step is first order.
        """
        if noise is None:
            noise = step_noise(seed_noise(self.seeds, self.x), self.schedule, self.at)
        x = step(self.x, x0, self.schedule, self.at, eta=eta, noise=noise, prev_x0=self._prev_x0)
        return replace(self, x=x, at=self.at + 1, _prev_x0=x0 if eta == 0.0 else None)
