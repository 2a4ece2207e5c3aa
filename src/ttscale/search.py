"""What a strategy receives for one prompt, and what it returns.

A strategy is a plain function `strategy(search: Search, **params) -> SearchResult`, readable top to
bottom. `Search` hands it a metered generator and verifier (every NFE and verifier call is charged
to the prompt's budget), the prompt, and per-candidate seeds; `draw` is the shared "sample these
seeds and score them" step, cut short where the budget ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ttscale.budget import Meter
from ttscale.candidate import Candidate
from ttscale.generator import Generator, StepGenerator, metered
from ttscale.samplers import advance, seed_noise
from ttscale.seeds import candidate_seed
from ttscale.verifier import MeteredVerifier, Verifier, scores_for


@dataclass
class SearchResult:
    candidates: list[Candidate]
    rounds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Search:
    generator: Generator
    verifier: Verifier | None  # None: plain sampling, every candidate unscored (NaN)
    meter: Meter
    prompt: str
    prompt_index: int = 0
    run_seed: int = 0
    metric: str | None = None
    batch_size: int = 64

    @classmethod
    def metered(
        cls, generator: Generator, verifier: Verifier | None, meter: Meter, prompt: str, **kwargs: Any
    ) -> Search:
        judge = None if verifier is None else MeteredVerifier(verifier, meter)
        return cls(metered(generator, meter), judge, meter, prompt, **kwargs)

    def seed(self, j: int, stream: str = "noise") -> int:
        """The seed of this prompt's j-th draw in a stream (one stream per kind of randomness)."""
        return candidate_seed(self.run_seed, self.prompt_index, j, stream)

    def affordable(self, n: int, nfe_each: int | None = None) -> int:
        """How many of n full samples (each sampled and scored) the budget still allows."""
        nfe_each = self.generator.nfe_per_sample() if nfe_each is None else nfe_each
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.meter.affords(nfe=mid * nfe_each, verifier_calls=0 if self.verifier is None else mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def score(
        self, images: torch.Tensor, verifier: Verifier | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scores of images of this prompt, in batches: (ranking metric, all metrics).

        `verifier` defaults to the search's own; pass another (metered) one for a cheap look-ahead judge.
        """
        judge = verifier or self.verifier
        if judge is None:
            return torch.full((len(images),), float("nan")), {}
        metric = self.metric if verifier is None else None
        parts = [
            scores_for(judge, images[s : s + self.batch_size], self.prompt, metric)
            for s in range(0, len(images), self.batch_size)
        ]
        return torch.cat([r for r, _ in parts]), {k: torch.cat([m[k] for _, m in parts]) for k in parts[0][1]}

    def denoise_steps(
        self,
        gen: StepGenerator,
        x: torch.Tensor,
        seeds: Sequence[int],
        cond: Any,
        start: int,
        stop: int,
        prev_x0: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sampling of x (row j: the trajectory of `seeds[j]`) from grid point `start` to `stop`, in batches.

        As `samplers.advance`: `prev_x0` is x's x0 estimate at start - 1 (None at the start of a trajectory
        or after a stochastic step), and the last estimate comes back with x so that a multistep solver
        continues from `stop` where a plain run would be. A "consistency" schedule's steps take each row's
        noise from its seed's stream (`samplers.seed_noise`), as a plain run of that seed does.
        """
        sched = gen.schedule()
        parts = [
            advance(
                lambda y, i: gen.denoise(y, i, cond),
                x[s : s + self.batch_size],
                sched,
                start,
                stop,
                None if prev_x0 is None else prev_x0[s : s + self.batch_size],
                noise=seed_noise(seeds[s : s + self.batch_size], x),
            )
            for s in range(0, len(x), self.batch_size)
        ]
        last = [p for _, p in parts if p is not None]  # all chunks have one, or none has (no step, no prev_x0)
        return torch.cat([y for y, _ in parts]), torch.cat(last) if last else None

    def scored(
        self,
        images: torch.Tensor,
        seeds: Sequence[int],
        nfe_each: int,
        round: int = 0,
        paths: Sequence[list[list[Any]]] | None = None,
    ) -> list[Candidate]:
        """Score finished images of this prompt and make them candidates (one seed, and path, per image)."""
        ranking, metrics = self.score(images)
        return [
            Candidate(
                seed=seed,
                image=images[j].cpu(),
                scores={k: float(v[j]) for k, v in metrics.items()},
                score=float(ranking[j]),
                nfe=nfe_each,
                round=round,
                path=[] if paths is None else paths[j],
            )
            for j, seed in enumerate(seeds)
        ]

    def draw(self, seeds: Sequence[int], round: int = 0) -> list[Candidate]:
        """Sample and score these seeds in batches; stops early (fewer candidates) where the budget ends."""
        out: list[Candidate] = []
        nfe_each = self.generator.nfe_per_sample()
        for start in range(0, len(seeds), self.batch_size):
            batch = list(seeds[start : start + self.batch_size])[: self.affordable(self.batch_size)]
            if not batch:
                break
            out += self.scored(self.generator.sample(self.prompt, batch), batch, nfe_each, round)
        return out

    def finish(
        self,
        gen: StepGenerator,
        x: torch.Tensor,
        seeds: Sequence[int],
        paths: Sequence[list[list[Any]]],
        rounds: list[dict[str, Any]],
        nfe_each: int,
    ) -> SearchResult:
        """Decode finished samples, score them, log the final round, and return them as the candidates."""
        final = len(rounds)
        candidates = self.scored(gen.decode(x), seeds, nfe_each, final, paths)
        rounds.append(
            {
                "round": final,
                "step": gen.schedule().steps,
                "pool": len(candidates),
                "best": float(torch.tensor([c.score for c in candidates]).max()),  # NaN-propagating, as before
                "nfe": self.meter.spent.nfe,
                "verifier_calls": self.meter.spent.verifier_calls,
            }
        )
        return SearchResult(candidates, rounds)
