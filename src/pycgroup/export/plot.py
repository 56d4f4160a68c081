"""A recording as stacked panels sharing the time axis (matplotlib, ``pycgroup[plot]``):
memory with its limits, CPU cores used with the quota, throttled fraction, pressure
stalls and GPUs, with steps and marks shaded across every panel and lost rows hatched."""

from __future__ import annotations

import datetime
import html
import io
import math
import os
from typing import TYPE_CHECKING, Collection, Sequence, Union

import numpy as np

from pycgroup._extras import require
from pycgroup.export import series as series_module
from pycgroup.formats import MISSING, UNLIMITED
from pycgroup.samples import Samples

if TYPE_CHECKING:
    from matplotlib import ticker
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from pycgroup.export.files import Gap, PathLike, Recording
    from pycgroup.marks import Mark
    from pycgroup.steps import StepTable

FORMATS = (".png", ".svg", ".html")
PANEL_HEIGHT_IN = 1.9
WIDTH_IN = 11.0
DPI = 110
SPAN_COLOURS = ("#4c72b0", "#dd8452")
MAX_SPAN_LABELS = 40
PLOT_POINTS = 600  # windows over the recording: finer is noise at a page's width
PLOT_WINDOW_S = 0.05
#: The CFS period when a recording does not show its own (the kernel's default, and
#: what docker --cpus and Kubernetes set).
DEFAULT_CFS_PERIOD_S = 0.1


def _bytes(value: float, _: object = None) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _binary_ticks(ax: Axes, MultipleLocator: type[ticker.MultipleLocator],
                  most: int = 6) -> None:
    """Puts a bytes axis's ticks on round numbers of KiB, MiB or GiB."""
    top = ax.get_ylim()[1]
    if top <= 0:
        return
    unit = 1024 ** min(4, max(0, int(np.log(top) / np.log(1024))))
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if top / (step * unit) <= most:
            ax.yaxis.set_major_locator(MultipleLocator(step * unit))
            return


def cfs_period_s(samples: Samples) -> float:
    """Returns the CFS period the rows show: the median time per period counted between
    rows where ``cpu.stat.nr_periods`` grew (the cgroup ran through those periods), or
    DEFAULT_CFS_PERIOD_S when fewer than two rows grew it."""
    if "cpu.stat.nr_periods" not in samples or len(samples) < 3:
        return DEFAULT_CFS_PERIOD_S
    periods = samples["cpu.stat.nr_periods"]
    present = (periods != MISSING) & (periods != UNLIMITED)
    t_ns, periods = samples.t_ns[present], periods[present]
    grew = np.flatnonzero(np.diff(periods) > 0) + 1
    if len(grew) < 2:
        return DEFAULT_CFS_PERIOD_S
    per_period = np.diff(t_ns[grew]) / np.diff(periods[grew]) / 1e9
    return float(np.median(per_period))


def window_s(samples: Samples) -> float:
    """Returns the shortest window the panels use: PLOT_WINDOW_S, or two CFS periods
    under a CPU quota. A window shorter than the period holds at most one period's end,
    so the throttled fraction would be an isolated point between gaps (drawn as no line
    at all) and cores used would swing between the run and throttled halves of each
    period."""
    quota = samples.cpu_limit_cores
    if quota is None or not math.isfinite(quota):
        return PLOT_WINDOW_S
    return max(PLOT_WINDOW_S, 2 * cfs_period_s(samples))


