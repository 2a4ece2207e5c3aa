"""Turn the names in a config into generator and verifier objects (lab models here; more register later)."""

from __future__ import annotations

from pathlib import Path

from ttscale.errors import TTScaleError
from ttscale.generator import Generator
from ttscale.verifier import Verifier

LAB_GENERATORS = ("lab-small", "lab-large")
LAB_VERIFIERS = ("lab-visa", "lab-clip")


def load_generator(
    name: str, *, steps: int = 20, guidance: float = 3.0, device: str = "cpu", batch_size: int = 64
) -> Generator:
    if name in LAB_GENERATORS or name.endswith(".safetensors"):
        from ttscale.lab.generator import LabGenerator

        return LabGenerator.from_pretrained(name, steps=steps, guidance=guidance, device=device, batch_size=batch_size)
    if Path(name).is_dir() or "/" in name:
        raise TTScaleError(
            f"generator {name!r}: diffusers pipelines are not wired in yet; use one of {', '.join(LAB_GENERATORS)}"
        )
    raise TTScaleError(f"unknown generator {name!r}; choose one of {', '.join(LAB_GENERATORS)} or a .safetensors file")


def load_verifier(name: str, *, device: str = "cpu") -> Verifier:
    if name in LAB_VERIFIERS or name.endswith(".safetensors"):
        from ttscale.lab.verifiers import LabVerifier

        return LabVerifier.from_pretrained(name, device=device)
    raise TTScaleError(f"unknown verifier {name!r}; choose one of {', '.join(LAB_VERIFIERS)}")
