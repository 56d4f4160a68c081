"""A streaming quantile sketch with bounded relative error, in bounded memory.

Values are counted in logarithmic buckets: bucket i holds the values in
(gamma**(i-1), gamma**i] with gamma = (1 + alpha) / (1 - alpha), and a quantile is
answered with the bucket's midpoint 2 * gamma**i / (gamma + 1), which is within a
relative error alpha of every value in the bucket (Masson, Rim and Lee, "DDSketch: a
fast and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019).
Zeros (and values below ``min_value``) have a bucket of their own. Memory is at most
``max_buckets`` buckets whatever the number of values: past that, the lowest buckets
are merged, which only coarsens the lowest quantiles."""

from __future__ import annotations

import math

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class QuantileSketch:
    def __init__(self, alpha: float = 0.01, max_buckets: int = 2048, min_value: float = 1e-12):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
        self.alpha = alpha
        self.max_buckets = max_buckets
        self.min_value = min_value
        self._gamma = (1 + alpha) / (1 - alpha)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}  # bucket index -> count
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.max: float | None = None

    def add(self, value: float) -> None:
        """Counts one value; NaN is ignored, negative values count as zero."""
        self.add_many(np.array([value], dtype=np.float64))

    def add_many(self, values: NDArray[Any]) -> None:
        """Counts every finite value of an array (NaN and inf are ignored)."""
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        self.count += len(values)
        self.sum += float(values.sum())
        top = float(values.max())
        self.max = top if self.max is None else max(self.max, top)
        positive = values[values > self.min_value]
        self.zeros += len(values) - len(positive)
        if len(positive):
            index = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64)
            buckets, counts = np.unique(index, return_counts=True)
            for b, c in zip(buckets.tolist(), counts.tolist()):
                self._buckets[b] = self._buckets.get(b, 0) + c
            if len(self._buckets) > self.max_buckets:
                self._collapse_lowest()

    def _collapse_lowest(self) -> None:
        order = sorted(self._buckets)
        excess = order[:len(order) - self.max_buckets + 1]
        into = order[len(excess)]
        self._buckets[into] += sum(self._buckets.pop(b) for b in excess)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Returns the q-quantile (the value of rank floor(q * (count - 1)) in sorted
        order, to within a relative error alpha), or None when nothing was counted."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be between 0 and 1, not {q}")
        if self.count == 0:
            return None
        assert self.max is not None  # set by the first value counted
        rank = math.floor(q * (self.count - 1))
        if rank == self.count - 1:
            return self.max
        seen = self.zeros
        if rank < seen:
            return 0.0
        for b in sorted(self._buckets):
            seen += self._buckets[b]
            if rank < seen:
                return min(2 * self._gamma ** b / (self._gamma + 1), self.max)
        return self.max

    def __len__(self) -> int:
        """How many buckets are held (the memory used, which stays bounded)."""
        return len(self._buckets) + 1
