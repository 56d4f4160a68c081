"""Keras 3 (any backend): a Callback that adds this cgroup's CPU, memory, pressure and
OOM figures to the logs, under ``pycgroup/``.

    from pycgroup.integrations.keras import PycgroupCallback
    model.fit(x, y, epochs=3, callbacks=[PycgroupCallback()])
    history.history["pycgroup/cpu_throttled_fraction"]   # one value per epoch

Keras hands one logs dict to its callbacks in order and adds its History callback
after the user's, so what this callback adds to the epoch logs reaches History (and any
callback placed after it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from pycgroup._extras import require
from pycgroup.integrations._meter import (DEFAULT_HZ, WINDOW_LABEL, MeteredCallback,
                                          StepMeter, lazy_callback, prefixed)
from pycgroup.integrations.ranks import across_ranks

if TYPE_CHECKING:
    from pycgroup.sampler import Sampler

#: The label of the ``every_n_steps`` report windows (the epoch's are WINDOW_LABEL).
EVERY_N_WINDOW_LABEL = f"{WINDOW_LABEL}.every_n_steps"


class _PycgroupHooks(MeteredCallback):
    """Wraps each batch hook (``on_train_batch_begin``/``end``) in a span (the table and
    statistics of all of them: ``steps()``, ``summary()``) and adds the metrics over
    the epoch to the epoch's logs (``steps``, ``step_time_s``, ``cpu_cores_used``,
    ``cpu_throttled_fraction``, ``cpu_throttled_s_per_s``, ``memory_working_set_bytes``,
    ``memory_working_set_fraction``, ``psi_*``, ``oom_kills``,
    ``gpu<N>_violation_<reason>``); with ``every_n_steps`` also to the batch logs of the
    hook that completes each ``every_n_steps`` training steps.

    With ``steps_per_execution`` = N > 1 each batch hook covers N training steps (fewer
    in an epoch's last): ``steps`` counts training steps, not hooks, and ``step_time_s``
    is the hook's time divided by its steps; ``steps()`` has a row per hook. ``self.history`` keeps every report as
    (training step, {name: value}) with the step counted from the start of fit()."""

    params: dict[str, Any] | None  # set by keras.callbacks.Callback

    def __init__(self, sampler: Sampler | None = None, hz: float = DEFAULT_HZ,
                 metrics: str | Iterable[str] | None = None, prefix: str = "pycgroup/",
                 every_n_steps: int | None = None):
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, not {every_n_steps!r}")
        self.meter = StepMeter(sampler, hz=hz, metrics=metrics)  # the epoch's window
        # the every_n_steps window, on the same sampler
        self._every_meter: StepMeter | None = None
        self.prefix = prefix
        self.every_n_steps = every_n_steps
        self.history: list[tuple[int, dict[str, float]]] = []
        self._running = False
        self._first_step = 0
        self._next_report = every_n_steps

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.history = []
        self._next_report = self.every_n_steps
        if not self._running:
            self._running = self.meter.start()
            if self._running and self.every_n_steps is not None:
                self._every_meter = StepMeter(self.meter.sampler, label=None,
                                              window_label=EVERY_N_WINDOW_LABEL)
                self._every_meter.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._running:
            self.meter.reset_window()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._first_step = batch
        self.meter.begin()
        if self._every_meter is not None:
            self._every_meter.begin()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        last = batch
        steps_per_epoch = (self.params or {}).get("steps")
        if steps_per_epoch:
            last = min(last, steps_per_epoch - 1)  # the epoch's last execution is short
        steps = max(1, last - self._first_step + 1)
        self.meter.end(steps)
        if self._every_meter is not None:
            self._every_meter.end(steps)
            # Both set with _every_meter.
            assert self._next_report is not None and self.every_n_steps is not None
            if self.meter.steps_total >= self._next_report:
                self._next_report += self.every_n_steps
                self._report(self._every_meter, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._report(self.meter, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._running:
            self._every_meter = None
            self.meter.close()
            self._running = False

    def _report(self, meter: StepMeter, logs: dict[str, Any] | None) -> None:
        if not self._running:
            return
        try:
            metrics = prefixed(across_ranks(meter.collect()), self.prefix)
            self.history.append((self.meter.steps_total, metrics))
            if logs is not None:
                logs.update(metrics)
        except Exception as e:  # noqa: BLE001 - never into the training loop
            self.meter.warn_once("log", "pycgroup: adding metrics to Keras logs failed "
                                 "(%s: %s)", type(e).__name__, e)


__getattr__ = lazy_callback(
    __name__, _PycgroupHooks,
    lambda: require("keras", "keras", "PycgroupCallback").callbacks.Callback)
