"""The time series a person looks at, derived from raw rows: cores used, throttled
fraction, memory, pressure stalls and GPU figures over windows, grouped into the panels
(plots) and counter tracks (traces) that show them; and the steps and marks as spans."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

import numpy as np

from pycgroup import catalogue
from pycgroup.formats import MISSING, UNLIMITED
from pycgroup.samples import Samples

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.marks import Mark
    from pycgroup.steps import Steps


@dataclass(frozen=True)
class Series:
    """One line: values at the end of each window (NaN where not measurable)."""

    name: str
    t_ns: NDArray[np.int64]  # CLOCK_MONOTONIC ns
    values: NDArray[np.float64]


@dataclass(frozen=True)
class Group:
    """Series that share a unit: one plot panel, one trace counter track."""

    title: str
    unit: str  # "bytes", "cores", "fraction", "percent", "W", or a catalogue unit
    series: tuple[Series, ...]
    # (label, value): horizontal lines (a quota, memory.max)
    limits: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Span:
    label: str
    start_ns: int
    end_ns: int


def window_ns(samples: Samples, points: int = 2000, floor_s: float = 0.01) -> int:
    """Returns a window giving about ``points`` windows over the rows, at least floor_s."""
    if len(samples) < 2:
        return int(floor_s * 1e9)
    span = int(samples.t_ns[-1] - samples.t_ns[0])
    return max(int(floor_s * 1e9), span // points, 1)


def _boundaries(t_ns: NDArray[np.int64], width: int) -> NDArray[np.intp]:
    """Returns the indices of the first row of each window of ``width`` ns, and of the
    last row. A tail shorter than half a window joins the window before it: a rate over
    a few rows at the end would be noise (a 5 ms tail of 100 ms windows read 5.6 stall
    seconds a second)."""
    if not len(t_ns):
        return np.zeros(0, dtype=np.int64)
    edges = np.arange(t_ns[0], t_ns[-1] + width, width)
    index = np.unique(np.searchsorted(t_ns, edges, side="left"))
    index = index[index < len(t_ns)]
    last = len(t_ns) - 1
    if index[-1] != last:
        if len(index) > 1 and t_ns[last] - t_ns[index[-1]] < width / 2:
            index[-1] = last
        else:
            index = np.append(index, last)
    return index


def _present(values: NDArray[np.int64]) -> NDArray[np.bool_]:
    present: NDArray[np.bool_] = (values != MISSING) & (values != UNLIMITED)
    return present


class _Windows:
    def __init__(self, samples: Samples, width: int):
        self.samples = samples
        self.index = _boundaries(samples.t_ns, width)
        self.t_ns = samples.t_ns[self.index]

    def rate(self, name: str, scale: float = 1.0) -> Series:
        """A counter's change per second over each window, times scale."""
        values = self.samples[name][self.index]
        dt = np.diff(self.t_ns) / 1e9
        delta = np.diff(values).astype(np.float64)
        ok = _present(values[1:]) & _present(values[:-1]) & (dt > 0) & (delta >= 0)
        out = np.where(ok, delta * scale / np.where(dt > 0, dt, 1), np.nan)
        return Series(name, self.t_ns[1:], out)

    def ratio(self, name: str, numerator: str, denominator: str) -> Series:
        top, bottom = self.samples[numerator][self.index], self.samples[denominator][self.index]
        dtop, dbottom = np.diff(top).astype(np.float64), np.diff(bottom).astype(np.float64)
        ok = (_present(top[1:]) & _present(top[:-1]) & _present(bottom[1:])
              & _present(bottom[:-1]) & (dbottom > 0) & (dtop >= 0))
        return Series(name, self.t_ns[1:], np.where(ok, dtop / np.where(ok, dbottom, 1),
                                                    np.nan))

    def peak(self, name: str, scale: float = 1.0) -> Series:
        """A gauge's largest value in each window (the row at a window's end included)."""
        values = self.samples.as_float(name)
        values = np.where(np.isinf(values), np.nan, values)
        if len(self.index) < 2:
            return Series(name, self.t_ns[1:], np.zeros(0))
        starts = self.index[:-1]
        peaks = np.fmax.reduceat(values, starts)
        peaks = np.fmax(peaks, values[self.index[1:]])
        return Series(name, self.t_ns[1:], peaks * scale)


_PSI = [(f"{r}.pressure.{line}.total", f"{r} {line}") for r in ("cpu", "memory", "io")
        for line in ("some", "full")]
