"""Search strategies, one module each; `STRATEGIES` maps CLI names to the functions.

Each is `strategy(search, **params) -> SearchResult`; `STEP_LEVEL` names those that need a
generator with step access (encode / noise / denoise / decode).
"""

from __future__ import annotations

from collections.abc import Callable

from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult
from ttscale.strategies.adaptive import adaptive
from ttscale.strategies.best_of_n import best_of_n
from ttscale.strategies.particles import particle_filter
from ttscale.strategies.paths import search_over_paths
from ttscale.strategies.pruning import early_pruning
from ttscale.strategies.random_search import random_search
from ttscale.strategies.rounds import rounds
from ttscale.strategies.zero_order import zero_order

Strategy = Callable[..., SearchResult]

STRATEGIES: dict[str, Strategy] = {
    "best-of-n": best_of_n,
    "random-search": random_search,
    "rounds": rounds,
    "zero-order": zero_order,
    "adaptive": adaptive,
    "search-over-paths": search_over_paths,
    "particle-filter": particle_filter,
    "early-pruning": early_pruning,
}
STEP_LEVEL = frozenset({"zero-order", "search-over-paths", "particle-filter", "early-pruning"})


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise TTScaleError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


__all__ = ["STEP_LEVEL", "STRATEGIES", "Search", "SearchResult", "Strategy", "get_strategy"]
