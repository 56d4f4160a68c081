"""Many ranks: which rank is this (from the launcher's RANK/LOCAL_RANK/WORLD_SIZE), and
per-rank figures gathered over torch.distributed into min/mean/max and the worst rank,
so that "which rank is being throttled" has an answer on rank 0."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

    from pycgroup.steps import Steps

#: Environment variables set by torchrun, Lightning, accelerate and most launchers.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
#: Columns where the smallest value is the worst (a starved rank uses fewer cores);
#: everywhere else the largest is (time, throttling, stalls, memory).
LOWER_IS_WORSE = frozenset({"cpu_cores_used"})
#: Step-table columns that are times of day, not statistics.
SKIPPED_COLUMNS = frozenset({"start_ns", "end_ns"})


def rank_labels() -> dict[str, int]:
    """Returns {"rank": 0, "local_rank": 0, "world_size": 2} for the variables that are
    set (and are integers); {} outside a distributed launch."""
    labels: dict[str, int] = {}
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().lstrip("-").isdigit():
            labels[name.lower()] = int(value)
    return labels


def _process_group(group: ProcessGroup | None = None) -> ModuleType | None:
    """Returns torch.distributed when a process group of more than one rank exists,
    without importing torch into a program that has not imported it."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist: ModuleType = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist if dist.get_world_size(group) > 1 else None


@dataclass(frozen=True)
class ColumnReduction:
    """One column over the ranks: the statistic of each rank, then min/mean/max over the
    ranks (NaN values left out) and the rank with the worst value."""

    min: float
    mean: float
    max: float
    worst_rank: int | None  # None when no rank has a value
    per_rank: tuple[float, ...]  # the value of each rank, in rank order


@dataclass(frozen=True)
class RankReduction:
    """Per-rank step statistics gathered from every rank (``reduce_steps``)."""

    world_size: int
    steps: tuple[int, ...]  # steps recorded on each rank
    columns: dict[str, ColumnReduction]  # column -> ColumnReduction

    def __getitem__(self, column: str) -> ColumnReduction:
        return self.columns[column]

    def worst(self, column: str) -> int | None:
        """The rank with the worst value of ``column``."""
        return self.columns[column].worst_rank

    def __str__(self) -> str:
        width = max([len(c) for c in self.columns] + [6])
        lines = [f"{'column':<{width}} {'min':>12} {'mean':>12} {'max':>12}  worst rank"]
        for name, c in self.columns.items():
            lines.append(f"{name:<{width}} {c.min:>12.6g} {c.mean:>12.6g} {c.max:>12.6g}  "
                         f"{'-' if c.worst_rank is None else c.worst_rank}")
        return "\n".join(lines)


def _reduce(per_rank: Sequence[Mapping[str, float]]) -> dict[str, ColumnReduction]:
    """per_rank: one {column: float} per rank -> {column: ColumnReduction}."""
    columns: dict[str, ColumnReduction] = {}
    for name in dict.fromkeys(c for values in per_rank for c in values):
        values = np.array([r.get(name, math.nan) for r in per_rank], dtype=np.float64)
        present = ~np.isnan(values)
        if not present.any():
            columns[name] = ColumnReduction(math.nan, math.nan, math.nan, None, tuple(values))
            continue
        pick = np.nanargmin if name.split("/")[-1] in LOWER_IS_WORSE else np.nanargmax
        columns[name] = ColumnReduction(float(np.nanmin(values)), float(np.nanmean(values)),
                                        float(np.nanmax(values)), int(pick(values)),
                                        tuple(float(v) for v in values))
    return columns


def _step_statistics(steps: Steps | Mapping[str, Any]) -> dict[str, float]:
    """Returns {column: mean over the steps} of a step table (Steps or a dict of arrays)."""
    table = steps.to_numpy() if hasattr(steps, "to_numpy") else dict(steps)
    stats: dict[str, float] = {}
    for name, values in table.items():
        if name in SKIPPED_COLUMNS:
            continue
        values = np.asarray(values, dtype=np.float64)
        finite = values[~np.isnan(values)]
        stats[name] = float(finite.mean()) if len(finite) else math.nan
    lengths = {len(v) for v in table.values()}
    stats["steps"] = float(max(lengths, default=0))
    return stats


def reduce_steps(steps: Steps | Mapping[str, Any],
                 group: ProcessGroup | None = None) -> RankReduction:
    """Gathers every rank's step statistics (the mean of each column of its step table)
    over torch.distributed and returns min/mean/max and the worst rank per column.

    A collective: every rank of ``group`` must call it. Without a process group it
    reduces this process alone (world_size 1). Works over gloo (CPU) and NCCL."""
    mine = _step_statistics(steps)
    dist = _process_group(group)
    per_rank: list[Any]  # filled with each rank's dict by all_gather_object
    if dist is None:
        per_rank = [mine]
    else:
        per_rank = [None] * dist.get_world_size(group)
        dist.all_gather_object(per_rank, mine, group=group)
    columns = _reduce(per_rank)
    counts = columns.pop("steps")
    return RankReduction(len(per_rank), tuple(int(v) for v in counts.per_rank), columns)


def across_ranks(metrics: dict[str, float],
                 group: ProcessGroup | None = None) -> dict[str, float]:
    """What the callbacks log: with a process group of several ranks, every rank's
    metrics gathered (a collective: every rank calls it at the same step) and reduced to
    ``name/min``, ``name/mean``, ``name/max`` and ``name/worst_rank``, the same on every
    rank; without one but under a launcher with WORLD_SIZE > 1, this rank's metrics
    named ``rank<R>/name``; otherwise ``metrics`` unchanged."""
    dist = _process_group(group)
    if dist is not None:
        per_rank: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(per_rank, metrics, group=group)
        out: dict[str, float] = {}
        for name, c in _reduce(per_rank).items():
            if c.worst_rank is None:
                continue
            out.update({f"{name}/min": c.min, f"{name}/mean": c.mean, f"{name}/max": c.max,
                        f"{name}/worst_rank": float(c.worst_rank)})
        return out
    labels = rank_labels()
    if labels.get("world_size", 1) > 1 and "rank" in labels:
        return {f"rank{labels['rank']}/{name}": v for name, v in metrics.items()}
    return metrics
