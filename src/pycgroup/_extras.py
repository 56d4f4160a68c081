"""Optional dependencies, imported only by the functions that need them."""

from __future__ import annotations

import importlib
from types import ModuleType

from pycgroup.errors import MissingExtra


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Returns the imported module, or raises MissingExtra naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f'pip install "pycgroup[{extra}]"', name=module) from e
