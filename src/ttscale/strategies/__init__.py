"""Search strategies, one module each, and the one registry of them: name -> function, parameters, step access.

Each is `strategy(search, params) -> SearchResult`, `params` its module's `Params` (a `StrategyParams` tagged by
the strategy's name). `AnyParams` is the union of them the config's `params` is validated as; `ttscale
strategies`, the README's table (`strategy_table`) and the sweep read the same models.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult, StrategyParams
from ttscale.strategies import adaptive, best_of_n, particles, paths, pruning, random_search, rounds, zero_order


@dataclass(frozen=True)
class Strategy:
    run: Callable[[Search, Any], SearchResult]
    params: type[StrategyParams]
    step_level: bool  # needs a generator with step access (encode / noise / denoise / decode)
    summary: str  # one line: where it comes from and what it does

    @property
    def name(self) -> str:
        return self.params.name()


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(best_of_n.best_of_n, best_of_n.Params, False, "SANA-1.5: n independent candidates, the best kept"),
        Strategy(
            random_search.random_search,
            random_search.Params,
            False,
            "tt-scale-flux: rounds of 1, 2, 4 … fresh noises",
        ),
        Strategy(
            rounds.rounds,
            rounds.Params,
            False,
            "Scale-RAE: rounds × samples, a second verifier confirms, weighted `combined`",
        ),
        Strategy(
            adaptive.adaptive,
            adaptive.Params,
            False,
            "stop once the verifier is confident; `carry_over` gives the saving to later prompts "
            "(in one process: refused with `--shard` or `--workers`)",
        ),
        Strategy(zero_order.zero_order, zero_order.Params, True, "Ma et al. 2025: neighbours of the best noise"),
        Strategy(
            paths.search_over_paths,
            paths.Params,
            True,
            "Ma et al. 2025: branch and prune on x0 look-ahead",
        ),
        Strategy(
            particles.particle_filter,
            particles.Params,
            True,
            "FK steering / SMC with a stochastic sampler of the same marginals",
        ),
        Strategy(
            pruning.early_pruning,
            pruning.Params,
            True,
            "finish only the candidates whose look-ahead looks best",
        ),
    )
}

if TYPE_CHECKING:
    AnyParams = StrategyParams
else:  # the config's `params`: one of the strategies' models, chosen by its `strategy` tag
    AnyParams = Annotated[
        reduce(operator.or_, [s.params for s in STRATEGIES.values()]), Field(discriminator="strategy")
    ]


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise TTScaleError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def parameters(params: type[StrategyParams]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, description) of each parameter, for `ttscale strategies`."""
    rows = []
    for name in params.parameters():
        info = params.model_fields[name]
        kind = info.annotation.__name__ if isinstance(info.annotation, type) else str(info.annotation)
        rows.append((name, kind.replace("typing.", ""), info.default, info.description or ""))
    return rows


def strategy_table() -> str:
    """The README's strategy table, from the registry (a test checks that README.md holds exactly this)."""
    rows = ["| strategy | from | step access | parameters (default; `--n` sets the bold one) |", "|---|---|---|---|"]
    for s in STRATEGIES.values():
        cells = []
        for name, _, default, _ in parameters(s.params):
            cell = f"`{name}`" if default is None else f"`{name}={default}`"
            cells.append(f"**{cell}**" if name == s.params.n_field else cell)
        rows.append(f"| `{s.name}` | {s.summary} | {'yes' if s.step_level else 'no'} | {', '.join(cells)} |")
    return "\n".join(rows)


__all__ = ["STRATEGIES", "AnyParams", "Search", "SearchResult", "Strategy", "StrategyParams", "get_strategy"]
