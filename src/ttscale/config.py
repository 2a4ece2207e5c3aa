"""One config object per run: every CLI option, also loadable from a JSON file (`--config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from ttscale.budget import Budget
from ttscale.errors import TTScaleError
from ttscale.search import StrategyParams
from ttscale.strategies import STRATEGIES, AnyParams

NO_VERIFIER = "none"  # plain sampling (`ttscale generate`): nothing scored or ranked, no verifier calls


class SearchConfig(BaseModel):
    """What `ttscale search` runs: model, verifier, strategy and its parameters, budget, selection."""

    model_config = ConfigDict(extra="forbid")

    generator: str = Field("lab-small", description="lab-small, lab-large, a .safetensors file, or a diffusers model")
    verifier: str = Field(
        "lab-visa", description="lab-visa, lab-clip, another registered verifier, or none (best-of-n only: no ranking)"
    )
    metric: str | None = Field(None, description="verifier metric to rank by (default: its first)")
    strategy: str = Field("best-of-n", description="search strategy (`ttscale strategies` lists them)")
    params: AnyParams = Field(
        default_factory=lambda: STRATEGIES["best-of-n"].params.model_validate({}),
        description="the strategy's parameters, e.g. {'n': 16}; checked against its Params model",
    )
    budget: Budget = Field(default_factory=Budget, description="per-prompt limits")
    k: int = Field(1, ge=1, description="images kept per prompt (what GenEval evaluates)")
    steps: int = Field(20, ge=1)
    guidance: float = Field(
        3.0,
        ge=0.0,
        description="classifier-free guidance scale; at or below 1 the unconditional branch is skipped (one NFE "
        "per step, as diffusers does), so 0 suits models without guidance (FLUX.1-schnell); FLUX.1-dev embeds it",
    )
    seed: int = 0
    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    save_candidates: bool = True
    carry_over: bool = Field(
        False,
        description="add each prompt's unspent budget to the next prompt's (adaptive search); order-dependent, so "
        "refused with --shard or --workers",
    )

    @model_validator(mode="before")
    @classmethod
    def _tag_params(cls, data: Any) -> Any:
        """Users write params without their strategy; the union is keyed on it, so copy it in."""
        if isinstance(data, dict) and isinstance(data.get("params", {}), dict):
            strategy = data.get("strategy", cls.model_fields["strategy"].default)
            return {**data, "params": {"strategy": strategy, **data.get("params", {})}}
        return data

    @field_validator("strategy")
    @classmethod
    def _known(cls, strategy: str) -> str:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        return strategy

    @field_serializer("params")
    def _params_as_written(self, params: StrategyParams, info: SerializationInfo) -> dict[str, Any]:
        """run.json keeps the parameters as given (no tag, no defaults), so a resumed run compares like with like."""
        return params.model_dump(mode=info.mode, exclude_unset=True, exclude={"strategy"})

    @model_validator(mode="after")
    def _unscored_needs_no_ranking(self) -> SearchConfig:
        if self.params.strategy != self.strategy:
            raise ValueError(f"params are {self.params.strategy}'s, but the strategy is {self.strategy}")
        if self.verifier == NO_VERIFIER and self.strategy != "best-of-n":
            raise ValueError(f"strategy {self.strategy} ranks by a verifier; 'none' suits best-of-n (plain sampling)")
        if self.verifier == NO_VERIFIER and (self.budget.verifier_calls, self.budget.judge_requests) != (None, None):
            raise ValueError("verifier 'none' makes no verifier calls; bound the run by n, NFEs or seconds")
        return self

    @classmethod
    def load(cls, path: Path | None, n: int | None = None, **overrides: Any) -> SearchConfig:
        """A config from a JSON file (optional) with CLI overrides applied on top (None = not given).

        `n` is `--n`: the parameter each strategy's Params names for it (best-of-n's n, particle-filter's
        particles …), or an error saying which to set where a strategy has none.
        """
        data: dict[str, Any] = {}
        if path is not None:
            if not path.is_file():
                raise TTScaleError(f"config file {path} does not exist")
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise TTScaleError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from None
        for key, value in overrides.items():
            if value is None:
                continue
            if key in ("nfe", "verifier_calls", "judge_requests", "seconds"):
                data.setdefault("budget", {})[key] = value
            else:
                data[key] = value
        strategy = STRATEGIES.get(data.get("strategy", cls.model_fields["strategy"].default))
        if n is not None and strategy is not None and isinstance(data.get("params", {}), dict):
            data["params"] = {**data.get("params", {}), strategy.params.n_parameter(): n}
        try:
            config = cls.model_validate(data)
        except ValidationError as err:
            raise TTScaleError(f"config: {_one_line(err.errors()[0])}") from None
        config.params.stops(config.budget)
        return config


def _one_line(error: ErrorDetails) -> str:
    """A validation error as `field: what is wrong`; a strategy parameter's names the ones it takes."""
    loc = [str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")  # a validator's own sentence
    if len(loc) >= 2 and loc[0] == "params" and loc[1] in STRATEGIES:  # the union's tag sits in the path
        name, loc = loc[1], ["params", *loc[2:]]
        takes = ", ".join(STRATEGIES[name].params.parameters())
        if error["type"] == "extra_forbidden":
            message = f"unknown parameter for {name}; it takes {takes}"
        else:
            message = f"{message}; {name} takes {takes}"
    return f"{'.'.join(loc)}: {message}" if loc else message  # a model validator's error belongs to no one field


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
