"""What puts pycgroup inside other programs: training-framework callbacks and the pytest
plugin. Each module imports its framework inside the functions that need it; the core
modules never import from here."""

from pycgroup.integrations.ranks import RankReduction, rank_labels, reduce_steps

__all__ = ["RankReduction", "rank_labels", "reduce_steps"]
