"""Users' own verifiers: an import string `package.module:ClassName`, or an entry point.

A plug-in is any class or function that takes `device=` (plus, for an entry point named with an
argument, `name:ARG`, that argument first) and returns an object with `name`, `metrics`,
`flops_per_image` and `score(images, prompts)`. A package registers one for everyone with

    [project.entry-points."ttscale.verifiers"]
    my-judge = "my_package.judges:MyJudge"

after which `--verifier my-judge` (or `my-judge:some-arg`) loads it.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Any

from ttscale.errors import TTScaleError
from ttscale.verifier import Verifier

GROUP = "ttscale.verifiers"
IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _check(made: Any, origin: str) -> Verifier:
    if not isinstance(made, Verifier):
        missing = [a for a in ("name", "metrics", "flops_per_image", "score") if not hasattr(made, a)]
        raise TTScaleError(f"{origin} did not make a verifier: it lacks {', '.join(missing)}")
    if not made.metrics:
        raise TTScaleError(f"{origin} made a verifier with no metrics; its first metric ranks candidates")
    return made


def registered() -> dict[str, Any]:
    """The entry points of the `ttscale.verifiers` group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def from_entry_point(name: str, device: str) -> Verifier | None:
    """The verifier of entry point `name` (or `name:ARG`), or None when no package registers that name."""
    head, _, arg = name.partition(":")
    ep = registered().get(head)
    if ep is None:
        return None
    factory = ep.load()
    made = factory(arg, device=device) if arg else factory(device=device)
    return _check(made, f"entry point {head!r} ({ep.value})")


def from_import_string(spec: str, device: str) -> Verifier:
    """`package.module:ClassName`, imported and called with `device=`."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise TTScaleError(f"verifier {spec!r}: cannot import {module_name} ({err})") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise TTScaleError(f"verifier {spec!r}: {module_name} has no {attr}")
    return _check(factory(device=device), f"verifier {spec!r}")
