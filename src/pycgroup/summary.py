"""Running per-label step statistics in O(1) memory: count, total, mean, p50/p90/p99 and
max of duration, cores used, throttled fraction and peak working set."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pycgroup.sketch import QuantileSketch

if TYPE_CHECKING:
    from pycgroup.steps import StepTable


@dataclass(frozen=True)
class Distribution:
    """How one figure was distributed over the steps that had it (None when none did).
    Quantiles are within 1% of the exact ones (see pycgroup.sketch); mean and max are
    exact."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, sketch: QuantileSketch) -> "Distribution":
        return cls(sketch.count, sketch.mean, sketch.quantile(0.5), sketch.quantile(0.9),
                   sketch.quantile(0.99), sketch.max)


@dataclass(frozen=True)
class StepSummary:
    """Statistics of every span with one label that finished, kept as they finish."""

    label: str
    count: int
    total_s: float  # the spans' durations added up
    duration_s: Distribution
    cpu_cores_used: Distribution
    cpu_throttled_fraction: Distribution
    peak_working_set_bytes: Distribution


#: StepSummary field -> the Steps column it summarises.
FIGURES = {
    "duration_s": "duration_s",
    "cpu_cores_used": "cpu_cores_used",
    "cpu_throttled_fraction": "cpu_throttled_fraction",
    "peak_working_set_bytes": "memory.working_set.peak",
}


class LabelSummary:
    """The sketches of one label, fed with step tables (any number of rows at once)."""

    def __init__(self, label: str):
        self.label = label
        self.count = 0
        self.total_s = 0.0
        self._sketches = {field: QuantileSketch() for field in FIGURES}
        self._lock = threading.Lock()

    def add(self, columns: StepTable) -> None:
        """Counts each row of a step table (a dict of numpy columns)."""
        with self._lock:
            self.count += len(columns["duration_s"])
            self.total_s += float(columns["duration_s"].sum())
            for field, column in FIGURES.items():
                if column in columns:
                    self._sketches[field].add_many(columns[column])

    def result(self) -> StepSummary:
        with self._lock:
            return StepSummary(self.label, self.count, self.total_s,
                               **{f: Distribution.of(s) for f, s in self._sketches.items()})
