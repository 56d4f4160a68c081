"""Steps: one row per finished span (or per interval between consecutive marks) with
what the container did in it, as a table of numpy columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol, Sequence, cast

import numpy as np

from pycgroup import catalogue
from pycgroup.formats import MISSING, UNLIMITED

if TYPE_CHECKING:
    from numpy.typing import NDArray


    #: A step table: column name -> one value per step.
    StepTable = dict[str, NDArray[Any]]


@dataclass(frozen=True)
class RowLayout:
    """Where each metric sits in a sampler's rows (index 0 of a row is t_ns)."""

    columns: tuple[str, ...]  # metric names; columns[i] is row index i + 1
    counters: tuple[int, ...]  # row indices of counters
    gauges: tuple[int, ...]  # row indices of gauges
    ws_current: int  # row index of memory.current, 0 when the working set is not sampled
    ws_inactive: int  # row index of memory.stat.inactive_file, or 0
    period_ns: int

    @classmethod
    def of(cls, columns: Sequence[str], period_ns: int) -> "RowLayout":
        counters = tuple(i + 1 for i, n in enumerate(columns)
                         if catalogue.kind(n) == catalogue.COUNTER)
        gauges = tuple(i + 1 for i, n in enumerate(columns)
                       if catalogue.kind(n) != catalogue.COUNTER)
        current, inactive = catalogue.WORKING_SET_INPUTS
        ws = (columns.index(current) + 1, columns.index(inactive) + 1) if (
            current in columns and inactive in columns) else (0, 0)
        return cls(tuple(columns), counters, gauges, ws[0], ws[1], period_ns)

    def index(self, name: str) -> int:
        return self.columns.index(name) + 1 if name in self.columns else 0


@dataclass
class Boundaries:
    """The raw material of a step table, m steps: each step's own interval, the rows
    nearest its start and end (m x width, t_ns first), and its peaks."""

    start_ns: NDArray[np.int64]
    end_ns: NDArray[np.int64]
    start_rows: NDArray[np.int64]
    end_rows: NDArray[np.int64]
    peaks: NDArray[np.int64]  # m x (width - 1), MISSING where no value or rows overwritten
    ws_peak: NDArray[np.int64]  # m, MISSING where unknown
    complete: NDArray[np.bool_]  # bool: rows all intact and no gap between them


def _present(values: NDArray[np.int64]) -> NDArray[np.bool_]:
    present: NDArray[np.bool_] = (values != MISSING) & (values != UNLIMITED)
    return present


def _as_float(values: NDArray[np.int64]) -> NDArray[np.float64]:
    out = values.astype(np.float64)
    out[~_present(values)] = np.nan
    return out


def counter_deltas(start: NDArray[np.int64], end: NDArray[np.int64]) -> NDArray[np.float64]:
    """Returns end - start as float64, NaN where either is missing or the counter went
    back (reset or recreated). Exact across gaps: the counters are cumulative."""
    valid = _present(start) & _present(end) & (end >= start)
    return np.where(valid, (end - np.where(valid, start, 0)).astype(np.float64), np.nan)


def table(b: Boundaries, layout: RowLayout) -> StepTable:
    """Returns the step columns (see Steps) computed from boundaries."""
    out: StepTable = {"start_ns": np.asarray(b.start_ns, dtype=np.int64),
           "end_ns": np.asarray(b.end_ns, dtype=np.int64)}
    out["duration_s"] = (out["end_ns"] - out["start_ns"]) / 1e9
    row_dt = (b.end_rows[:, 0] - b.start_rows[:, 0]) / 1e9
    row_dt = np.where(row_dt > 0, row_dt, np.nan)
    deltas: dict[str, NDArray[np.float64]] = {}
    for i in layout.counters:
        deltas[layout.columns[i - 1]] = counter_deltas(b.start_rows[:, i], b.end_rows[:, i])
    usage = deltas.get("cpu.stat.usage_usec")
    out["cpu_cores_used"] = usage / 1e6 / row_dt if usage is not None else _nan(b)
    throttled, periods = deltas.get("cpu.stat.nr_throttled"), deltas.get("cpu.stat.nr_periods")
    if throttled is not None and periods is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["cpu_throttled_fraction"] = np.where(periods > 0, throttled / periods, np.nan)
    else:
        out["cpu_throttled_fraction"] = _nan(b)
    for name, delta in deltas.items():
        out[name + ".delta"] = delta
        out[name + ".rate"] = delta / row_dt
    for i in layout.gauges:
        out[layout.columns[i - 1] + ".peak"] = _as_float(b.peaks[:, i - 1])
    if layout.ws_current:
        out[catalogue.WORKING_SET + ".peak"] = _as_float(b.ws_peak)
    out["complete"] = np.asarray(b.complete, dtype=bool)
    out["boundary_error_ns"] = np.maximum(np.abs(b.start_rows[:, 0] - out["start_ns"]),
                                          np.abs(b.end_rows[:, 0] - out["end_ns"]))
    return out


def _nan(b: Boundaries) -> NDArray[np.float64]:
    return np.full(len(b.start_ns), np.nan)


