"""Lightning: a Callback that logs this cgroup's CPU, memory, pressure and OOM figures
over each logging interval to the trainer's loggers, under ``pycgroup/``.

    from pycgroup.integrations.lightning import PycgroupCallback
    trainer = Trainer(callbacks=[PycgroupCallback()], log_every_n_steps=50)

``PycgroupCallback`` subclasses the Callback of the Lightning that the program imported
(``lightning`` or ``pytorch_lightning``: a Trainer of one rejects the other's callbacks);
``callback_class("pytorch_lightning")`` names one explicitly."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, Iterable

from pycgroup._extras import require
from pycgroup.integrations._meter import (DEFAULT_HZ, MeteredCallback, StepMeter,
                                          make_callback_class, prefixed)
from pycgroup.integrations.ranks import across_ranks

if TYPE_CHECKING:
    from pycgroup.sampler import Sampler

PACKAGES = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}
_classes: dict[str, type] = {}
# Trainers and modules are typed Any: they come from either Lightning package.


class _PycgroupHooks(MeteredCallback):
    """The callback's behaviour; mixed into each Lightning's Callback by callback_class.

    Each training batch is a span (``sampler.span("train_step")``, microseconds; the
    table and statistics of all of them: ``steps()``, ``summary()``); on the steps where Lightning writes
    its logs (every ``log_every_n_steps``) the metrics over the interval since the last
    write are handed to the trainer's loggers: ``steps``, ``step_time_s``,
    ``cpu_cores_used``, ``cpu_throttled_fraction``, ``cpu_throttled_s_per_s``,
    ``memory_working_set_bytes`` (peak) and ``memory_working_set_fraction`` (of the
    effective memory limit), ``psi_<cpu|memory|io>_<some|full>`` (stall seconds per
    second), ``oom_kills`` (new ones) and ``gpu<N>_violation_<reason>`` where GPUs are
    sampled. Under DDP every rank's figures are gathered and logged as ``<name>/min``,
    ``/mean``, ``/max`` and ``/worst_rank`` (Lightning's loggers write rank 0's only).

    ``sampler``: a pycgroup.Sampler to use instead of the callback's own (which samples
    this process's cgroup at ``hz``); ``metrics``: the metrics the own sampler records
    (None: its default set); ``prefix``: the logged names' prefix."""

    def __init__(self, sampler: Sampler | None = None, hz: float = DEFAULT_HZ,
                 metrics: str | Iterable[str] | None = None, prefix: str = "pycgroup/"):
        super().__init__()
        self.meter = StepMeter(sampler, hz=hz, metrics=metrics)
        self.prefix = prefix
        self._running = False

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and not self._running:
            self._running = self.meter.start()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._running:
            self.meter.reset_window()  # the sanity check is not training

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        self.meter.begin()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.meter.end()
        if not self._running or not _logs_written_now(trainer):
            return
        try:
            metrics = across_ranks(self.meter.collect())
            if metrics:
                _log_to_loggers(trainer, prefixed(metrics, self.prefix))
        except Exception as e:  # noqa: BLE001 - never into the training loop
            self.meter.warn_once("log", "pycgroup: logging to Lightning failed (%s: %s)",
                                 type(e).__name__, e)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and self._running:
            self.meter.close()
            self._running = False

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "fit")


def _log_to_loggers(trainer: Any, metrics: dict[str, float]) -> None:
    """Hands metrics to each of the trainer's loggers at the step Lightning writes its own
    step logs under, as its DeviceStatsMonitor does. (LightningModule.log_dict would make
    Lightning validate each value, wrap it in a tensor and keep it for reduction: about
    15 ms for these 15 floats on a small CPU, where this costs microseconds.) Lightning's
    loggers write from rank 0 only, so across_ranks() has already reduced the ranks."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(loop, "_batches_that_stepped", None)
    if not isinstance(step, int):
        step = trainer.global_step
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


def _logs_written_now(trainer: Any) -> bool:
    """Whether Lightning writes step logs after this batch: the logger connector's own
    rule (every log_every_n_steps optimizer steps, and on the last), so the metrics land
    on the steps it logs and are computed only then."""
    # Lightning writes step logs only after the optimizer steps. (Asking whether it
    # accumulates walks its loops' progress: skipped where every batch steps.)
    if getattr(trainer, "accumulate_grad_batches", None) != 1:
        accumulating = getattr(getattr(trainer, "fit_loop", None), "_should_accumulate", None)
        if callable(accumulating) and accumulating():
            return False
    # The logger connector's should_update_logs in the fit loop, read directly: its
    # property walk (the trainer's state, then the active loop) took 8 µs a batch right
    # after a training step, more than the span and the rest of the hook together.
    every = getattr(trainer, "log_every_n_steps", None)
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    stepped = getattr(loop, "_batches_that_stepped", None)
    if isinstance(every, int) and isinstance(stepped, int):
        return every > 0 and ((stepped + 1) % every == 0 or bool(trainer.should_stop))
    connector = getattr(trainer, "_logger_connector", None)
    should = getattr(connector, "should_update_logs", None)
    if isinstance(should, bool):
        return should
    written: bool = (trainer.global_step % max(1, trainer.log_every_n_steps) == 0
                     or trainer.should_stop)
    return written


def callback_class(package: str | None = None) -> type:
    """Returns PycgroupCallback for ``package`` ("lightning" or "pytorch_lightning"; by
    default the one the program imported, else whichever is installed)."""
    if package is None:
        package = next((p for p in PACKAGES if p in sys.modules), None)
        if package is None:
            for candidate in PACKAGES:
                try:
                    importlib.import_module(PACKAGES[candidate])
                    package = candidate
                    break
                except ImportError:
                    continue
            else:
                require("lightning", "lightning", "PycgroupCallback")
    if package not in PACKAGES:
        raise ValueError(f"package must be one of {sorted(PACKAGES)}, not {package!r}")
    if package not in _classes:
        base: type = require(PACKAGES[package], "lightning", "PycgroupCallback").Callback
        cls = make_callback_class(_PycgroupHooks, base, __name__)
        for name in _hooks_not_implemented(base):
            setattr(cls, name, None)
        _classes[package] = cls
    return _classes[package]


#: Hooks Lightning calls directly, not through _call_callback_hooks: kept callable.
_CALLED_DIRECTLY = {"on_save_checkpoint", "on_load_checkpoint"}


def _hooks_not_implemented(base: type) -> list[str]:
    """Returns the hooks of Lightning's Callback this callback does not implement.
    Lightning calls a callback's hook only when it is callable (``_call_callback_hooks``
    in lightning/pytorch/trainer/call.py), each inside a profiler context that costs
    about 6 µs: the no-op hooks a Callback inherits (four on every training step:
    before and after backward, before the optimizer step and zero_grad) cost more than
    the callback's own work. Set to None, they are skipped. A subclass that defines one
    of them is called as usual."""
    return [name for name in dir(base)
            if (name.startswith("on_") or name in ("setup", "teardown"))
            and name not in vars(_PycgroupHooks) and name not in _CALLED_DIRECTLY]


def __getattr__(name: str) -> type:
    if name == "PycgroupCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
