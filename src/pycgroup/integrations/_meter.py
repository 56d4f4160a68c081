"""StepMeter: what every framework callback shares. It runs a Sampler, wraps each training
step in a span (``sampler.span(label)``: two copies of the newest row, microseconds), and
turns the rows since the last report into the metrics the callbacks log. The spans give
the per-step table (``steps()``) and running statistics (``summary()``) of the run. It
never raises into a training loop: a failure is logged once (``logging``, logger
``pycgroup.integrations``) and what it broke is skipped."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, cast

from pycgroup import catalogue

if TYPE_CHECKING:
    from pycgroup.sampler import Sampler
    from pycgroup.spans import Span
    from pycgroup.steps import Steps
    from pycgroup.summary import StepSummary

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

#: The label of the spans a meter wraps training steps in.
STEP_LABEL = "train_step"
#: The label of its report windows: exact spans, each starting at the row the one
#: before ended at (``sampler.steps(WINDOW_LABEL)`` lists them).
WINDOW_LABEL = "pycgroup.report_window"

#: Sampling rate of a callback's sampler: counters are cumulative, so each report is
#: exact at any rate (its end is a row taken on the spot); the rate only sets how well
#: peaks (working set) and GPU clock-event fractions are caught.
DEFAULT_HZ = 100.0


class StepMeter:
    """Counts steps and reports cgroup metrics over the time since the previous report.

    ``sampler``: a Sampler to use (not started, stopped or closed by the meter); by
    default the meter makes one over this process's cgroup at ``hz`` and owns it.
    ``label``: the label of the step spans, for ``sampler.steps(label)``; None times the
    steps with the clock alone (a second window over steps another meter spans).
    ``window_label``: the label of its report windows (a second meter on the same
    sampler takes another, so that each one's windows tile the run on their own)."""

    def __init__(self, sampler: Sampler | None = None, hz: float = DEFAULT_HZ,
                 metrics: str | Iterable[str] | None = None, label: str | None = STEP_LABEL,
                 window_label: str = WINDOW_LABEL):
        self._given = sampler
        self._hz = hz
        self._metrics = metrics
        self.label = label
        self.window_label = window_label
        self.sampler = sampler
        self._warned: set[str] = set()
        self._measured: set[str] = set()  # metrics reported at least once
        self._read_errors = 0
        self._window: Span | None = None  # the report window, an open exact span
        self._effective_memory: int | None = None
        self._steps = 0
        self._step_ns = 0
        self._span: Span | None = None
        self._began_ns: int | None = None
        # The steps and summary of an own sampler, kept when it is closed.
        self._kept: tuple[Steps | None, StepSummary | None] = (None, None)
        self.steps_total = 0

    # --- lifecycle (never raises) -----------------------------------------------------

    def start(self) -> bool:
        """Starts sampling (once) and opens a window; returns whether a sampler runs."""
        if self.sampler is None:
            try:
                from pycgroup.sampler import Sampler

                # The default rates: each window's ends are rows taken on the spot (see
                # collect), so a counter the thread reads at 10 Hz is exact over a window.
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
        self._steps = self._step_ns = 0
        self._window = None
        if self.sampler is None:
            return
        try:
            self._effective_memory = self.sampler.origin.limits.get("effective_memory_bytes")
            self._window = self.sampler.span(self.window_label, exact=True).__enter__()
        except Exception as e:  # noqa: BLE001
            self.warn_once("sample", "pycgroup: taking a row failed (%s: %s)",
                           type(e).__name__, e)

    def close(self) -> None:
        """Stops the sampler if the meter made it, keeping its steps and summary."""
        if self.sampler is not None and self._given is None:
            try:
                self._kept = (self.steps(), self.summary())
                self.sampler.close()
            except Exception as e:  # noqa: BLE001
                self.warn_once("close", "pycgroup: closing the sampler failed (%s)", e)
            self.sampler = None

    # --- the hot path: a span a step -------------------------------------------------

    def begin(self) -> None:
        """Opens the step's span (with label None, or without a sampler, only the clock
        is read)."""
        if self.sampler is None or self.label is None:
            self._began_ns = time.monotonic_ns()
            return
        try:
            self._span = self.sampler.span(self.label).__enter__()
        except Exception as e:  # noqa: BLE001 - a closed sampler, never into the loop
            self._span = None
            self.warn_once("span", "pycgroup: a step span could not start (%s: %s)",
                           type(e).__name__, e)

    def end(self, steps: int = 1) -> None:
        """Ends the step (or the ``steps`` steps) that ``begin()`` started."""
        span, self._span = self._span, None
        if span is not None:
            try:
                span.__exit__(None, None, None)
                assert span.start_ns is not None and span.end_ns is not None  # exited
                self._step_ns += span.end_ns - span.start_ns
            except Exception as e:  # noqa: BLE001
                self.warn_once("span end", "pycgroup: a step span could not end (%s: %s)",
                               type(e).__name__, e)
        elif self._began_ns is not None:
            self._step_ns += time.monotonic_ns() - self._began_ns
            self._began_ns = None
        self._steps += steps
        self.steps_total += steps

    def steps(self) -> Steps | None:
        """Returns the Steps table of the steps kept (see Sampler.steps), also after
        training; None when nothing was measured or steps are not spanned (label None)."""
        if self.label is None:
            return None
        if self.sampler is not None:
            return self.sampler.steps(self.label)
        return self._kept[0]

    def summary(self) -> StepSummary | None:
        """Returns the StepSummary of every step measured, also after training; None
        when nothing was measured or steps are not spanned (label None)."""
        if self.label is None:
            return None
        if self.sampler is not None:
            return self.sampler.summary(self.label)
        return self._kept[1]

    # --- reports ----------------------------------------------------------------------

    def collect(self) -> dict[str, float]:
        """Returns {name: float} over the window since the previous collect() and starts
        the next window. Metrics this cgroup cannot measure are left out."""
        out = {"steps": float(self._steps)}
        if self._steps:
            out["step_time_s"] = self._step_ns / self._steps / 1e9
        self._steps = self._step_ns = 0
        window, self._window = self._window, None
        if window is None:
            return out
        # None after close(): the AttributeError below is then logged like any failure.
        sampler = cast("Sampler", self.sampler)
        try:
            # The window ends at a row read now (one sample(), tens of µs, once per
            # report), which also starts the next window: nothing falls between two
            # windows, and the counters the thread reads at 10 Hz (pressure,
            # memory.events) are fresh at both ends, not up to 100 ms stale, which over a
            # short window made stall time exceed one second a second. The C core folds
            # the rows in between into the peak working set; no row is copied out.
            window.__exit__(None, None, None)
            self._window = sampler.span(self.window_label, exact=True,
                                        after=window).__enter__()
        except Exception as e:  # noqa: BLE001
            self.warn_once("data", "pycgroup: reading the sampler's rows failed (%s: %s)",
                           type(e).__name__, e)
            return out
        self._guard(out, "throttling", self._throttling_metrics, window)
        self._guard(out, "working_set", self._memory_metrics, window)
        self._guard(out, "lost metrics", lambda out, window: self._warn_lost(out), window)
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

    def _throttling_metrics(self, out: dict[str, float], window: Span) -> None:
        """Counters from the window's boundary rows alone: exact for cumulative counters;
        a counter missing at either end or gone backwards is left out."""
        elapsed = window.duration_s
        change = {name: d for name, d in window.delta.items() if d is not None}
        for name, (counter, scale) in RATES.items():
            if counter in change and elapsed:
                out[name] = change[counter] * scale / elapsed
        for name, counter in CHANGES.items():
            if counter in change:
                out[name] = float(change[counter])
        periods = change.get("cpu.stat.nr_periods")
        if periods and "cpu.stat.nr_throttled" in change:
            out["cpu_throttled_fraction"] = change["cpu.stat.nr_throttled"] / periods
        if any(name.startswith("gpu") for name in change):
            self._gpu_metrics(out, window)

    def _gpu_metrics(self, out: dict[str, float], window: Span) -> None:
        for g in window.throttling.gpus:
            for reason, fraction in g.violation_fraction.items():
                if fraction is not None:
                    out[f"gpu{g.gpu}_violation_{reason}"] = float(fraction)

    def _memory_metrics(self, out: dict[str, float], window: Span) -> None:
        peak = window.peak.get(catalogue.WORKING_SET)
        if peak is None:
            return
        out["memory_working_set_bytes"] = float(peak)
        if self._effective_memory:
            out["memory_working_set_fraction"] = peak / self._effective_memory

    def _guard(self, out: dict[str, float], what: str,
               compute: Callable[[dict[str, float], Span], None], window: Span) -> None:
        try:
            compute(out, window)
        except Exception as e:  # noqa: BLE001
            self.warn_once(what, "pycgroup: computing %s failed (%s: %s); skipped",
                           what, type(e).__name__, e)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Logs a warning the first time ``key`` fails, and only then."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


class MeteredCallback:
    """What every framework callback offers beside logging: the run's steps, each a span
    of its own, as a table and as running statistics (also after training ended)."""

    meter: StepMeter

    def steps(self) -> Steps | None:
        """Returns the Steps table of the training steps kept (see Sampler.steps: one
        row per step with its CPU, throttling, memory and pressure figures), or None
        when nothing was measured. Under many ranks, ``reduce_steps(callback.steps())``
        names the rank that was throttled."""
        return self.meter.steps()

    def summary(self) -> StepSummary | None:
        """Returns the StepSummary of every training step measured (count, duration,
        cores used, throttled fraction and peak working set distributions), or None."""
        return self.meter.summary()


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {prefix + name: value for name, value in metrics.items()}


def make_callback_class(hooks: type, base: type, module: str) -> type:
    """Returns a framework's PycgroupCallback: its hooks over the framework's Callback."""
    return type("PycgroupCallback", (hooks, base), {"__module__": module,
                                                    "__doc__": hooks.__doc__})


def lazy_callback(module: str, hooks: type, base: Callable[[], type]) -> Callable[[str], type]:
    """Returns a module ``__getattr__`` that makes PycgroupCallback on first use, so that
    importing the integration does not import its framework."""
    made: list[type] = []

    def __getattr__(name: str) -> type:
        if name != "PycgroupCallback":
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not made:
            made.append(make_callback_class(hooks, base(), module))
        return made[0]

    return __getattr__