class FinishedSpan(Protocol):
    """What from_spans reads of a finished span (a pycgroup.spans.Span)."""

    @property
    def start_ns(self) -> int | None: ...
    @property
    def end_ns(self) -> int | None: ...
    @property
    def _start(self) -> bytes | None: ...
    @property
    def _end(self) -> bytes | None: ...


def from_spans(spans: Sequence[FinishedSpan], layout: RowLayout) -> Boundaries:
    """Returns the boundaries of finished spans (their raw start and end bytes)."""
    n = len(layout.columns)
    # Finished spans: both boundaries are set.
    starts = np.frombuffer(b"".join(cast("Iterable[bytes]", (sp._start for sp in spans))),
                           dtype=np.int64)
    ends = np.frombuffer(b"".join(cast("Iterable[bytes]", (sp._end for sp in spans))),
                         dtype=np.int64)
    starts = starts.reshape(len(spans), n + 2)
    ends = ends.reshape(len(spans), 2 * n + 5)
    used, gaps = ends[:, n + 2], ends[:, n + 4]
    overwritten = used < 0
    peaks = ends[:, n + 5:].copy()
    empty = used == 0  # no row inside a span shorter than a period: the end row's values
    peaks[empty] = ends[empty, 2:n + 2]
    peaks[overwritten] = MISSING
    ws_peak = ends[:, n + 3].copy()
    if layout.ws_current and empty.any():
        cur, ina = ends[empty, layout.ws_current + 1], ends[empty, layout.ws_inactive + 1]
        ok = _present(cur) & _present(ina)
        ws_peak[empty] = np.where(ok, np.maximum(cur - ina, 0), MISSING)
    ws_peak[overwritten] = MISSING
    return Boundaries(
        start_ns=np.array([sp.start_ns for sp in spans], dtype=np.int64),
        end_ns=np.array([sp.end_ns for sp in spans], dtype=np.int64),
        start_rows=starts[:, 1:], end_rows=ends[:, 1:n + 2], peaks=peaks, ws_peak=ws_peak,
        complete=~overwritten & (gaps == 0))


def from_marks(marks_ns: Sequence[int] | NDArray[np.int64], rows: NDArray[np.int64],
               layout: RowLayout) -> Boundaries:
    """Returns the boundaries of the intervals between consecutive marks, from rows
    (a data() copy): each boundary's row is the newest taken at or before it (the
    oldest held, for a mark older than every row: boundary_error_ns then says how far)."""
    marks_ns = np.asarray(marks_ns, dtype=np.int64)
    m = max(len(marks_ns) - 1, 0)
    width = len(layout.columns) + 1
    start_rows = np.full((m, width), MISSING, dtype=np.int64)
    end_rows = start_rows.copy()
    peaks = np.full((m, width - 1), MISSING, dtype=np.int64)
    ws_peak = np.full(m, MISSING, dtype=np.int64)
    complete = np.zeros(m, dtype=bool)
    t = rows[:, 0]
    if len(rows):
        at = np.maximum(np.searchsorted(t, marks_ns, side="right") - 1, 0)
        gap = np.diff(t) > 2 * layout.period_ns
        ws = None
        if layout.ws_current:
            cur, ina = rows[:, layout.ws_current], rows[:, layout.ws_inactive]
            ws = np.where(_present(cur) & _present(ina), np.maximum(cur - ina, 0), MISSING)
        for k in range(m):
            a, b = at[k], at[k + 1]
            start_rows[k], end_rows[k] = rows[a], rows[b]
            inside = slice(a + 1, b + 1) if b > a else slice(b, b + 1)
            block = rows[inside, 1:]
            peaks[k] = np.where(_present(block), block, MISSING).max(axis=0)
            if ws is not None:
                ws_peak[k] = ws[inside].max()
            complete[k] = not gap[a:b].any()
    return Boundaries(marks_ns[:-1] if m else marks_ns[:0], marks_ns[1:],
                      start_rows, end_rows, peaks, ws_peak, complete)


class Steps:
    """A table with one row per step, oldest first.

    Columns: ``start_ns`` and ``end_ns`` (int64, CLOCK_MONOTONIC: the step's own
    interval, [start, end)), ``duration_s``, ``cpu_cores_used`` and
    ``cpu_throttled_fraction``, then for each sampled counter ``<name>.delta`` and
    ``<name>.rate`` (per second), for each gauge ``<name>.peak`` (and
    ``memory.working_set.peak``), all float64 with NaN where unknown; ``complete``
    (bool: every row of the step was still held and none was missing) and
    ``boundary_error_ns`` (how far the rows used lie from the step's boundaries)."""

    def __init__(self, columns: StepTable):
        self._columns = columns

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._columns)

    def __len__(self) -> int:
        return len(self._columns["start_ns"])

    def __getitem__(self, name: str) -> NDArray[Any]:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"no step column {name!r}; columns are {list(self._columns)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __repr__(self) -> str:
        return f"<Steps: {len(self)} rows, {len(self._columns)} columns>"

    def to_numpy(self) -> StepTable:
        """Returns {column: a copy of its numpy array}."""
        return {name: values.copy() for name, values in self._columns.items()}

    def to_pandas(self) -> Any:
        """Returns a DataFrame with one row per step (needs pandas)."""
        from pycgroup._extras import require

        pd = require("pandas", "pandas", "Steps.to_pandas()")
        return pd.DataFrame(self.to_numpy())
