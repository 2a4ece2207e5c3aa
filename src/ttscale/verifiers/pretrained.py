"""What every model-based verifier shares: loading a checkpoint with a one-line error, precision, FLOPs.

A verifier is inference-only, so on a GPU it runs in half precision (bf16 where the GPU has it,
fp16 otherwise), which halves its cost next to the generator's; on CPU it stays in fp32.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from ttscale.errors import TTScaleError

T = TypeVar("T")


def default_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load(loader: Callable[..., T], name_or_path: str, what: str, **kwargs: Any) -> T:
    """`loader(name_or_path, **kwargs)`, turning a missing checkpoint into one line that says what to fetch."""
    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        where = "not found locally (HF_HUB_OFFLINE is set)" if offline else "could not be loaded"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TTScaleError(
            f"{what} {name_or_path!r}: weights {where}; download them with `hf download {name_or_path}` "
            f"or give a local folder ({first})"
        ) from None


def to_device(batch: Mapping[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Move a processor's output to the model: float tensors (pixels) also to the model's precision."""
    return {
        k: (v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device)) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }
