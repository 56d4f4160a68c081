"""Hugging Face transformers: a TrainerCallback that logs this cgroup's CPU, memory,
pressure and OOM figures at the Trainer's logging steps, under ``pycgroup/``.

    from pycgroup.integrations.transformers import PycgroupCallback
    trainer = Trainer(model, args, train_dataset=data, callbacks=[PycgroupCallback()])

Why not merge into ``logs`` in ``on_log``: the Trainer hands one ``logs`` dict to its
callbacks in order, and the reporters chosen by ``report_to`` (TensorBoard, W&B, MLflow,
…) are registered before user callbacks, so what ``on_log`` adds reaches only the
callbacks after it. Instead, on each step where the Trainer is about to log
(``control.should_log`` set in ``on_step_end``), the callback calls ``trainer.log()``
with its metrics: an entry of its own in ``state.log_history`` at the same
``global_step``, which every callback's ``on_log`` receives, whatever the order."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Iterable

from pycgroup._extras import require
from pycgroup.integrations._meter import (DEFAULT_HZ, MeteredCallback, StepMeter,
                                          lazy_callback, prefixed)
from pycgroup.integrations.ranks import across_ranks

if TYPE_CHECKING:
    from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

    from pycgroup.sampler import Sampler

class _PycgroupHooks(MeteredCallback):
    """Wraps each optimizer step (``on_step_begin``/``on_step_end``) in a span (the
    table and statistics of all of them: ``steps()``, ``summary()``) and, at the steps
    the Trainer logs, logs ``steps``, ``step_time_s``, ``cpu_cores_used``,
    ``cpu_throttled_fraction``, ``cpu_throttled_s_per_s``, ``memory_working_set_bytes``,
    ``memory_working_set_fraction``, ``psi_*``, ``oom_kills`` and
    ``gpu<N>_violation_<reason>`` over the time since the previous log (names prefixed
    with ``prefix``). Under torch.distributed every rank's figures are gathered and
    logged as ``<name>/min``, ``/mean``, ``/max`` and ``/worst_rank``.

    ``trainer``: the Trainer to log through; when not given, the Trainer running the
    callback is found at ``on_train_begin``. ``sampler``, ``hz``, ``metrics``: as for
    the Lightning callback."""

    def __init__(self, trainer: Trainer | None = None, sampler: Sampler | None = None,
                 hz: float = DEFAULT_HZ, metrics: str | Iterable[str] | None = None,
                 prefix: str = "pycgroup/"):
        self.trainer = trainer
        self.meter = StepMeter(sampler, hz=hz, metrics=metrics)
        self.prefix = prefix
        self._running = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        if self.trainer is None:
            self.trainer = _calling_trainer()
            if self.trainer is None:
                self.meter.warn_once("trainer", "pycgroup: no Trainer found to log "
                                     "through; pass PycgroupCallback(trainer=trainer)")
        if not self._running:
            self._running = self.meter.start()

    def on_step_begin(self, args: TrainingArguments, state: TrainerState,
                      control: TrainerControl, **kwargs: Any) -> None:
        self.meter.begin()

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> TrainerControl | None:
        self.meter.end()
        if not (self._running and control.should_log and self.trainer is not None):
            return None
        try:
            metrics = across_ranks(self.meter.collect())
            if metrics:
                self.trainer.log(prefixed(metrics, self.prefix))
        except Exception as e:  # noqa: BLE001 - never into the training loop
            self.meter.warn_once("log", "pycgroup: logging to the Trainer failed (%s: %s)",
                                 type(e).__name__, e)
        # Trainer.log() clears should_log (the callback handler's on_log does): set it
        # again, or the Trainer would skip the loss it is about to log at this step.
        control.should_log = True
        current = getattr(self.trainer, "control", control)
        current.should_log = True
        return current

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        if self._running:
            self.meter.close()
            self._running = False


def _calling_trainer(depth: int = 12) -> Trainer | None:
    """Returns the transformers.Trainer whose method is on the call stack, or None."""
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate
        return None
    finally:
        del frame


__getattr__ = lazy_callback(
    __name__, _PycgroupHooks,
    lambda: require("transformers", "transformers", "PycgroupCallback").TrainerCallback)
