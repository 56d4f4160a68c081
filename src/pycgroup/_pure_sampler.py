"""The pure-Python twin of the native sampling engine: a Python thread, os.pread through
the pure reader, and a numpy ring guarded by a lock. The benchmarks' baseline."""

from __future__ import annotations

import threading
import time
from array import array
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import numpy as np

from pycgroup import process_clock
from pycgroup.errors import CLOSED, SamplerClosed
from pycgroup.formats import MISSING, UNLIMITED

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup._pure import Reader
    from pycgroup.backends import EngineStats
    from pycgroup.gpu import PureGpuGroup

LATENESS_BUCKETS = 10_000


class PureEngine:
    """Same interface as pycgroup._native.Engine."""

    def __init__(self, reader: Reader, capacity: int, period_ns: int,
                 every: Iterable[int] | None = None):
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, not {capacity}")
        self._reader = reader
        self.capacity = capacity
        self.width = reader.ncolumns + 1
        self._rows = np.zeros((capacity, self.width), dtype=np.int64)
        self._row = np.full(self.width, MISSING, dtype=np.int64)
        self._period_ns = period_ns
        self._every = list(every) if every is not None else [1] * len(reader.specs)
        self._lock = threading.Lock()
        self._position = self._read_end = self._dropped = 0
        self._samples = self._overruns = self._read_errors = 0
        self._last_error: Exception | None = None
        self._lateness = np.zeros(LATENESS_BUCKETS + 1, dtype=np.int64)
        self._lateness_max_ns = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # The lifecycle, as in the C core: start/stop/close hold this while they change
        # _thread or _closed; the one stop() that takes the thread joins it.
        self._lifecycle = threading.Lock()
        self._closed = False
        self._forked = False  # in a fork's child, until replace_reader()
        #: As the C engine's: asked by the first sample() in a fork's child to reopen.
        self.on_fork: Callable[[], Callable[[], None] | None] | None = None
        self._gpus: list[PureGpuGroup] = []
        self._gpu_every = 1
        # (clock fields -> row column, divisor) of the two clock groups
        self._clocks: list[tuple[dict[str, int], int]] = []
        # the CPU clock's group alone: read on every tick while a span is open, and by a
        # span whose copied row did not read it (as in the C core)
        self._cpu_clock: dict[str, int] = {}
        self._open_spans = 0
        self._cpu_clock_position = -1  # the newest row that read the CPU clock

    def set_gpus(self, groups: Sequence[PureGpuGroup], every: int) -> None:
        with self._lifecycle:
            if self._closed:
                raise SamplerClosed(CLOSED)
            if self.running:
                raise RuntimeError("cannot change the GPUs of a running sampler")
            self._gpus, self._gpu_every = list(groups), max(1, every)

    def set_process_clock(self, columns: Mapping[str, int], cpu_every: int = 1,
                          rusage_every: int = 1) -> None:
        if self.running:
            raise RuntimeError("cannot change the clocks of a running sampler")
        clock = {field: column + 1 for field, column in columns.items()}
        # Two groups, as in the C core: the CPU clock, and what one getrusage() fills.
        self._cpu_clock = {f: c for f, c in clock.items() if f == "cpu_usec"}
        self._cpu_clock_position = -1
        self._clocks = [(group, max(1, every)) for group, every in (
            (self._cpu_clock, cpu_every),
            ({f: c for f, c in clock.items() if f != "cpu_usec"}, rusage_every)) if group]

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _take_row(self, tick: int | None) -> int:
        now = time.monotonic_ns()
        self._row[0] = now
        due = [i for i, n in enumerate(self._every) if tick is None or tick % n == 0]
        if self._reader.read_sources(self._row[1:], due):
            self._read_errors += len(self._reader.errors())
            self._last_error = self._reader.errors()[-1][1]
        for clock, every in self._clocks:
            if (tick is None or tick % every == 0 or
                    (clock is self._cpu_clock and self._open_spans > 0)):
                process_clock.read_into(clock, self._row)
                if clock is self._cpu_clock:
                    self._cpu_clock_position = self._position
        if tick is None or tick % self._gpu_every == 0:
            for group in self._gpus:
                if group.read_into(self._row[1:]) != 0:
                    self._read_errors += 1
                    self._last_error = group.error()
        if self._position >= self.capacity and self._position - self.capacity >= self._read_end:
            self._dropped += 1
        self._rows[self._position % self.capacity] = self._row
        self._position += 1
        self._samples += 1
        return now

    def sample(self) -> int:
        if self._forked and self.on_fork is not None:
            reopen = self.on_fork()
            if reopen is not None:
                reopen()
        with self._lock:
            if self._closed:
                raise SamplerClosed(CLOSED)
            return self._take_row(None)

    def _run(self, stop: threading.Event) -> None:
        deadline, tick = time.monotonic_ns(), 0
        while not stop.is_set():
            delay = deadline - time.monotonic_ns()
            if delay > 0 and stop.wait(delay / 1e9):
                break
            with self._lock:
                woke = self._take_row(tick)
            tick += 1
            late = max(0, woke - deadline)
            self._lateness[min(late // 1000, LATENESS_BUCKETS)] += 1
            self._lateness_max_ns = max(self._lateness_max_ns, late)
            deadline += self._period_ns
            now = time.monotonic_ns()
            if now >= deadline:
                missed = (now - deadline) // self._period_ns + 1
                self._overruns += missed
                deadline += missed * self._period_ns

    def start(self) -> None:
        with self._lifecycle:
            if self._closed:
                raise SamplerClosed(CLOSED)
            if self._thread is not None:
                return
            self._stop = threading.Event()  # the old thread keeps the set one
            self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                            name="pycgroup-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lifecycle:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._stop.set()  # wakes the thread at once
                thread.join()

    def close(self) -> None:
        """Stops the thread; then waits for a sample() in flight and refuses later ones."""
        self.stop()
        with self._lifecycle:
            with self._lock:
                self._closed = True

    def _newest(self, exact: bool) -> list[int]:
        """Returns [position, row...] of the newest row, or of one read now."""
        with self._lock:
            if self._closed:
                raise SamplerClosed(CLOSED)
            if exact or not self.running or self._position == 0:
                self._take_row(None)
                return [self._position - 1,
                        *self._rows[(self._position - 1) % self.capacity].tolist()]
            position = self._position - 1
            row = self._rows[position % self.capacity].copy()
            fresh = self._cpu_clock_position == position
        if self._cpu_clock and not fresh:  # the row did not read it: read it now, as in C
            process_clock.read_into(self._cpu_clock, row)
        return [position, *row.tolist()]

    def span_opened(self) -> None:
        """As pycgroup._native.Engine.span_opened."""
        with self._lock:
            self._open_spans += 1

    def span_closed(self) -> None:
        """As pycgroup._native.Engine.span_closed."""
        with self._lock:
            self._open_spans -= 1

    def boundary(self, exact: bool) -> bytes:
        """As pycgroup._native.Engine.boundary."""
        return array("q", self._newest(exact)).tobytes()

    def span_end(self, start: bytes, exact: bool, t_min: int, max_gap_ns: int,
                 ws_current: int, ws_inactive: int) -> bytes:
        """As pycgroup._native.Engine.span_end."""
        end = self._newest(exact)
        first, last = array("q", start[:8])[0], end[0]
        ncols = self.width - 1
        peaks, ws, used, gaps = [MISSING] * ncols, MISSING, 0, 0
        with self._lock:
            if first < self._position - self.capacity or last >= self._position:
                used = -1
            else:
                rows = self._rows[np.arange(first, last + 1) % self.capacity]
                gaps = int((np.diff(rows[:, 0]) > max_gap_ns).sum())
                rows = rows[rows[:, 0] >= t_min]
                used = len(rows)
                if ws_current > 0 and ws_inactive > 0 and used:
                    cur, ina = rows[:, ws_current], rows[:, ws_inactive]
                    ok = _present(cur) & _present(ina)
                    if ok.any():
                        ws = int(np.maximum(cur[ok] - ina[ok], 0).max())
                for c in range(ncols):
                    values = rows[:, c + 1]
                    values = values[_present(values)]
                    if len(values):
                        peaks[c] = int(values.max())
                if first <= self._read_end <= last:
                    self._read_end = last + 1
        return array("q", [*end, used, ws, gaps, *peaks]).tobytes()

    def after_fork_in_child(self) -> None:
        """The thread did not survive fork; the lock may have been held by it; the
        reader's files describe the parent until replace_reader()."""
        self._forked = True
        self._thread = None
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()

    def replace_reader(self, reader: Reader) -> None:
        if reader.ncolumns != self._reader.ncolumns:
            raise ValueError(f"the new reader has {reader.ncolumns} columns, the sampler's "
                             f"rows {self._reader.ncolumns}")
        with self._lifecycle, self._lock:  # not while running, nor while a row is read
            if self._closed:
                raise SamplerClosed(CLOSED)
            if self.running:
                raise RuntimeError("cannot replace the reader of a running sampler")
            self._reader = reader
            self._forked = False

    def copy(self, start: int = 0, since_ns: int | None = None,
             last: int | None = None) -> tuple[NDArray[np.int64], int]:
        with self._lock:
            end = self._position
            first = max(start, end - self.capacity, 0)
            if last is not None:
                first = max(first, end - last)
            positions = np.arange(first, end)
            rows = self._rows[positions % self.capacity]
            self._read_end = max(self._read_end, end)
        if since_ns is not None:
            keep = rows[:, 0] >= since_ns
            skip = int(np.argmax(keep)) if keep.any() else len(rows)
            rows, first = rows[skip:], first + skip
        return rows, first

    def _quantile_us(self, q: float) -> float:
        total = self._lateness.sum()
        if total == 0:
            return 0
        bucket = int(np.searchsorted(np.cumsum(self._lateness), int(q * total), side="right"))
        if bucket >= LATENESS_BUCKETS:
            return self._lateness_max_ns / 1000
        return min(bucket + 1, self._lateness_max_ns / 1000)  # the bucket's upper edge

    def stats(self) -> EngineStats:
        return {
            "samples": self._samples,
            "dropped": self._dropped,
            "overruns": self._overruns,
            "read_errors": self._read_errors,
            "last_error": self._last_error,
            "lateness_p50_us": self._quantile_us(0.50),
            "lateness_p99_us": self._quantile_us(0.99),
            "lateness_max_us": self._lateness_max_ns / 1000,
            "position": self._position,
        }


def _present(values: NDArray[np.int64]) -> NDArray[np.bool_]:
    present: NDArray[np.bool_] = (values != MISSING) & (values != UNLIMITED)
    return present
