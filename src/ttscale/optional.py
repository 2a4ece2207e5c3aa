"""Optional dependencies (transformers, the API clients, Ray): imported when used, with the extra to install.

The base install stays small, so a module that needs one of them imports it through `require` at the
moment it is needed, and a missing package is one line naming `pip install 'ttscale[EXTRA]'`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ttscale.errors import TTScaleError


def require(module: str, purpose: str, extra: str = "verifiers") -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TTScaleError(f"{purpose} needs the `{module}` package: pip install 'ttscale[{extra}]'") from None