_GPU = re.compile(r"gpu(\d+)\.(.+)")


def groups(samples: Samples, width: int | None = None,
           metrics: Collection[str] | None = None) -> list[Group]:
    """Returns the Groups to show for samples, over windows of ``width`` ns (default:
    window_ns). ``metrics`` limits them to those names (a named metric that belongs to
    no standard group gets a group of its own)."""
    width = width or window_ns(samples)
    w = _Windows(samples, width)
    chosen = set(samples.columns) | ({catalogue.WORKING_SET} if catalogue.WORKING_SET in
                                     samples else set())
    if metrics is not None:
        chosen &= set(metrics)
    has = chosen.__contains__
    origin_limits = samples.origin.limits if samples.origin is not None else {}
    out: list[Group] = []
    used: set[str] = set()

    memory = []
    for name, label in (("memory.current", "current"), (catalogue.WORKING_SET, "working set"),
                        ("proc.rss_bytes", "process RSS")):
        if has(name):
            memory.append(_renamed(w.peak(name), label))
            used.add(name)
    if memory:
        lines = [(label, origin_limits[key]) for label, key in
                 (("memory.max", "memory_max_bytes"), ("memory.high", "memory_high_bytes"))
                 if origin_limits.get(key) is not None]
        out.append(Group("Memory", "bytes", tuple(memory), tuple(lines)))

    if has("cpu.stat.usage_usec"):
        used.add("cpu.stat.usage_usec")
        quota = samples.cpu_limit_cores
        out.append(Group("CPU cores used", "cores",
                         (_renamed(w.rate("cpu.stat.usage_usec", 1e-6), "cores used"),),
                         (("quota", quota),) if quota is not None else ()))
    if has("cpu.stat.nr_throttled") and has("cpu.stat.nr_periods"):
        used |= {"cpu.stat.nr_throttled", "cpu.stat.nr_periods"}
        out.append(Group("CPU throttled fraction", "fraction", (w.ratio(
            "throttled periods", "cpu.stat.nr_throttled", "cpu.stat.nr_periods"),)))
    psi = [_renamed(w.rate(name, 1e-6), label) for name, label in _PSI if has(name)]
    if psi:
        used |= {name for name, _ in _PSI}
        out.append(Group("Pressure stalls", "fraction", tuple(psi)))

    gpus = sorted({int(m[1]) for m in map(_GPU.fullmatch, chosen) if m})
    for title, unit, metric, scale, as_rate in (
            ("GPU utilisation", "percent", "util.gpu", 1.0, False),
            ("GPU power", "W", "power_mw", 1e-3, False),
            ("GPU memory used", "bytes", "memory.used", 1.0, False)):
        series: list[Series] = []
        for n in gpus:
            name = f"gpu{n}.{metric}"
            if has(name):
                series.append(_renamed(w.peak(name, scale), f"gpu{n}"))
                used.add(name)
        if series:
            out.append(Group(title, unit, tuple(series)))

    if metrics is not None:
        for name in metrics:
            if name in chosen and name not in used:
                counter = catalogue.kind(name) == catalogue.COUNTER
                unit = catalogue.unit(name)
                out.append(Group(name, unit + "/s" if counter else unit,
                                 (w.rate(name) if counter else w.peak(name),)))
    return out


def _renamed(series: Series, name: str) -> Series:
    return Series(name, series.t_ns, series.values)


def spans(marks: Iterable[Mark] = (), steps: Steps | Mapping[str, NDArray[Any]] | None = None
          ) -> tuple[tuple[Span, ...], tuple[tuple[str, int], ...]]:
    """Returns (spans, instants): the steps table's rows as Spans, plus each label's
    marks as the intervals between consecutive ones; a label marked once is an instant
    (label, t_ns)."""
    found: list[Span] = []
    instants: list[tuple[str, int]] = []
    if steps is not None and "start_ns" in steps and "end_ns" in steps:
        found += [Span("step", int(a), int(b))
                  for a, b in zip(steps["start_ns"], steps["end_ns"])]
    by_label: dict[str, list[int]] = {}
    for m in sorted(marks):
        by_label.setdefault(m.label, []).append(m.t_ns)
    for label, times in by_label.items():
        if len(times) == 1:
            instants.append((label, times[0]))
        found += [Span(label, a, b) for a, b in zip(times, times[1:])]
    return tuple(sorted(found, key=lambda s: s.start_ns)), tuple(instants)
