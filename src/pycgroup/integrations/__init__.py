"""What puts pycgroup inside other programs: training-framework callbacks and the pytest
plugin. Each module imports its framework inside the functions that need it; the core
modules never import from here."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pycgroup.integrations.ranks import RankReduction, rank_labels, reduce_steps

__all__ = ["RankReduction", "rank_labels", "reduce_steps"]


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: the pytest plugin, loaded into every pytest
    run, is imported through this package (see pycgroup's own __getattr__)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("pycgroup.integrations.ranks"), name)
