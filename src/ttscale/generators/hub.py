"""Load diffusers pipelines offline (a local folder or a hub id already downloaded), with one-line errors.

A generator name is `diffusers:<folder or org/name>[?option=value&...]`; a folder holding model_index.json
or an `org/name` id works without the prefix. Options: dtype (bf16, fp16, fp32; default bf16 on a GPU,
fp32 on the CPU), height, width, resolution (both), offload (1: diffusers' enable_model_cpu_offload, the
low-VRAM mode), black_box (1: the pipeline's own __call__ instead of step access).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch

from ttscale.errors import TTScaleError
from ttscale.generator import Generator

PREFIX = "diffusers:"
DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}
OPTIONS = ("dtype", "height", "width", "resolution", "offload", "black_box")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_name(name: str) -> tuple[str, dict[str, str]]:
    """`diffusers:org/model?dtype=bf16&offload=1` -> ("org/model", {"dtype": "bf16", "offload": "1"})."""
    spec = name.removeprefix(PREFIX)
    model, _, query = spec.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TTScaleError(f"generator {name!r}: unknown option {unknown[0]!r}; options are {', '.join(OPTIONS)}")
    if not model:
        raise TTScaleError(f"generator {name!r}: give a model folder or hub id after {PREFIX!r}")
    return model, options


def _flag(options: dict[str, str], key: str) -> bool:
    return options.get(key, "0").lower() in ("1", "true", "yes", "on", "")


def _int(options: dict[str, str], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise TTScaleError(f"generator option {key}={value!r}: expected a positive whole number of pixels")
    return int(value)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def load_pipeline(model: str, *, dtype: str | None = None, device: str = "cpu", offload: bool = False) -> Any:
    """`DiffusionPipeline.from_pretrained` without network access: what is missing is named, never fetched."""
    try:
        from diffusers import DiffusionPipeline
        from huggingface_hub import constants
    except ImportError:
        raise TTScaleError("diffusers models need the diffusers extra: pip install 'ttscale[diffusers]'") from None

    if dtype is not None and dtype not in DTYPES:
        raise TTScaleError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if offload and not device.startswith("cuda"):
        raise TTScaleError("offload=1 (enable_model_cpu_offload) needs a GPU device, e.g. --device cuda")
    torch_dtype = DTYPES[dtype] if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    folder = Path(model).expanduser()
    local = folder.exists() or model.startswith((".", "/", "~")) or not _HUB_ID.match(model)
    if local:
        if not folder.is_dir():
            raise TTScaleError(f"model folder {folder} does not exist; give a diffusers folder or a hub id (org/name)")
        if not (folder / "model_index.json").is_file():
            raise TTScaleError(
                f"{folder} is not a diffusers model folder (no model_index.json); "
                "download one with `hf download <org/name> --local-dir <folder>`"
            )
    try:
        pipe = DiffusionPipeline.from_pretrained(
            str(folder) if local else model, dtype=torch_dtype, local_files_only=True
        )
    except (OSError, ValueError) as err:
        if local:
            raise TTScaleError(
                f"{folder}: the pipeline's weights are incomplete ({_one_line(err)}); download the model again "
                "with `hf download <org/name> --local-dir <folder>`"
            ) from None
        raise TTScaleError(
            f"diffusers model {model!r} is not downloaded: run `hf download {model}` (`huggingface-cli download` "
            f"on older huggingface_hub; it goes to {constants.HF_HUB_CACHE}, set HF_HOME to move it; gated models "
            f"need `hf auth login` first), or pass a local folder [{_one_line(err)}]"
        ) from None
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_diffusers(name: str, *, steps: int, guidance: float, device: str, batch_size: int) -> Generator:
    """A generator name (see the module docstring) to a DiffusersGenerator, or a DiffusersBlackBox on request."""
    from ttscale.generators.diffusers_generator import DiffusersBlackBox, DiffusersGenerator

    model, options = parse_name(name)
    resolution = _int(options, "resolution")
    height, width = _int(options, "height") or resolution, _int(options, "width") or resolution
    pipe = load_pipeline(model, dtype=options.get("dtype"), device=device, offload=_flag(options, "offload"))
    cls = DiffusersBlackBox if _flag(options, "black_box") else DiffusersGenerator
    return cls(pipe, name=name, steps=steps, guidance=guidance, height=height, width=width, batch_size=batch_size)
