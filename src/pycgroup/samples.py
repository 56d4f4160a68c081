"""Samples: a consistent copy of a sampler's rows, with vectorised deltas, rates and
throttling figures."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence, overload

import numpy as np

from pycgroup import catalogue, gpu
from pycgroup._extras import require
from pycgroup.formats import MISSING, UNLIMITED

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.cgroup import CGroup
    from pycgroup.limits import Limits

#: Throttling field -> the PSI counter it is the stall fraction of.
PSI_FIELDS = {
    f"psi_{resource}_{line}": f"{resource}.pressure.{line}.total"
    for resource in ("cpu", "memory", "io") for line in ("some", "full")
}


class ClockAnchor(NamedTuple):
    """CLOCK_REALTIME and CLOCK_MONOTONIC read back to back: places monotonic timestamps
    on wall-clock time (valid until the wall clock is stepped)."""

    realtime_ns: int  # time.time_ns()
    monotonic_ns: int  # time.monotonic_ns()

    @overload
    def to_realtime_ns(self, t_ns: int) -> int: ...
    @overload
    def to_realtime_ns(self, t_ns: NDArray[np.int64]) -> NDArray[np.int64]: ...

    def to_realtime_ns(self, t_ns: int | NDArray[np.int64]) -> int | NDArray[np.int64]:
        """Returns CLOCK_MONOTONIC ns (an int or an int64 array) as CLOCK_REALTIME ns."""
        return t_ns - self.monotonic_ns + self.realtime_ns

    @classmethod
    def now(cls) -> "ClockAnchor":
        """Reads both clocks; of a few tries, keeps the pair read closest together and
        pairs the real time with the middle of the monotonic readings around it."""
        best: tuple[int, int, int] | None = None
        for _ in range(5):
            before = time.monotonic_ns()
            real = time.time_ns()
            after = time.monotonic_ns()
            if best is None or after - before < best[0]:
                best = (after - before, real, before + (after - before) // 2)
        assert best is not None  # the loop ran
        return cls(best[1], best[2])


@dataclass(frozen=True)
class Origin:
    """Where and how rows were recorded: what a file needs to describe them."""

    cgroup_mode: str  # "v1", "v2", "hybrid" or "none"
    cgroup_paths: dict[str, str]  # controller (or "unified") -> directory
    pid: int  # the process whose cgroups were sampled
    hostname: str
    period_ns: int  # the sampler's period
    limits: dict[str, Any]  # the Limits fields when the sampler was made
    clock_anchor: ClockAnchor = field(default_factory=ClockAnchor.now)

    @classmethod
    def of(cls, cg: CGroup, period_ns: int, limits: Limits) -> "Origin":
        """Returns the Origin of a sampler of cg (a CGroup) with those Limits."""
        pid = os.getpid() if cg.pid == "self" else int(cg.pid)
        return cls(cg.mode, dict(cg.paths), pid, socket.gethostname(), period_ns,
                   dataclasses.asdict(limits))


@dataclass(frozen=True)
class GpuThrottling:
    """Why one GPU was slowed over a window."""

    gpu: int  # N of gpuN
    # Δviolation_ns / Δt per reason ("power", "thermal", ...): exact at any sampling rate,
    # because the driver's counters are cumulative.
    violation_fraction: dict[str, float | None]
    # The fraction of sampled rows with each clock-event bit set ("sw_power_cap", ...).
    clock_event_fraction: dict[str, float | None]
    average_power_w: float | None  # Δenergy / Δt


@dataclass(frozen=True)
class Throttling:
    """How hard a cgroup pressed on its limits over a window. None: not measurable here.

    Fractions and rates are sums of deltas over sums of elapsed time, taken only over
    intervals where the counter was present and did not go backwards.

    Attributes:
        interval_s: The time the rows span.
        cpu_throttled_fraction: Δnr_throttled / Δnr_periods.
        cpu_throttled_seconds_per_second: Δthrottled_usec / Δt.
        cpu_cores_used: Δusage_usec / Δt.
        cpu_limit_cores: The CPU quota in cores: ``pycgroup.UNLIMITED`` (``math.inf``)
            without a quota, None when it cannot be known.
        psi_cpu_some: PSI: Δtotal / Δt, the fraction of time some (or, for ``_full``, all)
            tasks stalled on the resource; likewise ``psi_cpu_full``, ``psi_memory_some``,
            ``psi_memory_full``, ``psi_io_some`` and ``psi_io_full``.
        memory_high_events: New ``memory.events`` high events.
        memory_max_events: New ``memory.events`` max events (v1: ``memory.failcnt``).
        oom_kills: New OOM kills.
        memory_headroom_bytes: The effective memory limit - the peak working set.
        gpus: A GpuThrottling for each sampled GPU.
        complete: False when rows were missing (a gap: see Samples.gaps) or overwritten,
            so a peak (and the headroom from it) may have been missed. Counter figures
            stay exact."""

    interval_s: float  # time the rows span
    cpu_throttled_fraction: float | None  # Δnr_throttled / Δnr_periods
    cpu_throttled_seconds_per_second: float | None  # Δthrottled_usec / Δt
    cpu_cores_used: float | None  # Δusage_usec / Δt
    cpu_limit_cores: float | None  # the CPU quota in cores (inf: none; None: unknown)
    # PSI: Δtotal / Δt, the fraction of time some (or all) tasks stalled on the resource.
    psi_cpu_some: float | None
    psi_cpu_full: float | None
    psi_memory_some: float | None
    psi_memory_full: float | None
    psi_io_some: float | None
    psi_io_full: float | None
    memory_high_events: int | None
    memory_max_events: int | None
    oom_kills: int | None
    memory_headroom_bytes: int | None  # effective memory limit - peak working set
    gpus: tuple[GpuThrottling, ...] = ()  # GpuThrottling for each sampled GPU
    # False when rows were missing (a gap: see Samples.gaps) or overwritten, so a peak
    # (and the headroom from it) may have been missed. Counter figures stay exact.
    complete: bool = True


class Samples:
    """Rows copied from a sampler, oldest first.

    ``t_ns`` is CLOCK_MONOTONIC in ns, the clock of ``time.monotonic_ns()`` and
    ``time.perf_counter_ns()``. ``s[name]`` is an int64 array in which ``MISSING``
    (-2**63) marks a value that could not be read and ``UNLIMITED`` (2**63-1) "max"."""

    def __init__(self, rows: NDArray[np.int64], columns: Sequence[str], *,
                 effective_memory_bytes: int | None = None,
                 cpu_limit_cores: float | None = None, period_ns: int | None = None,
                 origin: Origin | None = None, derived: Sequence[str] = ()):
        """rows: column 0 is t_ns; column i + 1 holds columns[i]. period_ns: the
        sampling period, which tells gaps apart (None: no gap is ever reported). origin:
        where they were recorded (its clock anchor gives to_pandas() its wall-clock
        column). derived: the columns computed from other columns rather than read from
        a file of their own (a v2 root's memory.current, which has no working set)."""
        self._rows = rows
        self.origin = origin
        self.columns = tuple(columns)
        self.derived = tuple(derived)
        self._index = {name: i + 1 for i, name in enumerate(self.columns)}
        self.effective_memory_bytes = effective_memory_bytes
        self.cpu_limit_cores = cpu_limit_cores
        self.period_ns = period_ns

    def _like(self, rows: NDArray[np.int64]) -> "Samples":
        return Samples(rows, self.columns, effective_memory_bytes=self.effective_memory_bytes,
                       cpu_limit_cores=self.cpu_limit_cores, period_ns=self.period_ns,
                       origin=self.origin, derived=self.derived)

    @property
    def gaps(self) -> NDArray[np.int64]:
        """Indices i (int64) where rows i - 1 and i are more than two sampling periods
        apart: rows are missing there (the thread was stopped or late, or rows were
        dropped). Counter deltas across a gap are still exact; peaks may be missed."""
        if self.period_ns is None or len(self) < 2:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.diff(self.t_ns) > 2 * self.period_ns).astype(np.int64) + 1

    @property
    def t_ns(self) -> NDArray[np.int64]:
        return self._rows[:, 0]

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        # The working set is memory.current's (read from a cgroup's file) less inactive_file;
        # a v2 root's memory.current, derived from /proc/meminfo, has none (see read()).
        return name in self._index or (
            name == catalogue.WORKING_SET and all(i in self._index and i not in self.derived
                                                  for i in catalogue.WORKING_SET_INPUTS))

    def __getitem__(self, name: str) -> NDArray[np.int64]:
        if name in self._index:
            return self._rows[:, self._index[name]]
        if name == catalogue.WORKING_SET and name in self:
            current, inactive = (self[n] for n in catalogue.WORKING_SET_INPUTS)
            bad = (current == MISSING) | (inactive == MISSING)
            return np.where(bad, MISSING, np.maximum(current - np.where(bad, 0, inactive), 0))
        raise KeyError(f"{name!r} was not sampled; columns are {list(self.columns)}")

    def as_float(self, name: str) -> NDArray[np.float64]:
        """Returns the column as float64: missing values are NaN, unlimited ones inf."""
        values = self[name]
        out = values.astype(np.float64)
        out[values == MISSING] = np.nan
        out[values == UNLIMITED] = np.inf
        return out

    def to_numpy(self) -> NDArray[np.int64]:
        """Returns a copy of the rows: column 0 is t_ns, then ``columns`` in order."""
        return self._rows.copy()

    def realtime_ns(self) -> NDArray[np.int64] | None:
        """Returns t_ns on CLOCK_REALTIME (ns since the epoch) through the origin's clock
        anchor, or None when the rows have no origin."""
        if self.origin is None:
            return None
        return self.origin.clock_anchor.to_realtime_ns(self.t_ns)

    def to_pandas(self) -> Any:
        """Returns a DataFrame: ``t_ns`` (int64, CLOCK_MONOTONIC), ``time`` (wall clock,
        datetime64[ns, UTC], NaT without an origin), then one float64 column per metric
        (missing values NaN, unlimited ones inf). ``frame.attrs["units"]`` maps each
        metric to its unit and ``frame.attrs["kinds"]`` to "counter" or "gauge"."""
        pd = require("pandas", "pandas", "Samples.to_pandas()")
        real = self.realtime_ns()
        wall = (pd.to_datetime(real, unit="ns", utc=True) if real is not None
                else pd.Series(pd.NaT, index=range(len(self)), dtype="datetime64[ns, UTC]"))
        data = {"t_ns": self.t_ns.copy(), "time": np.asarray(wall)}
        data.update((name, self.as_float(name)) for name in self.columns)
        frame = pd.DataFrame(data)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        frame.attrs["units"] = {n: _unit(n) for n in self.columns}
        frame.attrs["kinds"] = {n: _kind(n) for n in self.columns}
        return frame

    def to_arrow(self) -> Any:
        """Returns a pyarrow.Table: ``t_ns`` (int64), ``time`` (timestamp[ns, UTC], null
        without an origin), then one int64 column per metric holding the exact values
        (missing values null, unlimited ones 2**63-1). Each metric field's metadata holds
        its ``unit`` and ``kind``."""
        pa = require("pyarrow", "parquet", "Samples.to_arrow()")
        real = self.realtime_ns()
        fields = [pa.field("t_ns", pa.int64(), nullable=False),
                  pa.field("time", pa.timestamp("ns", tz="UTC"))]
        arrays = [pa.array(self.t_ns, pa.int64()),
                  pa.array(real if real is not None else [None] * len(self),
                           pa.timestamp("ns", tz="UTC"))]
        for name in self.columns:
            values = self[name]
            fields.append(pa.field(name, pa.int64(), metadata={
                "unit": _unit(name), "kind": _kind(name)}))
            arrays.append(pa.array(values, pa.int64(), mask=values == MISSING))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _valid_deltas(self, name: str) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                                 NDArray[np.bool_]]:
        """Returns (Δvalue, Δt in s, valid mask) per interval between consecutive rows."""
        values = self[name]
        deltas = np.diff(values)
        dt = np.diff(self.t_ns) / 1e9
        present = (values != MISSING) & (values != UNLIMITED)
        valid = present[1:] & present[:-1] & (dt > 0)
        if catalogue.kind(name) == catalogue.COUNTER:
            valid &= deltas >= 0  # a counter that went back was reset or recreated
        return deltas, dt, valid

    def delta(self, name: str) -> NDArray[np.float64]:
        """Returns the change between consecutive rows (float64, NaN where not measurable:
        a missing value, Δt <= 0, or a counter that went backwards)."""
        deltas, _, valid = self._valid_deltas(name)
        return np.where(valid, deltas, np.nan)

    def rate(self, name: str, window_s: float | None = None) -> NDArray[np.float64]:
        """Returns a counter's change per second up to each row but the first (NaN where
        not measurable). Raises ValueError for a gauge, whose rate means nothing.

        Without a window the rate is raw, between consecutive rows: at kHz a counter
        that the kernel updates in steps (a tick, a CFS period) makes it jump, e.g. far
        beyond the cores there are for one row. With ``window_s`` each value is the
        trailing-window rate: the change over the rows within window_s before the row,
        divided by the time they span."""
        if catalogue.kind(name) != catalogue.COUNTER:
            raise ValueError(f"{name} is a gauge; rate() needs a counter (use delta())")
        deltas, dt, valid = self._valid_deltas(name)
        if window_s is None:
            return np.where(valid, deltas / np.where(valid, dt, 1.0), np.nan)
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, not {window_s!r}")
        change = np.concatenate([[0.0], np.cumsum(np.where(valid, deltas, 0), dtype=np.float64)])
        elapsed = np.concatenate([[0.0], np.cumsum(np.where(valid, dt, 0.0))])
        t = self.t_ns
        first = np.searchsorted(t, t[1:] - int(window_s * 1e9), side="left")
        last = np.arange(1, len(t))
        span = elapsed[last] - elapsed[first]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(span > 0, (change[last] - change[first]) / span, np.nan)

    def resample(self, period_s: float) -> "Samples":
        """Returns rows at a fixed period from the first row's time: each counter's last
        value at or before each boundary, each gauge's maximum over the rows since the
        previous boundary (the last value when no row fell in between)."""
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, not {period_s!r}")
        if len(self) == 0:
            return self._like(self._rows[:0].copy())
        step = max(1, int(round(period_s * 1e9)))
        t = self.t_ns
        bounds = np.arange(t[0], t[-1] + 1, step, dtype=np.int64)
        upto = np.searchsorted(t, bounds, side="right")  # rows[:upto[k]] are <= bounds[k]
        out = self._rows[upto - 1].copy()
        out[:, 0] = bounds
        starts = np.concatenate([[0], upto[:-1]])
        filled = np.flatnonzero(upto > starts)  # bins holding rows; the rest carry the last
        for name, c in self._index.items():
            if catalogue.kind(name) == catalogue.COUNTER:
                continue
            values = self._rows[:upto[-1], c]
            values = np.where(values == UNLIMITED, MISSING, values)  # MISSING is the least
            peaks = np.maximum.reduceat(values, starts[filled])
            keep = peaks != MISSING
            out[filled[keep], c] = peaks[keep]
        return self._like(out)

    def total(self, name: str) -> int | None:
        """Returns the sum of a column's measurable deltas, or None when there is none."""
        if name not in self or len(self) < 2:
            return None
        deltas, _, valid = self._valid_deltas(name)
        return int(deltas[valid].sum()) if valid.any() else None

    def _per_second(self, name: str, scale: float = 1.0) -> float | None:
        if name not in self or len(self) < 2:
            return None
        deltas, dt, valid = self._valid_deltas(name)
        elapsed = dt[valid].sum()
        return float(deltas[valid].sum() * scale / elapsed) if elapsed > 0 else None

    def peak(self, name: str) -> int | None:
        """Returns a column's largest present value, or None."""
        if name not in self:
            return None
        values = self[name]
        present = values[(values != MISSING) & (values != UNLIMITED)]
        return int(present.max()) if len(present) else None

    def throttling(self) -> Throttling:
        """Returns how hard the cgroup pressed on its limits over these rows."""
        throttled = self.total("cpu.stat.nr_throttled")
        periods = self.total("cpu.stat.nr_periods")
        peak_ws = self.peak(catalogue.WORKING_SET)
        headroom = None
        if peak_ws is not None and self.effective_memory_bytes is not None:
            headroom = self.effective_memory_bytes - peak_ws
        return Throttling(
            interval_s=float((self.t_ns[-1] - self.t_ns[0]) / 1e9) if len(self) else 0.0,
            cpu_throttled_fraction=(throttled / periods if throttled is not None and periods
                                    else None),
            cpu_throttled_seconds_per_second=self._per_second("cpu.stat.throttled_usec", 1e-6),
            cpu_cores_used=self._per_second("cpu.stat.usage_usec", 1e-6),
            cpu_limit_cores=self.cpu_limit_cores,
            **{field: self._per_second(name, 1e-6) for field, name in PSI_FIELDS.items()},
            memory_high_events=self.total("memory.events.high"),
            memory_max_events=self.total("memory.events.max"),
            oom_kills=self.total("memory.events.oom_kill"),
            memory_headroom_bytes=headroom,
            gpus=tuple(self._gpu_throttling(n) for n in self._gpus()),
            complete=len(self.gaps) == 0,
        )

    def _gpus(self) -> list[int]:
        return sorted({int(m[1]) for m in map(gpu.NAME.fullmatch, self.columns) if m})

    def _gpu_throttling(self, n: int) -> GpuThrottling:
        prefix = f"gpu{n}."
        violations: dict[str, float | None] = {}
        for metric in gpu.METRICS:
            if metric.startswith("violation.") and prefix + metric in self:
                reason = metric[len("violation."):-len("_ns")]
                violations[reason] = self._per_second(prefix + metric, 1e-9)
        events: dict[str, float | None] = {}
        if prefix + "clock_event_reasons" in self:
            reasons = self[prefix + "clock_event_reasons"]
            present = reasons[reasons != MISSING]
            for name, bit in gpu.CLOCK_EVENT_BITS.items():
                events[name] = float(np.mean((present & bit) != 0)) if len(present) else None
        energy = self._per_second(prefix + "energy_mj", 1e-3)
        return GpuThrottling(n, violations, events, energy)

    def between(self, start_ns: int, end_ns: int) -> "Samples":
        """Returns the rows with start_ns <= t_ns <= end_ns."""
        lo = np.searchsorted(self.t_ns, start_ns, side="left")
        hi = np.searchsorted(self.t_ns, end_ns, side="right")
        return self._like(self._rows[lo:hi])


def _unit(name: str) -> str:
    try:
        return catalogue.unit(name)
    except KeyError:
        return ""  # a column named outside the catalogue (hand-made Samples)


def _kind(name: str) -> str:
    try:
        return catalogue.kind(name)
    except KeyError:
        return ""
