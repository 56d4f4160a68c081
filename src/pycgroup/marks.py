"""Marks: labelled instants on the sampler's clock, kept in a bounded store."""

from __future__ import annotations

import itertools
from collections import deque
from typing import NamedTuple


class Mark(NamedTuple):
    t_ns: int  # CLOCK_MONOTONIC, as time.monotonic_ns()
    label: str


class MarkStore:
    """The newest ``capacity`` marks. Adding one is a deque append (atomic under the
    GIL, so any thread may add); marks pushed out are counted, never silently lost."""

    def __init__(self, capacity: int):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"marks_capacity must be an int >= 1, not {capacity!r}")
        self.capacity = capacity
        self._items: deque[tuple[int, str, int]] = deque(maxlen=capacity)  # (t_ns, label, sequence number)
        # The hot path binds these two once: append((t_ns, label, next(sequence))).
        self.sequence = itertools.count()
        self.append = self._items.append

    def add(self, t_ns: int, label: str) -> None:
        self.append((t_ns, label, next(self.sequence)))

    def marks(self, label: str | None = None) -> list[Mark]:
        """Returns the held marks (with that label), oldest first."""
        items = sorted(self._items)
        return [Mark(t, lab) for t, lab, _ in items if label is None or lab == label]

    @property
    def dropped(self) -> int:
        """How many marks were pushed out of the store by newer ones."""
        items = list(self._items)
        if not items:
            return 0
        return max(seq for _, _, seq in items) + 1 - len(items)
