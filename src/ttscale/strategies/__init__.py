"""Search strategies, one module each; `STRATEGIES` maps CLI names to the functions."""

from __future__ import annotations

from collections.abc import Callable

from ttscale.errors import TTScaleError
from ttscale.search import Search, SearchResult
from ttscale.strategies.best_of_n import best_of_n

Strategy = Callable[..., SearchResult]

STRATEGIES: dict[str, Strategy] = {
    "best-of-n": best_of_n,
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise TTScaleError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


__all__ = ["STRATEGIES", "Search", "SearchResult", "Strategy", "get_strategy"]
