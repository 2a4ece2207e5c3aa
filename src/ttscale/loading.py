"""Turn the names in a config into generator and verifier objects: lab models, diffusers pipelines, the verifier registry."""

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
    if name.startswith("diffusers:") or Path(name).is_dir() or "/" in name:
        from ttscale.generators.hub import load_diffusers

        return load_diffusers(name, steps=steps, guidance=guidance, device=device, batch_size=batch_size)
    raise TTScaleError(
        f"unknown generator {name!r}; choose one of {', '.join(LAB_GENERATORS)}, a .safetensors file, "
        "or a diffusers model (a folder with model_index.json, a cached hub id org/name, or diffusers:ID)"
    )


def load_verifier(name: str, *, device: str = "cpu") -> Verifier:
    from ttscale.verifiers.registry import KINDS, load_named

    if name in LAB_VERIFIERS or (name.endswith(".safetensors") and name.partition(":")[0] not in KINDS):
        from ttscale.lab.verifiers import LabVerifier

        return LabVerifier.from_pretrained(name, device=device)
    return load_named(name, device=device)  # clip:, siglip:, vlm:, openai:, ensemble: … and plug-ins


def load_run_verifier(name: str, *, device: str = "cpu") -> Verifier | None:
    """A run's verifier: None for `none` (plain sampling, nothing scored), else `load_verifier`."""
    from ttscale.config import NO_VERIFIER

    return None if name == NO_VERIFIER else load_verifier(name, device=device)
