"""Lab weights: safetensors files shipped inside the package, each with its config in the header."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from ttscale.errors import TTScaleError
from ttscale.lab.nets import DualEncoder, FlowUNet, JudgeConfig, UNetConfig, YesNoJudge

GENERATORS = ("lab-small", "lab-large")
VERIFIERS = ("lab-visa", "lab-clip")


def weights_dir() -> Path:
    return Path(str(resources.files("ttscale.lab") / "weights"))


def save(module: torch.nn.Module, path: Path, kind: str, config: dict[str, Any], info: dict[str, Any]) -> None:
    """Store weights in fp16 (halves the package) with kind, config and training info in the header."""
    tensors = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in module.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"kind": kind, "config": json.dumps(config), "info": json.dumps(info)})


def _resolve(name_or_path: str, known: tuple[str, ...]) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise TTScaleError(f"weights file {path} does not exist")
        return path
    if name_or_path not in known:
        raise TTScaleError(
            f"unknown lab model {name_or_path!r}; choose one of {', '.join(known)} or give a .safetensors path"
        )
    path = weights_dir() / f"{name_or_path}.safetensors"
    if not path.is_file():
        raise TTScaleError(
            f"the lab weights {path.name} are not in this install; train them with "
            f"`ttscale lab train-{'generator' if name_or_path in GENERATORS else 'verifiers'}` or reinstall ttscale"
        )
    return path


def header(path: Path) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return {
        "kind": meta.get("kind"),
        "config": json.loads(meta.get("config", "{}")),
        "info": json.loads(meta.get("info", "{}")),
    }


def load_unet(name_or_path: str) -> tuple[FlowUNet, dict[str, Any]]:
    path = _resolve(name_or_path, GENERATORS)
    head = header(path)
    net = FlowUNet(UNetConfig(**head["config"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return net.eval().requires_grad_(False), head


def load_judge(name_or_path: str) -> tuple[YesNoJudge | DualEncoder, dict[str, Any]]:
    path = _resolve(name_or_path, VERIFIERS)
    head = header(path)
    cls = YesNoJudge if head["kind"] == "lab-visa" else DualEncoder
    net = cls(JudgeConfig(**head["config"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return net.eval().requires_grad_(False), head
