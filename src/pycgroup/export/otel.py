"""OpenTelemetry metrics: observable instruments read from a cgroup at each collection.

Names, instruments and units follow the OpenTelemetry semantic conventions where they
define the metric (semantic conventions 1.44, opentelemetry-semantic-conventions 0.66b2:
``container.*``, ``process.*``, ``hw.*``); what they do not define is
named under ``pycgroup.``. Units are UCUM as the conventions write them (``s``, ``By``,
``{cpu}``, ``W``, ``J``, ``Cel``, ``1``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, TypeGuard

from pycgroup import catalogue, gpu
from pycgroup._extras import require
from pycgroup.export.labels import cgroup_path, rank_labels

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.metrics import Instrument as OtelInstrument

    from pycgroup.cgroup import CGroup, Value

    #: (pycgroup metric, multiplier, divisor, {attribute: value})
    Point = tuple[str, int, int, dict[str, str]]
    #: What an observable instrument calls at each collection.
    Callback = Callable[[CallbackOptions], Iterable[Observation]]

COUNTER, UPDOWN, GAUGE = "counter", "updowncounter", "gauge"
#: A snapshot younger than this serves every callback of one collection (the SDK calls
#: the callbacks one after another), so one collection reads each file once.
SNAPSHOT_MAX_AGE_S = 0.2


@dataclass(frozen=True)
class Instrument:
    """One observable instrument and the pycgroup metrics that feed its points."""

    name: str
    kind: str  # COUNTER, UPDOWN or GAUGE
    unit: str
    description: str
    points: tuple[Point, ...]  # ((pycgroup metric, multiplier, divisor, {attribute: value}), ...)


def _one(name: str, kind: str, unit: str, description: str, source: str, div: int = 1,
         attributes: dict[str, str] | None = None) -> Instrument:
    return Instrument(name, kind, unit, description, ((source, 1, div, attributes or {}),))


INSTRUMENTS = (
    # Semantic conventions: container.*, process.*
    _one("container.cpu.time", COUNTER, "s", "Total CPU time consumed.",
         "cpu.stat.usage_usec", 10**6),
    _one("container.memory.usage", UPDOWN, "By", "Memory usage of the container.",
         "memory.current"),
    _one("container.memory.working_set", UPDOWN, "By", "Container memory working set.",
         catalogue.WORKING_SET),
    _one("container.memory.rss", UPDOWN, "By", "Container memory RSS.", "memory.stat.anon"),
    Instrument("process.cpu.time", COUNTER, "s",
               "Total CPU seconds broken down by different CPU modes.",
               (("proc.utime_usec", 1, 10**6, {"cpu.mode": "user"}),
                ("proc.stime_usec", 1, 10**6, {"cpu.mode": "system"}))),
    _one("process.memory.usage", UPDOWN, "By", "The amount of physical memory in use.",
         "proc.rss_bytes"),
    # pycgroup's own
    _one("pycgroup.cpu.throttled.time", COUNTER, "s",
         "Time the cgroup's tasks were throttled by the CPU quota.",
         "cpu.stat.throttled_usec", 10**6),
    _one("pycgroup.cpu.periods", COUNTER, "{period}",
         "CFS bandwidth periods in which the cgroup had runnable tasks.", "cpu.stat.nr_periods"),
    _one("pycgroup.cpu.throttled.periods", COUNTER, "{period}",
         "CFS bandwidth periods in which the cgroup was throttled.", "cpu.stat.nr_throttled"),
    _one("pycgroup.memory.limit", GAUGE, "By",
         "The cgroup's memory limit (no point when unlimited).", "memory.max"),
    _one("pycgroup.memory.high", GAUGE, "By",
         "The cgroup's memory throttling threshold (no point when unlimited).", "memory.high"),
    _one("pycgroup.memory.peak", GAUGE, "By", "The highest memory usage seen.", "memory.peak"),
    Instrument("pycgroup.memory.events", COUNTER, "{event}",
               "Memory events (memory.events; v1: failcnt, oom_kill).",
               tuple((f"memory.events.{e}", 1, 1, {"pycgroup.memory.event": e})
                     for e in ("low", "high", "max", "oom", "oom_kill"))),
    Instrument("pycgroup.pressure.stall.time", COUNTER, "s",
               "Time tasks stalled on a resource (PSI totals): some = at least one task, "
               "full = all non-idle tasks.",
               tuple((f"{r}.pressure.{line}.total", 1, 10**6,
                      {"pycgroup.pressure.resource": r, "pycgroup.pressure.scope": line})
                     for r in ("cpu", "memory", "io") for line in ("some", "full"))),
    _one("pycgroup.pids.usage", UPDOWN, "{thread}", "Tasks (threads) in the cgroup.",
         "pids.current"),
    _one("pycgroup.pids.limit", GAUGE, "{thread}",
         "The cgroup's task limit (no point when unlimited).", "pids.max"),
)
CPU_LIMIT = ("pycgroup.cpu.limit", "{cpu}",
             "The cgroup's CPU quota in cores, quota / period (no point when unlimited).")
CPU_USAGE = ("container.cpu.usage", "{cpu}",
             "Container's CPU usage, measured in CPUs, since the previous collection.")
MEMORY_AVAILABLE = ("container.memory.available", "By",
                    "Container memory available: the limit minus the working set, 0 past "
                    "it (no point when unlimited).")
PAGING_FAULTS = ("container.paging.faults", "{fault}",
                 "Container memory paging faults, major and minor.")
#: The attribute and values the conventions give container.paging.faults.
FAULT_TYPE = "system.paging.fault.type"
#: What the derived instruments read besides the INSTRUMENTS' sources.
DERIVED_SOURCES = ("cpu.max.quota_usec", "cpu.max.period_usec", "memory.max",
                   catalogue.WORKING_SET, "memory.stat.pgfault", "memory.stat.pgmajfault")

#: GPU metric -> (instrument, kind, unit, multiplier, divisor, description); hw.* points
#: carry hw.id (the GPU's UUID), hw.type="gpu" and pycgroup.gpu (N of gpuN).
GPU_INSTRUMENTS = {
    "memory.used": ("hw.gpu.memory.usage", UPDOWN, "By", 1, 1, "GPU memory used."),
    "memory.total": ("hw.gpu.memory.limit", UPDOWN, "By", 1, 1, "GPU memory available."),
    "util.gpu": ("hw.gpu.utilization", GAUGE, "1", 1, 100, "Fraction of time spent in a "
                 "specific task."),
    "util.memory": ("pycgroup.gpu.memory.activity", GAUGE, "1", 1, 100,
                    "Fraction of the driver's sample period in which memory was read or "
                    "written."),
    "power_mw": ("hw.power", GAUGE, "W", 1, 1000, "Instantaneous power consumed."),
    "energy_mj": ("hw.energy", COUNTER, "J", 1, 1000, "Energy consumed."),
    "temp_c": ("hw.temperature", GAUGE, "Cel", 1, 1, "Temperature."),
    "clock.sm_mhz": ("pycgroup.gpu.clock.sm", GAUGE, "Hz", 10**6, 1, "GPU SM clock."),
    "violation.power_ns": ("pycgroup.gpu.violation.time", COUNTER, "s", 1, 10**9,
                           "Time the GPU was held below its application clocks."),
    "violation.thermal_ns": ("pycgroup.gpu.violation.time", COUNTER, "s", 1, 10**9,
                             "Time the GPU was held below its application clocks."),
}


class _Snapshot:
    """One read of every metric the instruments need, shared by a collection's callbacks."""

    def __init__(self, cg: CGroup, names: Iterable[str], backend: str):
        self.cg, self.names, self.backend = cg, tuple(dict.fromkeys(names)), backend
        self.lock = threading.Lock()  # readers may collect from several threads
        self.values: dict[str, Value] = {}
        self.t = -1.0
        self.previous: tuple[float, int | float] | None = None  # (t, cpu usage_usec) of the read before

    def get(self) -> dict[str, Value]:
        with self.lock:
            now = time.monotonic()
            if now - self.t > SNAPSHOT_MAX_AGE_S:
                if (usage := self.values.get("cpu.stat.usage_usec")) is not None:
                    self.previous = (self.t, usage)
                self.values = self.cg.read(self.names, self.backend)
                self.t = now
            return self.values

    def cores_used(self) -> float | None:
        values = self.get()
        usage = values.get("cpu.stat.usage_usec")
        if self.previous is None or usage is None or self.t <= self.previous[0]:
            return None
        return (usage - self.previous[1]) / 1e6 / (self.t - self.previous[0])