def figure(recording: Union[Recording, Samples], metrics: Collection[str] | None = None,
           title: str | None = None) -> Figure:
    """Returns a matplotlib Figure of a Recording (or Samples): one panel per group of
    pycgroup.export.series.groups, sharing the time axis (seconds from the first row)."""
    require("matplotlib", "plot", "Plotting")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

    marks: Sequence[Mark]
    steps: StepTable | None
    gaps: Sequence[Gap]
    if isinstance(recording, Samples):
        samples, marks, steps, gaps = recording, (), None, ()
    else:
        samples, marks, steps, gaps = (recording.samples, recording.marks, recording.steps,
                                       recording.gaps)
    width = series_module.window_ns(samples, points=PLOT_POINTS, floor_s=window_s(samples))
    groups = series_module.groups(samples, width, metrics=metrics)
    if not groups:
        raise ValueError("nothing to plot: the recording has none of the metrics the "
                         "panels show" + (f" (asked for {', '.join(metrics)})"
                                          if metrics else ""))
    t0 = int(samples.t_ns[0]) if len(samples) else 0

    def seconds(t_ns: int | Sequence[int] | NDArray[np.int64]) -> NDArray[np.float64]:
        return (np.asarray(t_ns, dtype=np.int64) - t0) / 1e9

    fig = Figure(figsize=(WIDTH_IN, 1.0 + PANEL_HEIGHT_IN * len(groups)), dpi=DPI,
                 layout="constrained")
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    spans, instants = series_module.spans(marks, steps)
    for ax, group in zip(axes, groups):
        for s in group.series:
            ax.plot(seconds(s.t_ns), s.values, linewidth=1.0, label=s.name)
        for label, value in group.limits:
            if not math.isfinite(value):
                continue  # unlimited: no line, and no legend entry promising one
            ax.axhline(value, linestyle="--", linewidth=1.0, color="#c44e52", label=label)
        ax.set_title(group.title, loc="left", fontsize=9, pad=3)
        ax.grid(True, alpha=0.3)
        if group.unit == "bytes":
            ax.yaxis.set_major_formatter(FuncFormatter(_bytes))
        elif group.unit == "fraction":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylim(bottom=0)
        else:
            ax.set_ylabel(group.unit, fontsize=8)
            ax.set_ylim(bottom=0)
        if group.unit == "cores" or group.unit == "bytes":
            ax.set_ylim(bottom=0)
        for i, span in enumerate(spans):
            ax.axvspan(*seconds([span.start_ns, span.end_ns]), alpha=0.12, linewidth=0,
                       color=SPAN_COLOURS[i % 2])
        for _, t_ns in instants:
            ax.axvline(seconds(t_ns), color="#555555", linewidth=0.8, linestyle=":")
        for gap in gaps:
            if gap.after_ns >= 0 and gap.before_ns >= 0:
                ax.axvspan(*seconds([gap.after_ns, gap.before_ns]), facecolor="none",
                           edgecolor="#c44e52", hatch="///", linewidth=0)
        if group.unit == "bytes":
            _binary_ticks(ax, MultipleLocator)
        ax.tick_params(labelsize=8)
        if all(np.isnan(s.values).all() for s in group.series):
            why = (" (throttling needs a CPU quota)" if group.unit == "fraction"
                   and "throttled" in group.title else "")
            ax.text(0.5, 0.5, f"no measurable values in this recording{why}",
                    transform=ax.transAxes, ha="center", va="center", fontsize=8,
                    color="#555555")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    top = axes[0]
    if len(spans) <= MAX_SPAN_LABELS:
        for span in spans:
            mid = seconds((span.start_ns + span.end_ns) // 2)
            top.annotate(span.label, (mid, 1.0), xycoords=("data", "axes fraction"),
                         ha="center", va="bottom", fontsize=6, color="#333333")
    for label, t_ns in instants:
        top.annotate(label, (seconds(t_ns), 1.0), xycoords=("data", "axes fraction"),
                     ha="left", va="bottom", fontsize=6, color="#333333")
    axes[-1].set_xlabel("seconds from the first row", fontsize=8)
    fig.suptitle(title or _title(samples, spans, gaps), fontsize=10, x=0.01, ha="left")
    return fig


def _title(samples: Samples, spans: Sequence[series_module.Span], gaps: Sequence[Gap]) -> str:
    o = samples.origin
    parts = [f"{len(samples):,} rows"]
    if len(samples) > 1:
        parts.append(f"{(samples.t_ns[-1] - samples.t_ns[0]) / 1e9:.1f} s")
    if spans:
        parts.append(f"{len(spans)} steps")
    if gaps:
        parts.append(f"{sum(g.rows for g in gaps):,} rows lost (hatched)")
    if o is None:
        return "pycgroup recording: " + ", ".join(parts)
    start = datetime.datetime.fromtimestamp(
        o.clock_anchor.to_realtime_ns(int(samples.t_ns[0])) / 1e9 if len(samples) else 0,
        datetime.timezone.utc)
    path = next(iter(sorted(set(o.cgroup_paths.values()), key=len, reverse=True)), "")
    return (f"pycgroup: pid {o.pid} on {o.hostname}, cgroup {o.cgroup_mode} {path}\n"
            f"{start:%Y-%m-%d %H:%M:%S} UTC, {1e9 / o.period_ns:g} Hz, " + ", ".join(parts))


def save_plot(recording: Union[Recording, Samples], path: PathLike,
              metrics: Collection[str] | None = None) -> int:
    """Renders a recording to path (.png, .svg or .html, by suffix); returns the number
    of panels."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: a plot's name must end in {', '.join(FORMATS)}")
    fig = figure(recording, metrics)
    if suffix == ".html":
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
        svg = buffer.getvalue()
        svg = svg[svg.index("<svg"):]  # the XML prologue does not belong inside HTML
        with open(path, "w") as f:
            f.write("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
                    f"{html.escape(os.path.basename(path))}</title></head><body>\n"
                    f"{svg}\n</body></html>\n")
    else:
        fig.savefig(path)
    return len(fig.axes)
