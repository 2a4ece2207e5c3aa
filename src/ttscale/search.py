"""What a strategy receives for one prompt, and what it returns.

A strategy is a plain function `strategy(search: Search, params: Params) -> SearchResult`, readable top to
bottom; `Params` is its module's `StrategyParams` model. `Search` hands it a metered generator and verifier
(every NFE and verifier call is charged to the prompt's budget), the extra judges its parameters name, the
prompt, and per-candidate seeds. Black-box strategies `draw` (sample these seeds and score them, cut short
where the budget ends); step-level ones act on `Trajectories`. `most` answers every "how many of these can
I still afford?", and `record` writes every round record with the spend so far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from ttscale.budget import Budget, Meter
from ttscale.candidate import Candidate
from ttscale.errors import TTScaleError
from ttscale.generator import Generator, StepGenerator, metered
from ttscale.seeds import candidate_seed
from ttscale.trajectories import Trajectories, TrajectoryPath
from ttscale.verifier import MeteredVerifier, Verifier, scores_for

Cost = dict[str, int]  # keywords of Meter.affords: {"nfe": …, "verifier_calls": …}


class StrategyParams(BaseModel):
    """A strategy's parameters: each strategy module's `Params`, tagged by `strategy` (the config's union key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str
    n_field: ClassVar[str | None] = None  # the parameter `ttscale search --n` sets
    n_instead: ClassVar[str] = ""  # where there is none: what to set instead, for the refusal
    open_ended: ClassVar[str | None] = None  # a parameter whose None means "until the budget ends"
    judges: ClassVar[tuple[str, ...]] = ()  # parameters naming an extra verifier, resolved by the runner

    @classmethod
    def name(cls) -> str:
        return str(cls.model_fields["strategy"].default)

    @classmethod
    def parameters(cls) -> list[str]:
        return [f for f in cls.model_fields if f != "strategy"]

    @classmethod
    def n_parameter(cls) -> str:
        """The parameter `--n` sets, or an error saying which one to set instead."""
        if cls.n_field is None:
            raise TTScaleError(f"--n: {cls.name()} has no n; {cls.n_instead}")
        return cls.n_field

    def stops(self, budget: Budget) -> None:
        """Refuse an open-ended search that nothing would stop: neither its parameter nor a budget."""
        if self.open_ended is not None and getattr(self, self.open_ended) is None and not budget.bounded:
            raise TTScaleError(
                f"{self.name()} needs params.{self.open_ended} or a budget (--nfe / --verifier-calls / --judge-requests / --seconds) "
                "to know when to stop"
            )


@dataclass
class Round:
    """One line of rounds.jsonl: a round (or branch / look-ahead step) of a search, and the spend so far."""

    round: int
    pool: int
    best: float
    nfe: float
    verifier_calls: float
    step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what only this strategy reports (kept, ess, outcome …)

    def line(self) -> dict[str, Any]:
        step = {} if self.step is None else {"step": self.step}
        spend = {"nfe": self.nfe, "verifier_calls": self.verifier_calls}
        return {"round": self.round, **step, "pool": self.pool, **self.extra, "best": self.best, **spend}


@dataclass
class SearchResult:
    candidates: list[Candidate]
    rounds: list[Round] = field(default_factory=list)


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
    judges: dict[str, Verifier] = field(default_factory=dict)  # extra judges by parameter (rounds' "confirm" …)
    _cond: Any = field(default=None, init=False, repr=False, compare=False)  # the prompt's encoding, made once

    @classmethod
    def metered(
        cls,
        generator: Generator,
        verifier: Verifier | None,
        meter: Meter,
        prompt: str,
        judges: dict[str, Verifier] | None = None,
        **kwargs: Any,
    ) -> Search:
        """A search whose generator, verifier and extra judges all charge `meter`."""
        judge = None if verifier is None else MeteredVerifier(verifier, meter)
        extra: dict[str, Verifier] = {role: MeteredVerifier(v, meter) for role, v in (judges or {}).items()}
        return cls(metered(generator, meter), judge, meter, prompt, judges=extra, **kwargs)

    def seed(self, j: int, stream: str = "noise") -> int:
        """The seed of this prompt's j-th draw in a stream (one stream per kind of randomness)."""
        return candidate_seed(self.run_seed, self.prompt_index, j, stream)

    def judge(self, params: StrategyParams, role: str) -> Verifier | None:
        """The extra judge `params.<role>` names, as the runner resolved it; None where the parameter is unset."""
        name = getattr(params, role)
        if name is None:
            return None
        if role not in self.judges:
            raise TTScaleError(
                f"params.{role} names the judge {name!r}, but the search holds none for it; "
                f"pass judges={{{role!r}: verifier}} to Search.metered (the runner does)"
            )
        return self.judges[role]

    def most(self, n: int, cost: Callable[[int], Cost], *, timed: bool = True) -> int:
        """The largest m in 0..n whose cost(m) the budget still pays (cost grows with m).

        `timed=False` leaves a time limit out: for work that must be completed once begun.
        """
        meter = self.meter if timed else Meter(self.meter.budget.model_copy(update={"seconds": None}), self.meter.spent)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if meter.affords(**cost(mid)):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def sample_cost(self, m: int, nfe_each: int | None = None) -> Cost:
        """What m full samples cost, each sampled and scored once."""
        nfe_each = self.generator.nfe_per_sample() if nfe_each is None else nfe_each
        return {"nfe": m * nfe_each, "verifier_calls": 0 if self.verifier is None else m}

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

    def scored(
        self,
        images: torch.Tensor,
        seeds: Sequence[int],
        nfe_each: int,
        round: int = 0,
        paths: Sequence[TrajectoryPath] | None = None,
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

    def _batches(self, n: int, nfe_each: int, make: Callable[[int, int], list[Candidate]]) -> list[Candidate]:
        """make(start, stop) over batches of n samples, each cut to what the budget pays; stops where it ends."""
        out: list[Candidate] = []
        for start in range(0, n, self.batch_size):
            count = self.most(min(self.batch_size, n - start), lambda m: self.sample_cost(m, nfe_each))
            if count == 0:
                break
            out += make(start, start + count)
        return out

    def draw(self, seeds: Sequence[int], round: int = 0) -> list[Candidate]:
        """Sample and score these seeds in batches; stops early (fewer candidates) where the budget ends."""
        nfe_each = self.generator.nfe_per_sample()

        def make(a: int, b: int) -> list[Candidate]:
            batch = list(seeds[a:b])
            return self.scored(self.generator.sample(self.prompt, batch), batch, nfe_each, round)

        return self._batches(len(seeds), nfe_each, make)

    def trajectories(
        self, seeds: Sequence[int], noise: torch.Tensor | None = None, paths: Sequence[TrajectoryPath] | None = None
    ) -> Trajectories:
        """Fresh trajectories of this prompt (metered) from these seeds' noises, or from `noise` with its paths."""
        gen = self.generator
        if not isinstance(gen, StepGenerator):
            raise TTScaleError(f"{gen.name!r} is black-box: trajectories need step access (encode/noise/denoise)")
        if self._cond is None:
            self._cond = gen.encode(self.prompt)
        return Trajectories.start(gen, self._cond, seeds, self.batch_size, noise, paths)

    def complete(self, t: Trajectories, round: int = 0) -> list[Candidate]:
        """Sample fresh trajectories to the end and score them, batch by batch, as far as the budget pays (`draw`)."""

        def make(a: int, b: int) -> list[Candidate]:
            done = t.take(range(a, b)).advance(t.steps)
            return self.scored(done.decode(), done.seeds, t.nfe_per_sample, round, done.paths)

        return self._batches(len(t), t.nfe_per_sample, make)

    def record(self, round: int, pool: int, best: float, step: int | None = None, **extra: Any) -> Round:
        """A round record with the spend so far."""
        return Round(round, pool, best, self.meter.spent.nfe, self.meter.spent.verifier_calls, step, extra)

    def finish(self, t: Trajectories, rounds: list[Round]) -> SearchResult:
        """Decode finished trajectories, score them, log the final round, and return them as the candidates."""
        final = len(rounds)
        candidates = self.scored(t.decode(), t.seeds, t.nfe_per_sample, final, t.paths)
        best = float(torch.tensor([c.score for c in candidates]).max())  # NaN-propagating, as before
        return SearchResult(candidates, [*rounds, self.record(final, len(candidates), best, step=t.at)])
