"""Pairwise selection (SANA-1.5): rank a batch by comparing its images two at a time.

A pairwise judge says which of two images matches the prompt better. API judges favour the image
shown first, so every pair is judged in both orders and the two verdicts averaged:
p(a beats b) = (P(a | a shown first) + 1 - P(b | b shown first)) / 2. A comparison that failed
counts as no information (the other order alone, or 0.5 if both failed); failures stay in the
judge's `failures`.

Two formats, as a Verifier whose scores rank the images of one `score` call:
- `knockout` (SANA-1.5): pairs play, winners go on (a bye for an odd one out); an image's score is
  the number of rounds it survived, so the champion is top. Cost: 2 (n - 1) judge calls for n images.
- `round-robin`: every pair plays; the score is the mean p(beats) over all opponents (a Borda
  count). Cost: n (n - 1) judge calls, 240 for n = 16.
Scores compare only within one call: search with `batch_size` >= n, or re-pick a saved pool with
`ttscale pick`, so that all candidates of a prompt meet. The meter charges one verifier call per
image, and as judge requests what the judge really asked: its own count where it keeps one
(`requests`, an API judge's retries included), else one per ordered comparison (`comparisons`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Literal, Protocol

import torch

from ttscale.errors import TTScaleError
from ttscale.images import encode_png, to_uint8
from ttscale.verifiers.api import ApiCaller, Failure, scored_object

Pair = tuple[int, int]
Mode = Literal["knockout", "round-robin"]
PAIRWISE_SYSTEM = (
    "You are a strict, consistent judge of images generated from text prompts. You are shown two images "
    "generated for the same prompt, the first and then the second. Say which one matches the prompt better "
    "(every object, count, colour, attribute and spatial relation asked for), then image quality, with a "
    "one-sentence explanation. Judge the content, not the order they are shown in. Answer with JSON only."
)


class PairwiseJudge(Protocol):
    """Says which of two images is better. One that knows its real requests (retries) also keeps `requests`."""

    name: str

    def prefer(self, images: torch.Tensor, prompt: str, pairs: Sequence[Pair]) -> dict[Pair, float]:
        """P(the first image of each ordered pair is the better one); NaN where the judgement failed."""
        ...


class ApiPairwiseJudge:
    """Asks an API model (OpenAI-compatible or Gemini) which of two images is better; answers are 1 or 0."""

    def __init__(self, caller: ApiCaller, system: str = PAIRWISE_SYSTEM):
        backend = caller.backend
        self.caller, self.system = caller, system
        self.name = f"{backend.provider}:{backend.model}" + (f"@{backend.base_url}" if backend.base_url else "")
        strict = backend.provider == "openai"
        self.schema = scored_object(
            {"explanation": {"type": "string"}, "better": {"type": "string", "enum": ["first", "second"]}}, strict
        )

    @property
    def failures(self) -> list[Failure]:
        return self.caller.failures

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included (one ordered pair per request)."""
        return self.caller.requests

    def _request(self, pngs: dict[int, bytes], prompt: str, pair: Pair) -> Callable[[], float]:
        text = f'Prompt: "{prompt}"\nWhich of the two attached images matches this prompt better?'
        pair_pngs = [pngs[pair[0]], pngs[pair[1]]]

        def request() -> float:
            return parse_choice(self.caller.backend.ask(pair_pngs, text, self.system, self.schema))

        return request

    def prefer(self, images: torch.Tensor, prompt: str, pairs: Sequence[Pair]) -> dict[Pair, float]:
        playing = sorted({i for pair in pairs for i in pair})  # a knock-out round encodes only who is still in
        pngs = {i: encode_png(im) for i, im in zip(playing, to_uint8(images[playing]), strict=True)}
        answers = self.caller.run({pair: (prompt, self._request(pngs, prompt, pair)) for pair in pairs})
        return {pair: math.nan if isinstance(a, Failure) else a for pair, a in answers.items()}


def parse_choice(text: str) -> float:
    """1.0 when the answer prefers the first image, 0.0 for the second; ValueError otherwise."""
    try:
        better = json.loads(text).get("better")
    except (json.JSONDecodeError, AttributeError):
        raise ValueError("the answer is not a JSON object with `better`") from None
    if better not in ("first", "second"):
        raise ValueError(f"`better` is {better!r}, not 'first' or 'second'")
    return 1.0 if better == "first" else 0.0


def both_orders(verdicts: dict[Pair, float], a: int, b: int) -> float:
    """p(a beats b) from the verdicts of (a, b) and (b, a); a failed order is left out, both failed = 0.5."""
    votes = [v for v in (verdicts[(a, b)], 1.0 - verdicts[(b, a)]) if not math.isnan(v)]
    return sum(votes) / len(votes) if votes else 0.5


class Tournament:
    """A Verifier from a pairwise judge: knockout (rounds survived) or round-robin (mean win rate)."""

    flops_per_image = math.nan  # unknown: the judge's cost is per comparison (`requests`), not per image

    def __init__(self, judge: PairwiseJudge, mode: Mode = "knockout"):
        if mode not in ("knockout", "round-robin"):
            raise TTScaleError(f"tournament mode {mode!r}: choose knockout or round-robin")
        self.judge, self.mode = judge, mode
        self.name = f"{mode}:{judge.name}"
        self.metrics: tuple[str, ...] = ("rounds_survived",) if mode == "knockout" else ("win_rate",)
        self.comparisons = 0

    @property
    def requests(self) -> int:
        """Judge requests so far: the judge's own count where it keeps one, else the comparisons asked."""
        return int(getattr(self.judge, "requests", self.comparisons))

    def _play(self, images: torch.Tensor, prompt: str, matches: Sequence[Pair]) -> dict[Pair, float]:
        ordered = [p for a, b in matches for p in ((a, b), (b, a))]
        self.comparisons += len(ordered)
        verdicts = self.judge.prefer(images, prompt, ordered)
        return {(a, b): both_orders(verdicts, a, b) for a, b in matches}

    def _knockout(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        survived = torch.zeros(images.shape[0])
        alive = list(range(images.shape[0]))
        while len(alive) > 1:
            matches = [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
            results = self._play(images, prompt, matches)
            winners = [a if p >= 0.5 else b for (a, b), p in results.items()]  # a tie goes to the earlier draw
            alive = winners + alive[2 * len(matches) :]  # the odd one out has a bye
            survived[alive] += 1
        return survived

    def _round_robin(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        n = images.shape[0]
        if n == 1:
            return torch.ones(1)
        results = self._play(images, prompt, [(a, b) for a in range(n) for b in range(a + 1, n)])
        wins = torch.zeros(n)
        for (a, b), p in results.items():
            wins[a] += p
            wins[b] += 1.0 - p
        return wins / (n - 1)

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Images of different prompts never meet: each prompt's images play their own tournament."""
        out = torch.zeros(images.shape[0])
        groups: dict[Hashable, list[int]] = {}
        for j, p in enumerate(prompts):
            groups.setdefault(p, []).append(j)
        play = self._knockout if self.mode == "knockout" else self._round_robin
        for prompt, members in groups.items():
            out[members] = play(images[members], str(prompt))
        return {self.metrics[0]: out}

    def __repr__(self) -> str:
        return f"Tournament({self.mode}, judge={self.judge.name!r}, comparisons so far={self.comparisons})"
