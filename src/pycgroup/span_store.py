"""The finished spans a sampler keeps for steps(), per label and bounded, and the
running summary every finished span is folded into before it is let go."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pycgroup import steps as steps_table
from pycgroup.summary import LabelSummary, StepSummary

if TYPE_CHECKING:
    from pycgroup.spans import Span
    from pycgroup.steps import RowLayout


class _Label:
    __slots__ = ("items", "folded", "summary")

    def __init__(self, label: str):
        self.items: list[Span] = []  # finished spans, oldest first
        self.folded = 0  # items[:folded] are counted in summary
        self.summary = LabelSummary(label)


class SpanStore:
    """Keeps at least the newest ``capacity`` finished spans of each label (at most an
    eighth more, so that trimming is amortised O(1)); spans let go are counted in
    ``dropped``, and every span is in its label's summary whether kept or not."""

    def __init__(self, capacity: int, layout: RowLayout):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"spans_capacity must be an int >= 1, not {capacity!r}")
        self.capacity = capacity
        self._limit = capacity + max(1, capacity // 8)
        self._layout = layout
        self._labels: dict[str, _Label] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, span: Span) -> None:
        """Keeps a finished span (the hot path: a dict lookup and a list append)."""
        entry = self._labels.get(span.label)
        if entry is None:
            with self._lock:
                entry = self._labels.setdefault(span.label, _Label(span.label))
        entry.items.append(span)
        if len(entry.items) >= self._limit:
            self._trim(entry)

    def _fold(self, entry: _Label) -> None:
        """Counts the spans not yet in the summary. Called with the lock held."""
        pending = entry.items[entry.folded:]
        if pending:
            entry.summary.add(steps_table.table(steps_table.from_spans(pending, self._layout),
                                                self._layout))
            entry.folded += len(pending)

    def _trim(self, entry: _Label) -> None:
        with self._lock:
            excess = len(entry.items) - self.capacity
            if excess <= 0:
                return
            self._fold(entry)
            del entry.items[:excess]
            entry.folded -= excess
            self.dropped += excess

    def spans(self, label: str) -> list[Span]:
        """Returns the kept finished spans with this label, oldest first."""
        entry = self._labels.get(label)
        return list(entry.items) if entry is not None else []

    def has(self, label: str) -> bool:
        """Returns True once a span with this label has finished."""
        return label in self._labels

    def summary(self, label: str) -> StepSummary:
        entry = self._labels.get(label)
        if entry is None:
            return LabelSummary(label).result()
        with self._lock:
            self._fold(entry)
        return entry.summary.result()

    def labels(self) -> list[str]:
        return list(self._labels)
