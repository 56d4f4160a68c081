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
    eighth more, or 1,024, so that trimming is amortised O(1)); spans let go are counted in
    ``dropped``, and every span is in its label's summary whether kept or not.

    A finished span is only appended to ``pending`` (from C, for native spans: no Python
    runs at a span's exit); the pending spans are sorted into their labels when
    ``pending`` reaches ``flush_at`` spans (``flush()``), and before any question."""

    def __init__(self, capacity: int, layout: RowLayout):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"spans_capacity must be an int >= 1, not {capacity!r}")
        self.capacity = capacity
        # An eighth more, at most 1,024: the spans a trim lets go are folded into the
        # summary then (about 3 µs a span), so a long run's trims stall a span's exit
        # for about 3 ms each, not for 27 ms every 8,192 steps.
        self._limit = capacity + min(max(1, capacity // 8), 1024)
        self._layout = layout
        self._labels: dict[str, _Label] = {}
        self._lock = threading.Lock()
        self._dropped = 0
        self.pending: list[Span] = []
        self.flush_at = min(self._limit, 1024)

    def add(self, span: Span) -> None:
        """Keeps a finished span (what the C core does for native spans)."""
        self.pending.append(span)
        if len(self.pending) >= self.flush_at:
            self.flush()

    def flush(self) -> None:
        """Sorts the pending spans into their labels, trimming each to its bound."""
        with self._lock:
            # Other threads may append meanwhile: take only what is there now.
            count = len(self.pending)
            batch = self.pending[:count]
            del self.pending[:count]
            touched = set()
            for span in batch:
                entry = self._labels.get(span.label)
                if entry is None:
                    entry = self._labels[span.label] = _Label(span.label)
                entry.items.append(span)
                touched.add(entry)
            for entry in touched:
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
        """Lets the oldest spans beyond capacity go. Called with the lock held."""
        excess = len(entry.items) - self.capacity
        if excess <= 0:
            return
        self._fold(entry)
        del entry.items[:excess]
        entry.folded -= excess
        self._dropped += excess

    @property
    def dropped(self) -> int:
        self.flush()
        return self._dropped

    def spans(self, label: str) -> list[Span]:
        """Returns the kept finished spans with this label, oldest first."""
        self.flush()
        entry = self._labels.get(label)
        return list(entry.items) if entry is not None else []

    def has(self, label: str) -> bool:
        """Returns True once a span with this label has finished."""
        self.flush()
        return label in self._labels

    def summary(self, label: str) -> StepSummary:
        self.flush()
        entry = self._labels.get(label)
        if entry is None:
            return LabelSummary(label).result()
        with self._lock:
            self._fold(entry)
        return entry.summary.result()
