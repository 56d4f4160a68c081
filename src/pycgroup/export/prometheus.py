"""Prometheus exposition: a custom collector that reads a cgroup on each scrape.

Names follow the Prometheus conventions (https://prometheus.io/docs/practices/naming/):
the ``pycgroup_`` prefix, base units (bytes, seconds, ratios), ``_total`` on counters.
A limit that is unlimited (or a metric this cgroup does not have) is left out of the
scrape rather than exported as a number: ``absent()`` and ``or`` in PromQL handle it, and
``usage / limit`` then has no series instead of a misleading 0.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from pycgroup import catalogue, gpu
from pycgroup._extras import require
from pycgroup.export.labels import cgroup_path, local_rank, rank_labels

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from pycgroup.cgroup import CGroup, Value
    from pycgroup.sampler import Sampler

_USEC, _NSEC = 10**6, 10**9  # divisors to seconds


@dataclass(frozen=True)
class Series:
    """One exported series: a Prometheus name fed by one pycgroup metric."""

    name: str  # the Prometheus name, with _total on counters
    source: str  # the pycgroup metric name (catalogue)
    div: int = 1  # the integer read / div is the value in the base unit
    labels: tuple[tuple[str, str], ...] = ()  # (label, value) pairs of this series within its family
    help: str = ""
    mul: int = 1  # (the integer read * mul) / div


def _pressure(prefix: str, line: str, word: str) -> list[Series]:
    return [Series(f"{prefix}_{line}_seconds_total", f"{resource}.pressure.{line}.total",
                   _USEC, (("resource", resource),),
                   f"Time {word} tasks stalled on the resource (PSI {line} total).")
            for resource in ("cpu", "memory", "io")]


#: pycgroup's own names.
SERIES = (
    Series("pycgroup_cpu_usage_seconds_total", "cpu.stat.usage_usec", _USEC,
           help="CPU time used by the cgroup's tasks."),
    Series("pycgroup_cpu_user_seconds_total", "cpu.stat.user_usec", _USEC,
           help="CPU time the cgroup's tasks spent in user mode."),
    Series("pycgroup_cpu_system_seconds_total", "cpu.stat.system_usec", _USEC,
           help="CPU time the cgroup's tasks spent in the kernel."),
    Series("pycgroup_cpu_periods_total", "cpu.stat.nr_periods",
           help="CFS bandwidth periods in which the cgroup had runnable tasks."),
    Series("pycgroup_cpu_throttled_periods_total", "cpu.stat.nr_throttled",
           help="CFS bandwidth periods in which the cgroup was throttled."),
    Series("pycgroup_cpu_throttled_seconds_total", "cpu.stat.throttled_usec", _USEC,
           help="Time the cgroup's tasks were throttled by the CPU quota."),
    Series("pycgroup_cpu_bursts_total", "cpu.stat.nr_bursts",
           help="CFS periods in which the cgroup used burst time."),
    Series("pycgroup_cpu_burst_seconds_total", "cpu.stat.burst_usec", _USEC,
           help="CPU time the cgroup used beyond its quota through bursts."),
    Series("pycgroup_cpu_period_seconds", "cpu.max.period_usec", _USEC,
           help="The CFS bandwidth period."),
    *(Series("pycgroup_memory_events_total", f"memory.events.{event}", 1,
             (("event", event),), "Memory events (memory.events; v1: failcnt, oom_kill).")
      for event in ("low", "high", "max", "oom", "oom_kill")),
    Series("pycgroup_memory_usage_bytes", "memory.current",
           help="Memory charged to the cgroup, page cache included."),
    Series("pycgroup_memory_working_set_bytes", catalogue.WORKING_SET,
           help="Memory usage minus inactive file pages, as the kubelet computes it."),
    Series("pycgroup_memory_peak_bytes", "memory.peak", help="The highest memory usage seen."),
    Series("pycgroup_memory_swap_usage_bytes", "memory.swap.current", help="Swap used."),
    Series("pycgroup_memory_anon_bytes", "memory.stat.anon", help="Anonymous memory."),
    Series("pycgroup_memory_file_bytes", "memory.stat.file", help="Page cache memory."),
    Series("pycgroup_memory_page_faults_total", "memory.stat.pgfault",
           help="Page faults of the cgroup's tasks."),
    Series("pycgroup_memory_major_page_faults_total", "memory.stat.pgmajfault",
           help="Major page faults (that read from disk) of the cgroup's tasks."),
    Series("pycgroup_memory_max_bytes", "memory.max",
           help="The cgroup's memory limit (absent when unlimited)."),
    Series("pycgroup_memory_high_bytes", "memory.high",
           help="The cgroup's memory throttling threshold (absent when unlimited)."),
    *_pressure("pycgroup_pressure", "some", "some"),
    *_pressure("pycgroup_pressure", "full", "all non-idle"),
    Series("pycgroup_pids", "pids.current", help="Tasks (threads) in the cgroup."),
    Series("pycgroup_pids_max", "pids.max",
           help="The cgroup's task limit (absent when unlimited)."),
    Series("pycgroup_process_cpu_seconds_total", "proc.utime_usec", _USEC,
           (("mode", "user"),), "CPU time of the watched process."),
    Series("pycgroup_process_cpu_seconds_total", "proc.stime_usec", _USEC,
           (("mode", "system"),)),
    Series("pycgroup_process_resident_memory_bytes", "proc.rss_bytes",
           help="Resident memory of the watched process."),
)
#: Series derived from two metrics: name -> (numerator, denominator, help).
QUOTA_CORES = ("pycgroup_cpu_quota_cores", "cpu.max.quota_usec", "cpu.max.period_usec",
               "The cgroup's CPU quota in cores, quota / period (absent when unlimited).")

#: The cAdvisor names (github.com/google/cadvisor docs/storage/prometheus.md) with the
#: same meaning and unit, so that dashboards and alerts written for them work unchanged.
CADVISOR_SERIES = (
    Series("container_cpu_usage_seconds_total", "cpu.stat.usage_usec", _USEC,
           help="Cumulative cpu time consumed in seconds."),
    Series("container_cpu_user_seconds_total", "cpu.stat.user_usec", _USEC,
           help="Cumulative user cpu time consumed in seconds."),
    Series("container_cpu_system_seconds_total", "cpu.stat.system_usec", _USEC,
           help="Cumulative system cpu time consumed in seconds."),
    Series("container_cpu_cfs_periods_total", "cpu.stat.nr_periods",
           help="Number of elapsed enforcement period intervals."),
    Series("container_cpu_cfs_throttled_periods_total", "cpu.stat.nr_throttled",
           help="Number of throttled period intervals."),
    Series("container_cpu_cfs_throttled_seconds_total", "cpu.stat.throttled_usec", _USEC,
           help="Total time duration the container has been throttled."),
    Series("container_memory_usage_bytes", "memory.current",
           help="Current memory usage in bytes, including all memory regardless of when "
                "it was accessed"),
    Series("container_memory_working_set_bytes", catalogue.WORKING_SET,
           help="Current working set in bytes."),
    Series("container_memory_max_usage_bytes", "memory.peak",
           help="Maximum memory usage recorded in bytes"),
    Series("container_memory_swap", "memory.swap.current", help="Container swap usage in bytes."),
    Series("container_memory_rss", "memory.stat.anon", help="Size of RSS in bytes."),
    Series("container_memory_cache", "memory.stat.file", help="Number of bytes of page cache memory."),
    Series("container_memory_failcnt", "memory.events.max",
           help="Number of memory usage hits limits"),
    Series("container_oom_events_total", "memory.events.oom_kill",
           help="Count of out of memory events observed for the container"),
    Series("container_spec_memory_limit_bytes", "memory.max", help="Memory limit for the container."),
    Series("container_spec_cpu_quota", "cpu.max.quota_usec", help="CPU quota of the container."),
    Series("container_spec_cpu_period", "cpu.max.period_usec", help="CPU period of the container."),
    Series("container_threads", "pids.current", help="Number of threads running inside the container"),
    Series("container_threads_max", "pids.max",
           help="Maximum number of threads allowed inside the container"),
    *(Series(f"container_pressure_{resource}_{word}_seconds_total",
             f"{resource}.pressure.{line}.total", _USEC,
             help=f"Total time duration {'tasks' if line == 'some' else 'all tasks'} in the "
                  f"container {'waited' if line == 'some' else 'stalled'} on the {resource}.")
      for resource in ("cpu", "memory", "io")
      for line, word in (("some", "waiting"), ("full", "stalled"))),
)

#: GPU metric -> (name, multiplier, divisor, help): value = read * multiplier / divisor.
_GPU_SERIES = {
    "memory.used": ("pycgroup_gpu_memory_used_bytes", 1, 1, "GPU memory in use."),
    "memory.total": ("pycgroup_gpu_memory_total_bytes", 1, 1, "GPU memory installed."),
    "util.gpu": ("pycgroup_gpu_utilization_ratio", 1, 100,
                 "Fraction of the driver's last sample period in which a kernel ran."),
    "util.memory": ("pycgroup_gpu_memory_utilization_ratio", 1, 100,
                    "Fraction of the driver's last sample period in which memory was read "
                    "or written."),
    "power_mw": ("pycgroup_gpu_power_watts", 1, 1000, "GPU power draw."),
    "energy_mj": ("pycgroup_gpu_energy_joules_total", 1, 1000,
                  "GPU energy consumed since the driver loaded."),
    "temp_c": ("pycgroup_gpu_temperature_celsius", 1, 1, "GPU core temperature."),
    "clock.sm_mhz": ("pycgroup_gpu_sm_clock_hertz", 10**6, 1, "GPU SM clock."),
    "clock.mem_mhz": ("pycgroup_gpu_memory_clock_hertz", 10**6, 1, "GPU memory clock."),
    "proc.memory.used": ("pycgroup_gpu_process_memory_used_bytes", 1, 1,
                         "GPU memory used by the watched process."),
}
GPU_CLOCK_EVENTS = "pycgroup_gpu_clock_event_active"
GPU_VIOLATIONS = "pycgroup_gpu_violation_seconds_total"


def gpu_series(n: int) -> tuple[Series, ...]:
    """Returns the series of the n-th visible GPU (label gpu="n")."""
    label = (("gpu", str(n)),)
    found = [Series(name, f"gpu{n}.{metric}", div, label, doc, mul)
             for metric, (name, mul, div, doc) in _GPU_SERIES.items()]
    for metric in gpu.METRICS:
        if metric.startswith("violation."):
            reason = metric[len("violation."):-len("_ns")]
            found.append(Series(GPU_VIOLATIONS, f"gpu{n}.{metric}", _NSEC,
                                label + (("reason", reason),),
                                "Time the GPU was held below its application clocks."))
    return tuple(found)


def _unit(name: str) -> str:
    """Returns the OpenMetrics unit a name ends with ("" for none)."""
    base = name[:-len("_total")] if name.endswith("_total") else name
    for unit in ("bytes", "seconds", "ratio", "watts", "joules", "celsius", "hertz"):
        if base.endswith("_" + unit):
            return unit
    return ""


class CgroupCollector:
    """A ``prometheus_client`` collector exporting a cgroup's metrics, read on each scrape.

    ``registry.register(CgroupCollector())`` (or ``prometheus_client.REGISTRY``) adds
    them to a registry. Each scrape is one snapshot read of every file through one reader
    kept open between scrapes (tens of microseconds; no thread). Every series carries
    the label ``cgroup`` (the cgroup's path, as /proc/<pid>/cgroup shows it) and
    ``rank``/``local_rank`` when the RANK/LOCAL_RANK environment variables are set;
    ``labels`` adds constant labels of your own.

    ``cadvisor_names=True`` also exports the cAdvisor names
    (``container_cpu_cfs_throttled_seconds_total``, ``container_memory_working_set_bytes``,
    ...), labelled ``id`` with the cgroup path as cAdvisor does. ``gpus`` (default: when
    NVML can be used) adds the GPU series.

    ``sampler`` (a ``pycgroup.Sampler`` whose code wraps its steps in
    ``sampler.span(label)``) adds, for each label in ``step_labels``, the running step
    summary: ``pycgroup_step_duration_seconds`` and the cores used, throttled fraction
    and peak working set per step, as Prometheus summaries (quantiles 0.5/0.9/0.99,
    ``_count``, ``_sum``) labelled ``step``.
    """

    def __init__(self, cg: CGroup | None = None, *, cadvisor_names: bool = False,
                 gpus: bool | None = None, labels: Mapping[str, str] | None = None,
                 sampler: Sampler | None = None, step_labels: str | Iterable[str] = ("step",),
                 backend: str = "native"):
        from pycgroup.cgroup import current

        self.cg = cg if cg is not None else current()
        self.labels = {"cgroup": cgroup_path(self.cg), **rank_labels(), **(labels or {})}
        self._cadvisor_labels = {"id": self.labels["cgroup"],
                                 **{k: v for k, v in self.labels.items() if k != "cgroup"}}
        self.series = list(SERIES)
        if cadvisor_names:
            self.series += CADVISOR_SERIES
        self._gpus: list[int] = []
        if gpus or (gpus is None and gpu.available()):
            self._gpus = [n for n, index in enumerate(gpu.visible_devices())
                          if not isinstance(index, str)]
            for n in self._gpus:
                self.series += gpu_series(n)
        self._backend = backend
        self.sampler = sampler
        self.step_labels = (step_labels,) if isinstance(step_labels, str) else tuple(step_labels)
        self._core = require("prometheus_client.core", "prometheus", "pycgroup.prometheus")
        self._families = self._layout()
        names = [s.source for s in self.series] + list(QUOTA_CORES[1:3])
        names += [f"gpu{n}.clock_event_reasons" for n in self._gpus]
        self._names = tuple(dict.fromkeys(names))
        self._lock = threading.Lock()  # the HTTP server scrapes from several threads

    def _layout(self) -> list[_Family]:
        families: dict[str, _Family] = {}
        for s in self.series:
            base = self._cadvisor_labels if s.name.startswith("container_") else self.labels
            family = families.get(s.name)
            if family is None:
                family = families[s.name] = _Family(
                    self._core, s.name, catalogue.kind(s.source), s.help,
                    [*base, *(k for k, _ in s.labels)])
            family.members.append((s.source, [*base.values(), *(v for _, v in s.labels)],
                                   s.mul, s.div))
        return list(families.values())

    def read(self) -> dict[str, Value]:
        """Returns one snapshot {pycgroup metric: int or None} of every source."""
        with self._lock:
            return self.cg.read(self._names, self._backend)

    def collect(self) -> Iterator[Metric]:
        """Yields the metric families of one snapshot (called by the registry per scrape)."""
        values = self.read()
        for family in self._families:
            metric = family.make()
            for source, label_values, mul, div in family.members:
                value = values.get(source)
                if value is not None and not math.isinf(value):  # unlimited: absent
                    family.add(metric, label_values, value * mul / div)
            if metric.samples:
                yield metric
        quota, period = (values.get(n) for n in QUOTA_CORES[1:3])
        if quota is not None and not math.isinf(quota) and period:
            metric = self._core.GaugeMetricFamily(QUOTA_CORES[0], QUOTA_CORES[3],
                                                  labels=list(self.labels))
            metric.add_metric(list(self.labels.values()), quota / period)
            yield metric
        if self._gpus:
            yield from self._gpu_clock_events(values)
        if self.sampler is not None and not self.sampler.closed:
            from pycgroup.export.step_metrics import step_families

            yield from step_families(self._core, self.sampler, self.step_labels, self.labels)

    def _gpu_clock_events(self, values: Mapping[str, Value]) -> Iterator[Metric]:
        metric = self._core.GaugeMetricFamily(
            GPU_CLOCK_EVENTS, "1 while the driver reports this reason for lowered clocks.",
            labels=[*self.labels, "gpu", "reason"])
        for n in self._gpus:
            reasons = values.get(f"gpu{n}.clock_event_reasons")
            if reasons is None:
                continue
            assert not isinstance(reasons, float)  # a bit mask, never unlimited
            for reason, bit in gpu.CLOCK_EVENT_BITS.items():
                metric.add_metric([*self.labels.values(), str(n), reason],
                                  1.0 if reasons & bit else 0.0)
        yield metric


class _Family:
    """The series sharing one Prometheus name, laid out once at construction."""

    def __init__(self, core: ModuleType, name: str, kind: str, doc: str,
                 label_names: list[str]):
        self.core, self.name, self.kind, self.doc = core, name, kind, doc
        self.label_names = label_names
        self.members: list[tuple[str, list[str], int, int]] = []  # (source, label values, mul, div)
        # prometheus_client's CounterMetricFamily appends _total; cAdvisor has counters
        # without it (container_memory_failcnt), which keep their exact name.
        self.exact_counter = kind == catalogue.COUNTER and not name.endswith("_total")
        self.unit = "" if name.startswith("container_") else _unit(name)  # cAdvisor has none

    def make(self) -> Any:  # a prometheus_client metric family
        if self.exact_counter:
            return self.core.Metric(self.name, self.doc, "counter")
        cls = (self.core.CounterMetricFamily if self.kind == catalogue.COUNTER
               else self.core.GaugeMetricFamily)
        return cls(self.name, self.doc, labels=self.label_names, unit=self.unit)

    def add(self, metric: Any, label_values: list[str], value: float) -> None:
        if self.exact_counter:
            metric.add_sample(self.name, dict(zip(self.label_names, label_values)), value)
        else:
            metric.add_metric(label_values, value)


def start_http_server(port: int, addr: str = "127.0.0.1", *, add_local_rank: bool = False,
                      registry: CollectorRegistry | None = None,
                      **collector_options: Any) -> tuple[WSGIServer, threading.Thread]:
    """Serves a registry holding a new CgroupCollector on http://addr:port/metrics from a
    daemon thread; returns (server, thread) as ``prometheus_client.start_http_server``
    does (``server.server_port`` is the port, ``server.shutdown()`` stops it).

    ``add_local_rank=True`` listens on ``port + LOCAL_RANK``, so that each rank of a job
    on one host gets its own port (prometheus_client's multiprocess mode cannot carry
    custom collectors). ``registry`` (default: a new one holding only this collector)
    lets the same endpoint serve your own metrics too; ``collector_options`` go to
    CgroupCollector. ``addr`` defaults to loopback: pass "0.0.0.0" to be scraped from
    other hosts."""
    client = require("prometheus_client", "prometheus", "pycgroup.prometheus")
    if add_local_rank:
        port += local_rank()
    if registry is None:
        registry = client.CollectorRegistry(auto_describe=True)
    registry.register(CgroupCollector(**collector_options))
    served: tuple[WSGIServer, threading.Thread] = client.start_http_server(port, addr, registry)
    return served
