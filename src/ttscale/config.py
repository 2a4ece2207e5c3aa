"""One config object per run: every CLI option, also loadable from a JSON file (`--config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ttscale.budget import Budget
from ttscale.errors import TTScaleError

NO_VERIFIER = "none"  # plain sampling (`ttscale generate`): nothing scored or ranked, no verifier calls


class SearchConfig(BaseModel):
    """What `ttscale search` runs: model, verifier, strategy and its parameters, budget, selection."""

    model_config = ConfigDict(extra="forbid")

    generator: str = Field("lab-small", description="lab-small, lab-large, a .safetensors file, or a diffusers model")
    verifier: str = Field(
        "lab-visa", description="lab-visa, lab-clip, another registered verifier, or none (best-of-n only: no ranking)"
    )
    metric: str | None = Field(None, description="verifier metric to rank by (default: its first)")
    strategy: str = "best-of-n"
    params: dict[str, Any] = Field(default_factory=dict, description="strategy parameters, e.g. {'n': 16}")
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

    @model_validator(mode="after")
    def _unscored_needs_no_ranking(self) -> SearchConfig:
        if self.verifier == NO_VERIFIER and self.strategy != "best-of-n":
            raise ValueError(f"strategy {self.strategy} ranks by a verifier; 'none' suits best-of-n (plain sampling)")
        if self.verifier == NO_VERIFIER and (self.budget.verifier_calls, self.budget.judge_requests) != (None, None):
            raise ValueError("verifier 'none' makes no verifier calls; bound the run by n, NFEs or seconds")
        return self

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> SearchConfig:
        """A config from a JSON file (optional) with CLI overrides applied on top (None = not given)."""
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
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            where = f"{loc}: " if loc else ""  # a model validator's error belongs to no one field
            message = first["msg"].removeprefix("Value error, ")  # a model validator's own sentence
            raise TTScaleError(f"config: {where}{message}") from None


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
