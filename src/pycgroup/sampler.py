"""Sampler: records cgroup and process counters at kHz rates into a ring buffer, in a
background thread that never takes the GIL (native backend) or on demand."""

from __future__ import annotations

import atexit
import fnmatch
import functools
import math
import os
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

from pycgroup import gpu, plan
from pycgroup import steps as steps_table
from pycgroup.sources import ProcessClock, Source
from pycgroup.cgroup import CGroup, current, missing_reason
from pycgroup.errors import CLOSED, MetricUnavailable, OutOfMemory, SamplerClosed
from pycgroup.limits import limits as read_limits
from pycgroup.marks import Mark, MarkStore
from pycgroup.samples import Origin, Samples
from pycgroup.span_store import SpanStore
from pycgroup.spans import Span, SpanBasis, span_class
from pycgroup.steps import RowLayout, Steps
from pycgroup.summary import LabelSummary, StepSummary

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.backends import EngineLike

#: Metrics sampled when none are named (those this cgroup does not have are left out).
DEFAULT_METRICS = (
    "memory.current", "memory.stat.inactive_file", "memory.events.high", "memory.events.max",
    "memory.events.oom_kill", "cpu.stat.usage_usec", "cpu.stat.user_usec",
    "cpu.stat.system_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
    "cpu.stat.throttled_usec", "cpu.pressure.some.total", "cpu.pressure.full.total",
    "memory.pressure.some.total", "memory.pressure.full.total", "io.pressure.some.total",
    "io.pressure.full.total", "proc.cpu_usec", "proc.utime_usec", "proc.stime_usec",
    "proc.rss_bytes",
)
#: How often the default reads what does not change at kHz (reads a second; the divisor
#: is the tick rate over this, rounded up). Only CPU usage and throttling (cpu.stat; v1's
#: cpuacct.usage and cpu.stat) and memory.current are read on every tick: they move
#: within a step, and each file read costs the thread microseconds on every tick.
#: 100 Hz: this process's clocks (a system call each, no file); while a span is open
#: the thread reads proc.cpu_usec on every tick, so that a step's process CPU is as
#: fresh at its boundaries as cpu.stat, with no system call on the span's path. 10 Hz: every other file: memory.stat (a
#: walk of every counter it prints, several times the cost of memory.current; the kernel
#: itself flushes its counters every 2 s), memory.events and PSI (cumulative, they move
#: slowly), v1's user/system split (files of their own there; on v2 it is in cpu.stat,
#: read every tick), /proc/self/stat (proc.rss_bytes), pids and the host's /proc/meminfo.
#: Counters stay exact over any step: a delta is late by at most its file's period. A
#: file is read at its fastest metric's rate (see default_every for the throttling
#: counters).
DEFAULT_RATE_HZ = {
    "proc.cpu_usec": 100.0, "proc.utime_usec": 100.0, "proc.stime_usec": 100.0,
    "proc.max_rss_bytes": 100.0,
    "memory.stat.*": 10.0, "memory.events.*": 10.0, "*.pressure.*": 10.0,
    "cpu.stat.user_usec": 10.0, "cpu.stat.system_usec": 10.0, "proc.rss_bytes": 10.0,
    "pids.*": 10.0, "host.*": 10.0,
}


#: The CFS bandwidth counters: they move only while a CPU quota applies to the cgroup.
THROTTLING = ("cpu.stat.nr_periods", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec",
              "cpu.stat.nr_bursts", "cpu.stat.burst_usec")


def _samples_of(sampler_plan: plan.Plan, columns: tuple[str, ...], effective_memory: int | None,
                cpu_limit: float | None, period_ns: int, origin: Origin,
                rows: NDArray[np.int64]) -> Samples:
    """Returns Samples of a sampler's rows, with its derived columns computed."""
    return Samples(sampler_plan.with_derived(rows), columns,
                   effective_memory_bytes=effective_memory, cpu_limit_cores=cpu_limit,
                   period_ns=period_ns, origin=origin, derived=tuple(sampler_plan.derived))


def default_every(hz: float = 1000.0, cpu_quota_cores: float | None = None) -> dict[str, int]:
    """Returns the divisors the default uses at hz (DEFAULT_RATE_HZ as every Nth tick): at
    1 kHz 10 and 100. Extend it to change one: ``every={**default_every(hz), "proc.*": 1}``.

    With cpu_quota_cores UNLIMITED (no CPU quota up the cgroup's ancestry) the throttling
    counters cannot move: they are read at 10 Hz too, which saves a file a tick on v1,
    where they are cpu.stat alone (on v2 cpu.stat holds the usage, read every tick). A
    quota set later is still seen, its throttling resolved to 100 ms."""
    rates = dict(DEFAULT_RATE_HZ)
    if cpu_quota_cores is not None and math.isinf(cpu_quota_cores):
        rates.update(dict.fromkeys(THROTTLING, 10.0))
    return {pattern: max(1, math.ceil(hz / rate - 1e-9)) for pattern, rate in rates.items()}


