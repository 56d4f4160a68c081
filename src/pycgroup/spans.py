"""Spans: ``with sampler.span("step") as sp:`` measures what the container did while the
block ran, at a cost of microseconds.

On enter and on exit the span copies the newest row the sampling thread published
(seqlock-consistent, O(columns), no file read, no numpy); on exit the C core also folds
the rows taken inside the span into each gauge's peak. Everything else (deltas, rates,
Throttling) is computed from those two rows on first access. With ``exact=True``, or
when no thread is running, the span reads a row itself at enter and at exit instead."""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Protocol, TypedDict

from pycgroup.errors import SpanNotFinished
from pycgroup.formats import MISSING, UNLIMITED

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from typing_extensions import Self

    from pycgroup.backends import EngineLike
    from pycgroup.samples import Samples, Throttling
    from pycgroup.steps import RowLayout


class _Decoded(TypedDict, total=False):
    """What a finished span computes on first access."""

    delta: dict[str, int | None]
    rates: dict[str, float | None]
    peak: dict[str, int | None]
    complete: bool
    rows: tuple[list[int], list[int]]
    boundary_error_ns: int
    throttling: Throttling

_monotonic_ns = time.monotonic_ns


class SpanSink(Protocol):
    """Where a finished span goes (a SpanStore)."""

    def add(self, span: Span) -> None: ...


class SpanBasis:
    """What a finished span needs of its sampler to compute its figures: the row layout,
    the effective memory limit, and how to make Samples of rows. It holds nothing that
    leads back to the spans (not the sampler, nor its store): a span can then stay out
    of the garbage collector's reach (see _native.SpanCore), which in a process of a
    million objects (torch) would otherwise re-examine every kept span in each full
    collection that the spans themselves set off."""

    __slots__ = ("layout", "effective_memory", "samples")

    def __init__(self, layout: RowLayout, effective_memory: int | None,
                 samples: Callable[[NDArray[np.int64]], Samples]):
        self.layout = layout
        self.effective_memory = effective_memory
        self.samples = samples


class SpanOwner(Protocol):
    """What a span uses of the Sampler that made it: the basis for its figures, and
    while it is open (the pure twin), the engine and the store it goes to."""

    @property
    def _span_basis(self) -> SpanBasis: ...
    @property
    def _engine(self) -> EngineLike: ...
    @property
    def _spans(self) -> SpanSink: ...


def _value(v: int) -> int | None:
    return None if v == MISSING or v == UNLIMITED else v


class Span:
    """A measured block. After exit (None before):

    - ``start_ns``, ``end_ns``: the block's own boundaries (CLOCK_MONOTONIC ns);
      ``duration_s``.
    - ``delta``: counter -> its change between the rows at the boundaries (exact even
      across a gap: counters are cumulative); ``rates``: counter -> change per second.
    - ``peak``: gauge -> its largest value over the rows taken inside the span (the row
      at exit when the span was shorter than a period); None when those rows were
      overwritten in the ring before the span ended.
    - ``throttling``: the Throttling of the span.
    - ``complete``: False when rows inside were overwritten or missing (a gap), so a peak
      may have been missed.
    - ``boundary_error_ns``: how far the rows used lie from start_ns and end_ns (at most
      about one sampling period while the thread runs; 0 with exact=True).

    A Span holds two rows' worth of bytes, never a ring-sized array. The boundaries are
    taken by the backend's span class (``_native.SpanCore`` in C, PureSpan here); the
    figures below are computed from them on first access."""

    # The attributes below are the backend class's (the C core's fields, or PureSpan's
    # slots): a mixin adds none, so that it can sit beside a C base. (Hidden from mypy,
    # which would read the empty __slots__ as forbidding those attributes.)
    if not TYPE_CHECKING:
        __slots__ = ()

    label: str
    exact: bool
    start_ns: int | None
    end_ns: int | None
    _basis: SpanBasis
    _start: bytes | None  # int64 [position, t_ns, columns...], see Engine.boundary
    _end: bytes | None  # the same, then [rows, working-set peak, gaps, peaks...]
    _cache: _Decoded | None

    if TYPE_CHECKING:  # provided by the backend's class
        def __init__(self, sampler: SpanOwner, label: str, exact: bool = False,
                     after: Span | None = None) -> None: ...
        def __enter__(self) -> Self: ...
        def __exit__(self, *exc: object) -> None: ...

    def __repr__(self) -> str:
        if self._end is None:
            return f"<Span {self.label!r} open>"
        return f"<Span {self.label!r} {self.duration_s:.6f} s>"

    # --- computed on first access ---------------------------------------------------

    def _decoded(self) -> _Decoded:
        if self._cache is None:
            if self._end is None:
                raise SpanNotFinished(f"span {self.label!r} has not finished: its figures "
                                      f"are known once its block has ended")
            assert self._start is not None and self.start_ns is not None and self.end_ns is not None
            layout = self._basis.layout
            n = len(layout.columns)
            a = memoryview(self._start).cast("q").tolist()[1:]
            b = memoryview(self._end).cast("q").tolist()[1:]
            used, ws_peak, gaps, peaks = b[n + 1], b[n + 2], b[n + 3], b[n + 4:]
            end_row = b[:n + 1]
            dt = (end_row[0] - a[0]) / 1e9
            delta: dict[str, int | None] = {}
            rates: dict[str, float | None] = {}
            peak: dict[str, int | None] = {}
            for i in layout.counters:
                x, y = _value(a[i]), _value(end_row[i])
                d = y - x if x is not None and y is not None and y >= x else None
                delta[layout.columns[i - 1]] = d
                rates[layout.columns[i - 1]] = d / dt if d is not None and dt > 0 else None
            if used == 0:  # no row inside: the newest row at exit stands for the span
                peaks = end_row[1:]
                if layout.ws_current:
                    cur, ina = _value(end_row[layout.ws_current]), _value(end_row[layout.ws_inactive])
                    ws_peak = max(cur - ina, 0) if cur is not None and ina is not None else MISSING
            for i in layout.gauges:
                peak[layout.columns[i - 1]] = None if used < 0 else _value(peaks[i - 1])
            if layout.ws_current:
                from pycgroup import catalogue
                peak[catalogue.WORKING_SET] = None if used < 0 else _value(ws_peak)
            self._cache = {"delta": delta, "rates": rates, "peak": peak,
                           "complete": used >= 0 and gaps == 0, "rows": (a, end_row),
                           "boundary_error_ns": max(abs(a[0] - self.start_ns),
                                                    abs(end_row[0] - self.end_ns))}
        return self._cache

    @property
    def duration_s(self) -> float | None:
        if self.end_ns is None:
            return None
        assert self.start_ns is not None  # a span ends after it starts
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def delta(self) -> dict[str, int | None]:
        return self._decoded()["delta"]

    @property
    def rates(self) -> dict[str, float | None]:
        return self._decoded()["rates"]

    @property
    def peak(self) -> dict[str, int | None]:
        return self._decoded()["peak"]

    @property
    def complete(self) -> bool:
        return self._decoded()["complete"]

    @property
    def boundary_error_ns(self) -> int:
        return self._decoded()["boundary_error_ns"]

    @property
    def throttling(self) -> Throttling:
        """The span's Throttling: counter figures between its boundary rows, the memory
        headroom from its peak working set."""
        decoded = self._decoded()
        if "throttling" not in decoded:
            import numpy as np

            from pycgroup import catalogue

            basis = self._basis
            rows = np.array(decoded["rows"], dtype=np.int64)
            result = basis.samples(rows).throttling()
            ws = decoded["peak"].get(catalogue.WORKING_SET)
            headroom = (basis.effective_memory - ws
                        if ws is not None and basis.effective_memory is not None else None)
            decoded["throttling"] = replace(result, memory_headroom_bytes=headroom,
                                            complete=decoded["complete"])
        return decoded["throttling"]


