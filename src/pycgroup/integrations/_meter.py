"""StepMeter: what every framework callback shares. It runs a Sampler, counts training
steps with two clock reads each, and turns the rows since the last report into the
metrics the callbacks log. It never raises into a training loop: a failure is logged
once (``logging``, logger ``pycgroup.integrations``) and what it broke is skipped."""

from __future__ import annotations

import logging
import time

from pycgroup import catalogue

log = logging.getLogger("pycgroup.integrations")

#: Logged names (after the prefix) -> Throttling field they come from.
THROTTLING_METRICS = {
    "cpu_cores_used": "cpu_cores_used",
    "cpu_throttled_fraction": "cpu_throttled_fraction",
    "cpu_throttled_s_per_s": "cpu_throttled_seconds_per_second",
    "psi_cpu_some": "psi_cpu_some",
    "psi_cpu_full": "psi_cpu_full",
    "psi_memory_some": "psi_memory_some",
    "psi_memory_full": "psi_memory_full",
    "psi_io_some": "psi_io_some",
    "psi_io_full": "psi_io_full",
    "oom_kills": "oom_kills",
}

#: Sampling rate of a callback's sampler: counters are cumulative, so each report is
#: exact at any rate (its end is a row taken on the spot); the rate only sets how well
#: peaks (working set) and GPU clock-event fractions are caught.
DEFAULT_HZ = 100.0


class StepMeter:
    """Counts steps and reports cgroup metrics over the time since the previous report.

    ``sampler``: a Sampler to use (not started, stopped or closed by the meter); by
    default the meter makes one over this process's cgroup at ``hz`` and owns it."""

    def __init__(self, sampler=None, hz: float = DEFAULT_HZ, metrics=None):
        self._given = sampler
        self._hz = hz
        self._metrics = metrics
        self.sampler = sampler
        self._warned: set = set()
        self._measured: set = set()  # metrics reported at least once
        self._read_errors = 0
        self._window_start_ns = None
        self._steps = 0
        self._step_ns = 0
        self._began_ns = None
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

    def collect(self) -> dict:
        """Returns {name: float} over the window since the previous collect() and starts
        the next window. Metrics this cgroup cannot measure are left out."""
        out = {"steps": float(self._steps)}
        if self._steps:
            out["step_time_s"] = self._step_ns / self._steps / 1e9
        start = self._window_start_ns
        end = self._row()
        self._window_start_ns = end
        self._steps = self._step_ns = 0
        if start is None or end is None:
            return out
        try:
            rows = self.sampler.data(since_ns=start).between(start, end)
        except Exception as e:  # noqa: BLE001
            self.warn_once("data", "pycgroup: reading the sampler's rows failed (%s: %s)",
                           type(e).__name__, e)
            return out
        self._guard(out, "throttling", self._throttling_metrics, rows)
        self._guard(out, "working_set", self._memory_metrics, rows)
        self._guard(out, "lost metrics", lambda out, rows: self._warn_lost(out), rows)
        return out

    def _warn_lost(self, out: dict) -> None:
        """Logs once per metric that was measured before and is missing now while the
        sampler's reads failed (a removed cgroup, a permission change). A metric missing
        for want of data (no CFS period elapsed in an idle window) is skipped quietly."""
        stats = self.sampler.stats
        errors, self._read_errors = stats.read_errors - self._read_errors, stats.read_errors
        for name in self._measured - out.keys() if errors else ():
            self.warn_once("lost:" + name, "pycgroup: %s could not be measured (%d read "
                           "errors, the last: %s); skipped while it cannot", name,
                           stats.read_errors, stats.last_error)
        self._measured |= out.keys()

    def _throttling_metrics(self, out: dict, rows) -> None:
        t = rows.throttling()
        for name, field in THROTTLING_METRICS.items():
            value = getattr(t, field)
            if value is not None:
                out[name] = float(value)
        for g in t.gpus:
            for reason, fraction in g.violation_fraction.items():
                if fraction is not None:
                    out[f"gpu{g.gpu}_violation_{reason}"] = float(fraction)

    def _memory_metrics(self, out: dict, rows) -> None:
        peak = rows.peak(catalogue.WORKING_SET)
        if peak is None:
            return
        out["memory_working_set_bytes"] = float(peak)
        if rows.effective_memory_bytes:
            out["memory_working_set_fraction"] = peak / rows.effective_memory_bytes

    def _guard(self, out: dict, what: str, compute, rows) -> None:
        try:
            compute(out, rows)
        except Exception as e:  # noqa: BLE001
            self.warn_once(what, "pycgroup: computing %s failed (%s: %s); skipped",
                           what, type(e).__name__, e)

    def _row(self):
        """Takes a row now; returns its time, or None when there is no sampler."""
        if self.sampler is None:
            return None
        try:
            return self.sampler.sample()
        except Exception as e:  # noqa: BLE001
            self.warn_once("sample", "pycgroup: taking a row failed (%s: %s)",
                           type(e).__name__, e)
            return None

    def warn_once(self, key: str, message: str, *args) -> None:
        """Logs a warning the first time ``key`` fails, and only then."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def prefixed(metrics: dict, prefix: str) -> dict:
    return {prefix + name: value for name, value in metrics.items()}