#: NVML calls serialise on the driver's lock and can stall the CUDA launches of the job
#: being watched: GPU metrics are read no faster than this unless "gpu*" in `every` says.
GPU_DEFAULT_HZ = 100.0
MAX_HZ = 100_000.0  # a 10 µs period: the C core's shortest (PCG_PERIOD_MIN_NS)
MIN_HZ = 1 / 3600  # a one-hour period: the C core's longest (PCG_PERIOD_MAX_NS)
MAX_CAPACITY = 2**30

_live_samplers: "weakref.WeakSet[Sampler]" = weakref.WeakSet()


_monotonic_ns = time.monotonic_ns


@dataclass(frozen=True)
class SamplerStats:
    """A sampler's counters (``Sampler.stats``).

    Attributes:
        samples: Rows taken.
        dropped: Rows overwritten before any data() call reached them.
        overruns: Deadlines the thread missed because it was late.
        read_errors: File reads that failed (their columns hold MISSING).
        last_error: The latest failed read's error, or None.
        lateness_p50_us: How late the thread woke after its deadlines (median; also
            ``lateness_p99_us`` and ``lateness_max_us``; the ``period_error_*`` names of
            0.1 are deprecated aliases).
        marks_dropped: Marks pushed out of the bounded mark store by newer ones.
        spans_dropped: Finished spans let go by steps()' store (still in summary())."""

    samples: int  # rows taken
    dropped: int  # rows overwritten before any data() call reached them
    overruns: int  # deadlines the thread missed because it was late
    read_errors: int  # file reads that failed (their columns hold MISSING)
    last_error: Exception | None
    lateness_p50_us: float  # how late the thread woke after its deadlines
    lateness_p99_us: float
    lateness_max_us: float
    marks_dropped: int = 0  # marks pushed out of the bounded mark store by newer ones
    spans_dropped: int = 0  # finished spans let go by steps()' store (still in summary())

    # The names of 0.1, kept for code written against it.
    @property
    def period_error_p50_us(self) -> float:
        return _deprecated("period_error_p50_us", "lateness_p50_us", self.lateness_p50_us)

    @property
    def period_error_p99_us(self) -> float:
        return _deprecated("period_error_p99_us", "lateness_p99_us", self.lateness_p99_us)

    @property
    def period_error_max_us(self) -> float:
        return _deprecated("period_error_max_us", "lateness_max_us", self.lateness_max_us)


def _deprecated(old: str, new: str, value: float) -> float:
    warnings.warn(f"SamplerStats.{old} is deprecated; use SamplerStats.{new}",
                  DeprecationWarning, stacklevel=3)
    return value


def _divisor(every: Mapping[str, int], name: str) -> int:
    """Returns a metric's divisor: the smallest of the patterns matching its name, 1 (every
    tick) when none does. A file is read at its fastest metric's rate."""
    return min((d for pattern, d in every.items() if fnmatch.fnmatchcase(name, pattern)),
               default=1)


def _capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise ValueError(f"capacity must be an int, not {capacity!r}")
    if not 2 <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity must be between 2 and {MAX_CAPACITY} rows, not {capacity}")
    return 1 << (capacity - 1).bit_length()


def _period_ns(hz: float) -> int:
    try:
        hz = float(hz)
    except (TypeError, ValueError):
        raise ValueError(f"hz must be a number, not {hz!r}") from None
    if not (math.isfinite(hz) and MIN_HZ <= hz <= MAX_HZ):
        raise ValueError(f"hz must be between {MIN_HZ:g} (one row an hour) and {MAX_HZ:g}, "
                         f"not {hz}")
    return round(1e9 / hz)