def instrument(meter_provider: MeterProvider | None = None, cg: CGroup | None = None, *,
               gpus: bool | None = None, backend: str = "native") -> list[OtelInstrument]:
    """Registers observable instruments reporting cg's metrics (default: this process's
    cgroup) on meter_provider (default: the global one); returns them.

    Every point carries ``pycgroup.cgroup.path`` and, when RANK/LOCAL_RANK are set,
    ``pycgroup.rank``/``pycgroup.local_rank``. A metric this cgroup does not have, or a
    limit that is unlimited, gives no point. Needs ``pycgroup[otel]``."""
    metrics = require("opentelemetry.metrics", "otel", "pycgroup.otel")
    from pycgroup._version import __version__
    from pycgroup.cgroup import current

    cg = cg if cg is not None else current()
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    meter = provider.get_meter("pycgroup", __version__)
    common = {"pycgroup.cgroup.path": cgroup_path(cg),
              **{f"pycgroup.{k}": v for k, v in rank_labels().items()}}
    specs = list(INSTRUMENTS) + _gpu_instruments(gpus)
    names = [point[0] for spec in specs for point in spec.points]
    snapshot = _Snapshot(cg, names + list(DERIVED_SOURCES), backend)
    makers = {COUNTER: meter.create_observable_counter,
              UPDOWN: meter.create_observable_up_down_counter,
              GAUGE: meter.create_observable_gauge}
    created: list[OtelInstrument] = []
    for spec in specs:
        created.append(makers[spec.kind](spec.name, [_points(metrics, snapshot, spec, common)],
                                         unit=spec.unit, description=spec.description))

    def cpu_limit(options: CallbackOptions) -> Iterable[Observation]:
        values = snapshot.get()
        quota, period = values.get("cpu.max.quota_usec"), values.get("cpu.max.period_usec")
        if not (_finite(quota) and period):
            return []  # unlimited (quota max) or unavailable: no point
        return [metrics.Observation(quota / period, common)]

    def cpu_usage(options: CallbackOptions) -> Iterable[Observation]:
        cores = snapshot.cores_used()
        return [] if cores is None else [metrics.Observation(cores, common)]

    def memory_available(options: CallbackOptions) -> Iterable[Observation]:
        values = snapshot.get()
        limit, working_set = values.get("memory.max"), values.get(catalogue.WORKING_SET)
        if not (_finite(limit) and working_set is not None):
            return []  # unlimited: the conventions omit it
        return [metrics.Observation(max(0, limit - working_set), common)]

    def paging_faults(options: CallbackOptions) -> Iterable[Observation]:
        values = snapshot.get()
        faults, major = values.get("memory.stat.pgfault"), values.get("memory.stat.pgmajfault")
        if faults is None or major is None:
            return []
        # pgfault counts every fault, major ones included
        return [metrics.Observation(major, {**common, FAULT_TYPE: "major"}),
                metrics.Observation(faults - major, {**common, FAULT_TYPE: "minor"})]

    for (name, unit, description), callback in ((CPU_LIMIT, cpu_limit), (CPU_USAGE, cpu_usage)):
        created.append(meter.create_observable_gauge(name, [callback], unit=unit,
                                                     description=description))
    name, unit, description = MEMORY_AVAILABLE
    created.append(meter.create_observable_up_down_counter(
        name, [memory_available], unit=unit, description=description))
    name, unit, description = PAGING_FAULTS
    created.append(meter.create_observable_counter(
        name, [paging_faults], unit=unit, description=description))
    return created


