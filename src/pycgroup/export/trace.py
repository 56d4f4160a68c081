"""Chrome trace event JSON (what Perfetto and chrome://tracing open): counter tracks for
cores used, throttled fraction, memory, pressure stalls and GPUs, and steps and marks as
slices; alone (``to_chrome_trace``) or added to a PyTorch profiler trace
(``merge_into_trace``).

Times: PyTorch's profiler (Kineto) writes ``baseTimeNanoseconds`` (CLOCK_REALTIME, ns)
and each event's ``ts`` as microseconds after it (torch/profiler/_chrome_trace_export.py:
``ts = (t_ns - base_ns) / 1000``). pycgroup rows are on CLOCK_MONOTONIC; the recording's
clock anchor (CLOCK_REALTIME and CLOCK_MONOTONIC read back to back) puts them on the same
wall clock. The trace event format: https://docs.google.com/document/d/
1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Collection, Union

import numpy as np

from pycgroup.export import series as series_module
from pycgroup.samples import Samples

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.export.files import PathLike, Recording
    from pycgroup.marks import Mark
    from pycgroup.steps import StepTable

#: One trace event (a JSON object).
Event = dict[str, Any]

CATEGORY = "pycgroup"
STEPS_TID = 1
COUNTERS_TID = 0


def _parts(recording_or_samples: Union[Recording, Samples]
           ) -> tuple[Samples, tuple[Mark, ...], StepTable | None]:
    """Returns (samples, marks, steps) of a Recording or a Samples."""
    if isinstance(recording_or_samples, Samples):
        return recording_or_samples, (), None
    r = recording_or_samples
    return r.samples, tuple(r.marks), r.steps


def events(recording_or_samples: Union[Recording, Samples], base_ns: int, pid: int,
           metrics: Collection[str] | None = None, window_ns: int | None = None,
           window: tuple[float, float] | None = None) -> list[Event]:
    """Returns the trace events of a recording: ``ts`` in µs after base_ns
    (CLOCK_REALTIME, or CLOCK_MONOTONIC when the rows have no clock anchor). ``window``
    (start, end) in µs keeps only events inside it."""
    samples, marks, steps = _parts(recording_or_samples)
    origin = samples.origin
    to_real: Callable[[NDArray[np.int64]], NDArray[np.int64]] = (
        origin.clock_anchor.to_realtime_ns if origin is not None else (lambda t: t))

    def ts(t_ns: int | NDArray[np.int64]) -> NDArray[np.float64]:
        return (to_real(np.asarray(t_ns, dtype=np.int64)) - base_ns) / 1000.0

    def inside(t_us: float) -> bool:
        return window is None or window[0] <= t_us <= window[1]

    where = "" if origin is None else f" of pid {origin.pid} on {origin.hostname}"
    out = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
         "args": {"name": f"pycgroup: cgroup{where}"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": COUNTERS_TID,
         "args": {"name": "counters"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": STEPS_TID,
         "args": {"name": "steps and marks"}},
    ]
    width = window_ns or series_module.window_ns(samples, points=20000, floor_s=0.001)
    for group in series_module.groups(samples, width, metrics):
        name = f"{group.title} ({group.unit})"
        rows: dict[float, dict[str, float]] = {}
        for s in group.series:
            for t, v in zip(ts(s.t_ns).tolist(), s.values.tolist()):
                if math.isfinite(v) and inside(t):
                    rows.setdefault(t, {})[s.name] = v
        for t in sorted(rows):
            out.append({"ph": "C", "name": name, "cat": CATEGORY, "pid": pid,
                        "tid": COUNTERS_TID, "ts": t, "args": rows[t]})
    spans, instants = series_module.spans(marks, steps)
    for span in spans:
        start, end = float(ts(span.start_ns)), float(ts(span.end_ns))
        if inside(start) and inside(end):
            out.append({"ph": "X", "name": span.label, "cat": CATEGORY, "pid": pid,
                        "tid": STEPS_TID, "ts": start, "dur": end - start})
    for label, t_ns in instants:
        t = float(ts(t_ns))
        if inside(t):
            out.append({"ph": "i", "s": "t", "name": label, "cat": CATEGORY, "pid": pid,
                        "tid": STEPS_TID, "ts": t})
    return out


def to_chrome_trace(recording_or_samples: Union[Recording, Samples], path: PathLike,
                    metrics: Collection[str] | None = None) -> None:
    """Writes a Recording (or Samples) as Chrome trace event JSON to path: one counter
    track per group (cores used, throttled fraction, memory, pressure stalls, GPU), and
    the steps/marks as slices on their own track. ``ts`` is in µs after
    ``baseTimeNanoseconds`` (the wall clock, as PyTorch's profiler writes it)."""
    samples, _, _ = _parts(recording_or_samples)
    base = 0
    if samples.origin is not None and len(samples):
        first = samples.origin.clock_anchor.to_realtime_ns(int(samples.t_ns[0]))
        base = first // 1_000_000_000 * 1_000_000_000
    pid = samples.origin.pid if samples.origin is not None else 1
    trace: dict[str, Any] = {"displayTimeUnit": "ms",
             "traceEvents": events(recording_or_samples, base, pid, metrics)}
    if samples.origin is not None:
        trace["baseTimeNanoseconds"] = base
    _write(path, trace)


def merge_into_trace(trace_json_path: PathLike, recording: Union[Recording, Samples],
                     out_path: PathLike, metrics: Collection[str] | None = None
                     ) -> dict[str, Any]:
    """Adds a recording's tracks to a PyTorch profiler trace (``export_chrome_trace``
    output, or any trace event JSON whose ``ts`` is wall-clock µs after
    ``baseTimeNanoseconds``, 0 when absent) and writes it to out_path. Keeps every
    original event; adds ours inside the profiled window only, as a process of its own.
    Returns the merged trace."""
    samples, _, _ = _parts(recording)
    if samples.origin is None:
        raise ValueError("merging needs a recording with a clock anchor (Samples from a "
                         "Sampler, or a file saved from them)")
    with open(trace_json_path) as f:
        trace: dict[str, Any] | list[Event] = json.load(f)
    if isinstance(trace, list):
        trace = {"traceEvents": trace}
    original = trace.get("traceEvents")
    if not isinstance(original, list):
        raise ValueError(f"{trace_json_path}: not a trace event file (no traceEvents list)")
    base = int(trace.get("baseTimeNanoseconds", 0))
    timed = [e for e in original if isinstance(e, dict) and "ts" in e and e.get("ph") != "M"]
    if not timed:
        raise ValueError(f"{trace_json_path}: the trace has no timed events to align with")
    start = min(float(e["ts"]) for e in timed)
    end = max(float(e["ts"]) + float(e.get("dur", 0)) for e in timed)
    pids = [e["pid"] for e in original if isinstance(e, dict) and isinstance(e.get("pid"), int)]
    pid = max(pids, default=0) + 1
    ours = events(recording, base, pid, metrics,
                  window_ns=max(1_000_000, int((end - start) * 1000 / 2000)),
                  window=(start, end))
    trace["traceEvents"] = original + ours
    _write(out_path, trace)
    return trace


def _write(path: PathLike, trace: dict[str, Any]) -> None:
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as f:
        json.dump(trace, f, allow_nan=False)
    os.replace(tmp, path)