class Sampler:
    """Records metrics into a ring of ``capacity`` rows (rounded up to a power of two).

    ``every`` maps metric-name patterns to divisors: a file holding a matching metric
    is read on every Nth tick (the smallest N of its metrics); between reads its
    columns keep the last value read.

    ``marks_capacity`` bounds the marks kept, ``spans_capacity`` the finished spans
    kept per label for steps(); summary() counts every span regardless."""

    def __init__(self, metrics: str | Iterable[str] | None = None, capacity: int = 65536,
                 hz: float = 1000.0, cgroup: CGroup | None = None, backend: str = "native",
                 every: Mapping[str, int] | None = None, marks_capacity: int = 65536,
                 spans_capacity: int = 65536):
        self.capacity = _capacity(capacity)
        self.period_ns = _period_ns(hz)
        self.hz = 1e9 / self.period_ns
        self.backend = backend
        self.cgroup = cgroup if cgroup is not None else current()
        lim = read_limits(self.cgroup, backend)
        every = (default_every(self.hz, lim.cpu_quota_cores) if every is None
                 else dict(every))
        for pattern, n in every.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"every[{pattern!r}] must be an int >= 1, not {n!r}")
        if metrics is None:
            names = [n for n in DEFAULT_METRICS if _readable(self.cgroup, n)]
        else:
            names = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
            for name in names:
                self.cgroup.resolve(name)  # KeyError for unknown names
        self._plan = plan.build(names, self.cgroup.resolve, backend)
        # Names in row order (files first, then GPUs); no two inputs share a column.
        read = tuple(sorted(self._plan.column, key=self._plan.column.__getitem__))
        assert len(set(self._plan.column.values())) == len(read)
        # data()'s columns: those read, then the metrics computed from them row by row
        # (spans and steps have the columns read: see RowLayout).
        self.columns = read + tuple(self._plan.derived)
        self.unavailable = dict(self._plan.unavailable)
        if metrics is not None:
            self._refuse_unreadable_gpus()
        self._every = self._source_divisors(every)
        self._clock_every = self._clock_divisors(every)
        self.gpu_every = every.get("gpu*", max(1, math.ceil(self.hz / GPU_DEFAULT_HZ)))
        self._engine = self._make_engine()
        self._effective_memory = lim.effective_memory_bytes
        self._cpu_limit = lim.cpu_quota_cores
        #: Where and how rows are recorded, with a CLOCK_REALTIME/CLOCK_MONOTONIC anchor
        #: pair read now: what files, DataFrames and traces need to place the rows.
        self.origin = Origin.of(self.cgroup, self.period_ns, lim)
        self._layout = RowLayout.of(read, self.period_ns)
        self._marks = MarkStore(marks_capacity)
        self._mark_append, self._mark_sequence = self._marks.append, self._marks.sequence
        self._spans = SpanStore(spans_capacity, self._layout)
        self._span = span_class(backend)
        # A span's figures need these, and nothing that leads back to the span (see
        # SpanBasis): Samples are made from the plan and values, not through self.
        self._span_basis = SpanBasis(self._layout, self._effective_memory, functools.partial(
            _samples_of, self._plan, self.columns, self._effective_memory, self._cpu_limit,
            self.period_ns, self.origin))
        if backend == "native":
            from pycgroup._native import Engine, SpanContext

            assert isinstance(self._engine, Engine)
            self._span_context = SpanContext(self._engine, 2 * self.period_ns,
                                             self._layout.ws_current,
                                             self._layout.ws_inactive, self._spans.pending,
                                             self._spans.flush_at, self._spans.flush,
                                             self._span_basis)
        self._forked = False  # set in a fork's child by _after_fork_in_child
        self._fork_lock = threading.Lock()
        # sample() is the engine's own method, with no Python frame in front of the read
        # (a tenth of a one-file sample's cost); the engine asks this sampler to reopen
        # its files in a fork's child, and raises SamplerClosed after close().
        self._engine.on_fork = weakref.WeakMethod(self._check_fork)
        self.sample = self._engine.sample  # type: ignore[method-assign]
        self._closed = False
        _live_samplers.add(self)

    def _refuse_unreadable_gpus(self) -> None:
        """GPU metrics named explicitly must be read: a GPU example left without its GPU
        columns fails later, far from the cause. (cgroup metrics a version lacks are left
        out with their reason in self.unavailable, so one metric list serves v1 and v2.)"""
        gpus = {name: why for name, why in self.unavailable.items() if gpu.NAME.fullmatch(name)}
        if gpus:
            listed = "; ".join(f"{name}: {why}" for name, why in gpus.items())
            raise MetricUnavailable(f"GPU metrics named explicitly cannot be read here "
                                    f"({listed}); leave them out where there is no GPU")

    def _source_divisors(self, every: Mapping[str, int]) -> list[int]:
        """Returns each file's divisor: the smallest of its metrics' (see _divisor),
        those derived from it included."""
        divisors = []
        for spec in self._plan.reader.specs:
            names = [n for n, src in self._plan.sources.items()
                     if getattr(src, "path", None) == spec.path]
            names += [n for n, where in self._plan.derived.items()
                      if set(where.inputs) & set(names)]
            divisors.append(min((_divisor(every, n) for n in names), default=1))
        return divisors

    def _clock_divisors(self, every: Mapping[str, int]) -> tuple[int, int]:
        """Returns the divisors of this process's two clock groups (as files): the CPU
        clock, and the fields one getrusage() call fills."""
        names = {src.field: n for n, src in self._plan.sources.items()
                 if isinstance(src, ProcessClock)}
        cpu, rusage = (min((_divisor(every, names[f]) for f in group if f in names), default=1)
                       for group in (("cpu_usec",), ("utime_usec", "stime_usec", "max_rss_bytes")))
        return cpu, rusage

    def _make_engine(self) -> EngineLike:
        try:
            engine = self._new_engine()
        except MemoryError as e:
            width = self._plan.reader.ncolumns + 1  # the timestamp, then the columns
            raise OutOfMemory(
                f"a ring of {self.capacity} rows of {width} int64 columns "
                f"({self.capacity * width * 8} bytes) could not be allocated; "
                f"ask for a smaller capacity") from e
        engine.set_gpus(self._plan.gpu_groups, self.gpu_every)
        if self._plan.process_clock:
            engine.set_process_clock(self._plan.process_clock, *self._clock_every)
        return engine

    def _new_engine(self) -> EngineLike:
        if self.backend == "native":
            from pycgroup._native import Engine, Reader

            assert isinstance(self._plan.reader, Reader)  # the plan reads through this backend
            return Engine(self._plan.reader, self.capacity, self.period_ns, self._every)
        from pycgroup._pure import Reader as PureReader
        from pycgroup._pure_sampler import PureEngine

        assert isinstance(self._plan.reader, PureReader)
        return PureEngine(self._plan.reader, self.capacity, self.period_ns, self._every)

    def _check_open(self) -> None:
        """Raises SamplerClosed after close(). The engine refuses rows after close too, so a
        close() racing this check from another thread still ends in SamplerClosed."""
        if self._closed:
            raise SamplerClosed(CLOSED)

    def _check_fork(self) -> None:
        """After fork the child reopens its files: /proc/self/stat opened by the parent
        still describes the parent. (A flag, not a getpid() syscall on every sample.) The
        first caller reopens them; a thread calling meanwhile waits, and reads nothing
        through the parent's files."""
        self._check_open()
        if self._forked:
            with self._fork_lock:
                if self._forked:
                    self._plan = plan.build(self._plan.names, self.cgroup.resolve,
                                            self.backend)
                    self._engine.replace_reader(self._plan.reader)
                    self._engine.set_gpus(self._plan.gpu_groups, self.gpu_every)
                    self._forked = False

    # --- taking rows ------------------------------------------------------------------

    def sample(self) -> int:
        """Takes one row now, in this thread; returns its timestamp (CLOCK_MONOTONIC ns)."""
        # An instance calls its engine's sample directly (bound in __init__): the same.
        return self._engine.sample()

    def start(self) -> "Sampler":
        """Starts the background thread (hz rows a second); returns self."""
        self._check_fork()
        self._engine.start()
        return self

    def stop(self) -> None:
        """Stops the background thread and waits for it: it is woken at once, whatever the
        rate. Safe from any thread; a stopped or closed sampler is left as it is."""
        self._engine.stop()

    @property
    def running(self) -> bool:
        return not self._closed and self._engine.running

    @property
    def closed(self) -> bool:
        """Whether close() was called: every other method then raises SamplerClosed."""
        return self._closed

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reading rows -----------------------------------------------------------------

    def data(self, last: int | None = None, since_ns: int | None = None) -> Samples:
        """Returns a copy of the held rows, oldest first: the last ``last`` rows and/or
        those taken at or after ``since_ns``."""
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise ValueError(f"last must be an int >= 0, not {last!r}")
        self._check_open()
        rows, _ = self._engine.copy(0, since_ns, last)
        if since_ns is not None and len(rows) and rows[0, 0] < since_ns:
            rows = rows[rows[:, 0] >= since_ns]
        return self._samples(rows)

    def _samples(self, rows: NDArray[np.int64]) -> Samples:
        return _samples_of(self._plan, self.columns, self._effective_memory,
                           self._cpu_limit, self.period_ns, self.origin, rows)

    def data_from(self, position: int) -> tuple[Samples, int]:
        """Returns (Samples, first): the held rows from ring position ``position`` on
        (row N of the run is at position N), oldest first, and the position of the first
        one. A reader that keeps its own position sees every row once; ``first >
        position`` means the rows in between were overwritten before it got there."""
        self._check_open()
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValueError(f"position must be an int >= 0, not {position!r}")
        rows, first = self._engine.copy(position)
        return self._samples(rows), int(first)

    @property
    def stats(self) -> SamplerStats:
        self._check_open()
        s = self._engine.stats()
        return SamplerStats(s["samples"], s["dropped"], s["overruns"], s["read_errors"],
                            s["last_error"], s["lateness_p50_us"], s["lateness_p99_us"],
                            s["lateness_max_us"], self._marks.dropped, self._spans.dropped)

    # --- marks, spans and steps -------------------------------------------------------

    def mark(self, label: str) -> int:
        """Records a labelled instant (any thread); returns its timestamp, CLOCK_MONOTONIC
        ns. Costs well under a microsecond: no row is read."""
        if self._closed:
            self._check_open()
        t = _monotonic_ns()
        self._mark_append((t, label, next(self._mark_sequence)))  # MarkStore.add, inlined
        return t

    def marks(self, label: str | None = None) -> list[Mark]:
        """Returns the held marks (with that label), oldest first, as Mark(t_ns, label).
        The store keeps the newest ``marks_capacity``; stats.marks_dropped counts the rest."""
        self._check_open()
        return self._marks.marks(label)

    def span(self, label: str, exact: bool = False, after: Span | None = None) -> Span:
        """Returns a context manager measuring the block it wraps (see Span): it copies
        the newest row the thread published at enter and exit (microseconds), or with
        ``exact=True`` (and whenever no thread runs) reads a row itself at each.

        ``after``: a finished span of this sampler; the new span starts at the row that
        one ended at, reading nothing at enter. Consecutive windows chained so share
        their boundary rows: nothing falls between them, and exact ones read one row
        per window."""
        if self._closed or self._forked:  # a fork's child reads through its own files
            self._check_fork()
        if after is None:
            return self._span(self, label, exact)
        return self._span(self, label, exact, after)

    def steps(self, label: str) -> Steps:
        """Returns one row per finished span with this label, the last included, each
        over the span's own [start, end). With no span of that label, one row per
        interval between consecutive marks with it (an open last interval is not a step
        yet). See Steps for the columns."""
        self._check_open()
        spans = self._spans.spans(label)
        if spans:
            bounds = steps_table.from_spans(spans, self._layout)
        else:
            marks = [m.t_ns for m in self.marks(label)]
            rows, _ = self._engine.copy(0, None, None if len(marks) > 1 else 0)
            bounds = steps_table.from_marks(marks, rows, self._layout)
        return Steps(steps_table.table(bounds, self._layout))

    def summary(self, label: str) -> StepSummary:
        """Returns running statistics of every span with this label that finished (kept
        in O(1) memory, so they cover runs far longer than the ring).

        A label used only with mark() has no running statistics (a mark stays under a
        microsecond by reading no row): its summary covers the steps that steps(label)
        gives, the intervals between the marks still held."""
        self._check_open()
        if self._spans.has(label):
            return self._spans.summary(label)
        between_marks = LabelSummary(label)
        steps = self.steps(label)
        if len(steps):
            between_marks.add({name: steps[name] for name in steps.columns})
        return between_marks.result()

    def gpu_history(self, gpu: int = 0) -> dict[str, tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """Returns the driver's own samples of gpu<N> drained so far, oldest first:
        {"power_mw": (t_ns, values), "util.gpu": (t_ns, values)}. NVML keeps these at its
        own rate (often every 10-20 ms), so they give GPU history finer than the rate at
        which GPU metrics are polled. Their timestamps are mapped onto CLOCK_MONOTONIC."""
        self._check_open()
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        for group in self._plan.gpu_groups:
            if group.label == f"gpu{gpu}":
                if not hasattr(group, "history"):
                    return {"power_mw": empty, "util.gpu": empty}
                return {"power_mw": group.history(0), "util.gpu": group.history(1)}
        raise KeyError(f"gpu{gpu} is not sampled")

    def close(self) -> None:
        """Stops sampling and closes the files, after any row being taken in another thread;
        every later call but close() and stop() raises pycgroup.SamplerClosed."""
        self._closed = True
        self._engine.close()  # stops the thread, waits for a sample() in flight
        self._plan.reader.close()


def _readable(cg: CGroup, name: str) -> bool:
    where = cg.resolve(name)
    return isinstance(where, (Source, ProcessClock)) and missing_reason(where) is None


def _stop_all_at_exit() -> None:
    for sampler in list(_live_samplers):
        sampler.stop()  # a closed one is left as it is


def _after_fork_in_child() -> None:
    for sampler in list(_live_samplers):
        sampler._engine.after_fork_in_child()
        sampler._fork_lock = threading.Lock()  # a parent's thread may have held it
        sampler._forked = True


atexit.register(_stop_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