def _finite(value: float | None) -> TypeGuard[float]:
    """Whether value gives a point: not unavailable (None), not unlimited (inf)."""
    return value is not None and math.isfinite(value)


def _points(metrics: ModuleType, snapshot: _Snapshot, spec: Instrument,
            common: Mapping[str, str]) -> Callback:
    points = [(source, mul, div, {**common, **attributes})
              for source, mul, div, attributes in spec.points]

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        values = snapshot.get()
        return [metrics.Observation(value * mul / div, attributes)
                for source, mul, div, attributes in points
                if _finite(value := values.get(source))]

    return callback


def _gpu_instruments(gpus: bool | None) -> list[Instrument]:
    """Returns the GPU instruments, one point per visible GPU (none without NVML)."""
    if not (gpus or (gpus is None and gpu.available())):
        return []
    devices = [(n, index) for n, index in enumerate(gpu.visible_devices())
               if not isinstance(index, str)]
    by_name: dict[str, tuple[str, str, str, list[Point]]] = {}
    for metric, (name, kind, unit, mul, div, description) in GPU_INSTRUMENTS.items():
        points = by_name.setdefault(name, (kind, unit, description, []))[3]
        for n, index in devices:
            attributes = {"hw.id": gpu.nvml().uuid(index), "hw.type": "gpu",
                          "pycgroup.gpu": str(n)}
            if name == "hw.gpu.utilization":
                attributes["hw.gpu.task"] = "general"
            if name == "pycgroup.gpu.violation.time":
                attributes["pycgroup.gpu.violation.reason"] = metric[len("violation."):-3]
            points.append((f"gpu{n}.{metric}", mul, div, attributes))
    return [Instrument(name, kind, unit, description, tuple(points))
            for name, (kind, unit, description, points) in by_name.items()]