class PureSpan(Span):
    """The pure-Python twin of ``_native.SpanCore``: the same boundaries, taken through
    the pure engine's boundary() and span_end()."""

    __slots__ = ("label", "exact", "start_ns", "end_ns", "_basis", "_sampler", "_start",
                 "_end", "_cache", "_sync", "_counted", "_after", "__weakref__")

    def __init__(self, sampler: SpanOwner, label: str, exact: bool = False,
                 after: Span | None = None):
        self._counted = False  # counted open by the engine (see Engine.span_opened)
        basis = sampler._span_basis
        if after is not None and (after._end is None or after._basis is not basis):
            raise ValueError(f"after= takes a finished span of the same sampler, not "
                             f"{after!r}")
        self._basis = basis
        self._sampler: SpanOwner | None = sampler  # until the span ends, as in C
        self.label = label
        self.exact = exact
        self._after = after
        self.start_ns = self.end_ns = None
        self._start = self._end = self._cache = None
        self._sync = exact

    def __del__(self) -> None:
        if getattr(self, "_counted", False) and self._sampler is not None:
            self._sampler._engine.span_closed()  # entered and never exited

    def __enter__(self) -> Self:
        if self._sampler is None:
            raise RuntimeError(f"span {self.label!r} has ended: a span is entered once")
        engine = self._sampler._engine
        # Without a running thread the newest row may be old: read one now instead.
        self._sync = sync = self.exact or not engine.running
        if not sync and not self._counted:
            engine.span_opened()
            self._counted = True
        after, self._after = self._after, None  # chained windows must not keep each other
        if after is not None:  # its end row is this span's start: no read
            assert after._end is not None
            self._start = after._end[:8 * (engine.width + 1)]
            self.start_ns = after.end_ns
            return self
        self.start_ns = _monotonic_ns()
        self._start = engine.boundary(sync)
        if sync:  # the row read at enter is the boundary
            self.start_ns = int.from_bytes(self._start[8:16], "little", signed=True)
        return self

    def __exit__(self, *exc: object) -> None:
        sampler = self._sampler
        if sampler is None or self._start is None or self.start_ns is None:
            raise RuntimeError(f"span {self.label!r} was never entered")
        layout = self._basis.layout
        try:
            self._end = sampler._engine.span_end(self._start, self._sync, self.start_ns,
                                                 2 * layout.period_ns, layout.ws_current,
                                                 layout.ws_inactive)
        finally:
            if self._counted:
                sampler._engine.span_closed()
                self._counted = False
        self.end_ns = _monotonic_ns()
        if self._sync:
            self.end_ns = int.from_bytes(self._end[8:16], "little", signed=True)
        self._sampler = None  # the store it goes to must not lead back to it
        sampler._spans.add(self)


@functools.cache
def span_class(backend: str) -> type[Span]:
    """Returns the class whose instances Sampler.span() returns on this backend."""
    if backend == "native":
        from pycgroup._native import SpanCore

        class NativeSpan(Span, SpanCore):
            __slots__ = ()

        NativeSpan.__qualname__ = "NativeSpan"  # as if defined at module level
        return NativeSpan
    return PureSpan
