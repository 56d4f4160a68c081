"""StepMeter: what every framework callback shares. It runs a Sampler, counts training
steps with two clock reads each, and turns the rows since the last report into the
metrics the callbacks log. It never raises into a training loop: a failure is logged
once (``logging``, logger ``pycgroup.integrations``) and what it broke is skipped."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, cast

from pycgroup import catalogue
from pycgroup.formats import MISSING, UNLIMITED

if TYPE_CHECKING:
    from pycgroup.sampler import Sampler
    from pycgroup.samples import Samples

log = logging.getLogger("pycgroup.integrations")

#: Logged names (after the prefix) -> (counter, scale): the counter's change over the
#: window per second of it, times scale (µs of CPU or of stall -> s).
RATES = {
    "cpu_cores_used": ("cpu.stat.usage_usec", 1e-6),
    "cpu_throttled_s_per_s": ("cpu.stat.throttled_usec", 1e-6),
    **{f"psi_{r}_{line}": (f"{r}.pressure.{line}.total", 1e-6)
       for r in ("cpu", "memory", "io") for line in ("some", "full")},
}
#: Logged names -> counter whose change over the window is logged.
CHANGES = {"oom_kills": "memory.events.oom_kill"}

_ABSENT = (MISSING, UNLIMITED)

#: Sampling rate of a callback's sampler: counters are cumulative, so each report is
#: exact at any rate (its end is a row taken on the spot); the rate only sets how well
#: peaks (working set) and GPU clock-event fractions are caught.
DEFAULT_HZ = 100.0


class StepMeter:
    """Counts steps and reports cgroup metrics over the time since the previous report.

    ``sampler``: a Sampler to use (not started, stopped or closed by the meter); by
    default the meter makes one over this process's cgroup at ``hz`` and owns it."""

    def __init__(self, sampler: Sampler | None = None, hz: float = DEFAULT_HZ,
                 metrics: str | Iterable[str] | None = None):
        self._given = sampler
        self._hz = hz
        self._metrics = metrics
        self.sampler = sampler
        self._warned: set[str] = set()
        self._measured: set[str] = set()  # metrics reported at least once
        self._read_errors = 0
        self._window_start_ns: int | None = None
        self._steps = 0
        self._step_ns = 0
        self._began_ns: int | None = None
        self.steps_total = 0

    # --- lifecycle (never raises) -----------------------------------------------------

    def start(self) -> bool:
        """Starts sampling (once) and opens a window; returns whether a sampler runs."""
        if self.sampler is None:
            try:
                from pycgroup.sampler import Sampler

                self.sampler = Sampler(self._metrics, hz=self._hz)
            except Exception as e:  # noqa: BLE001 - never into the training loop
                self.warn_once("sampler", "pycgroup: cannot sample this cgroup (%s: %s); "
                               "no pycgroup metrics will be logged", type(e).__name__, e)
                return False
        try:
            if not self.sampler.running:
                self.sampler.start()
        except Exception as e:  # noqa: BLE001
            self.warn_once("start", "pycgroup: the sampler did not start (%s: %s)",
                           type(e).__name__, e)
        self.reset_window()
        return True

    def reset_window(self) -> None:
        """Starts a new reporting window now (a row taken on the spot marks its start)."""
        self._window_start_ns = self._row()
        self._steps = self._step_ns = 0

    def close(self) -> None:
        """Stops the sampler if the meter made it."""
        if self.sampler is not None and self._given is None:
            try:
                self.sampler.close()
            except Exception as e:  # noqa: BLE001
                self.warn_once("close", "pycgroup: closing the sampler failed (%s)", e)
            self.sampler = None

    # --- the hot path: two clock reads a step -----------------------------------------

    def begin(self) -> None:
        self._began_ns = time.monotonic_ns()

    def end(self, steps: int = 1) -> None:
        """Ends the step (or the ``steps`` steps) that ``begin()`` started."""
        if self._began_ns is not None:
            self._step_ns += time.monotonic_ns() - self._began_ns
            self._began_ns = None
        self._steps += steps
        self.steps_total += steps

    # --- reports ----------------------------------------------------------------------

    def collect(self) -> dict[str, float]:
        """Returns {name: float} over the window since the previous collect() and starts
        the next window. Metrics this cgroup cannot measure are left out."""
        out = {"steps": float(self._steps)}
        if self._steps:
            out["step_time_s"] = self._step_ns / self._steps / 1e9
        start = self._window_start_ns
        self._steps = self._step_ns = 0
        if start is None:
            return out
        # None after close(): the AttributeError below is then logged like any failure.
        sampler = cast("Sampler", self.sampler)
        try:
            # The window ends at the thread's newest row (at most a period old), which
            # also starts the next window: nothing falls between two windows, and no
            # file is read here. Without a running thread, a row is taken now.
            rows = sampler.data(since_ns=start) if sampler.running else ()
            if len(rows) < 2:
                end = self._row()
                rows = sampler.data(since_ns=start) if end is not None else ()
            if not len(rows):
                return out
            assert not isinstance(rows, tuple)  # the empty () returned above
            self._window_start_ns = int(rows.t_ns[-1])
        except Exception as e:  # noqa: BLE001
            self.warn_once("data", "pycgroup: reading the sampler's rows failed (%s: %s)",
                           type(e).__name__, e)
            return out
        self._guard(out, "throttling", self._throttling_metrics, rows)
        self._guard(out, "working_set", self._memory_metrics, rows)
        self._guard(out, "lost metrics", lambda out, rows: self._warn_lost(out), rows)
        return out

    def _warn_lost(self, out: dict[str, float]) -> None:
        """Logs once per metric that was measured before and is missing now while the
        sampler's reads failed (a removed cgroup, a permission change). A metric missing
        for want of data (no CFS period elapsed in an idle window) is skipped quietly."""
        missing = self._measured - out.keys()
        self._measured |= out.keys()
        if not missing:
            return
        assert self.sampler is not None  # reports need one
        stats = self.sampler.stats
        errors, self._read_errors = stats.read_errors - self._read_errors, stats.read_errors
        for name in sorted(missing) if errors else ():
            self.warn_once("lost:" + name, "pycgroup: %s could not be measured (%d read "
                           "errors, the last: %s); skipped while it cannot", name,
                           stats.read_errors, stats.last_error)

    def _throttling_metrics(self, out: dict[str, float], rows: Samples) -> None:
        """Counters from the window's first and last rows alone (a few µs, where
        Samples.throttling() over every row costs hundreds): exact for cumulative
        counters; a counter missing at either end or gone backwards is left out."""
        if len(rows) < 2:
            return
        elapsed = (int(rows.t_ns[-1]) - int(rows.t_ns[0])) / 1e9
        change: dict[str, int] = {}
        for name in rows.columns:
            column = rows[name]
            first, last = int(column[0]), int(column[-1])
            if first not in _ABSENT and last not in _ABSENT and last >= first:
                change[name] = last - first
        for name, (counter, scale) in RATES.items():
            if counter in change and elapsed > 0:
                out[name] = change[counter] * scale / elapsed
        for name, counter in CHANGES.items():
            if counter in change:
                out[name] = float(change[counter])
        periods = change.get("cpu.stat.nr_periods")
        if periods and "cpu.stat.nr_throttled" in change:
            out["cpu_throttled_fraction"] = change["cpu.stat.nr_throttled"] / periods
        if any(name.startswith("gpu") for name in rows.columns):
            self._gpu_metrics(out, rows)

    def _gpu_metrics(self, out: dict[str, float], rows: Samples) -> None:
        for g in rows.throttling().gpus:
            for reason, fraction in g.violation_fraction.items():
                if fraction is not None:
                    out[f"gpu{g.gpu}_violation_{reason}"] = float(fraction)

    def _memory_metrics(self, out: dict[str, float], rows: Samples) -> None:
        peak = rows.peak(catalogue.WORKING_SET)
        if peak is None:
            return
        out["memory_working_set_bytes"] = float(peak)
        if rows.effective_memory_bytes:
            out["memory_working_set_fraction"] = peak / rows.effective_memory_bytes

    def _guard(self, out: dict[str, float], what: str,
               compute: Callable[[dict[str, float], Samples], None], rows: Samples) -> None:
        try:
            compute(out, rows)
        except Exception as e:  # noqa: BLE001
            self.warn_once(what, "pycgroup: computing %s failed (%s: %s); skipped",
                           what, type(e).__name__, e)

    def _row(self) -> int | None:
        """Takes a row now; returns its time, or None when there is no sampler."""
        if self.sampler is None:
            return None
        try:
            return self.sampler.sample()
        except Exception as e:  # noqa: BLE001
            self.warn_once("sample", "pycgroup: taking a row failed (%s: %s)",
                           type(e).__name__, e)
            return None

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Logs a warning the first time ``key`` fails, and only then."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {prefix + name: value for name, value in metrics.items()}
