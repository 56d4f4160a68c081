"""Plain PyTorch: put pycgroup's counter tracks (cores used, CPU throttling, working set,
pressure stalls) into the traces that ``torch.profiler`` exports, so that a slow step in
the profiler's timeline sits next to what the container did meanwhile.

    sampler = pycgroup.Sampler(hz=1000).start()
    with torch.profiler.profile(schedule=torch.profiler.schedule(wait=1, warmup=1, active=3),
                                on_trace_ready=trace_handler(sampler, "traces")) as prof:
        for batch in loader:
            train_step(batch)
            prof.step()

Times: Kineto writes ``baseTimeNanoseconds`` (CLOCK_REALTIME, ns) and each event's
``ts`` in µs after it; pycgroup's rows are on CLOCK_MONOTONIC, mapped to the wall clock
by an offset read back to back (torch/profiler/_chrome_trace_export.py). The events
follow the trace event format (``"ph": "C"`` counters, ``"ph": "M"`` names)."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from pycgroup import catalogue
from pycgroup.samples import ClockAnchor, Samples
from pycgroup.integrations.ranks import rank_labels

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from torch.profiler import profile

    from pycgroup.export.files import PathLike
    from pycgroup.sampler import Sampler

#: At most this many counter events per track (rows are thinned evenly beyond it).
MAX_POINTS = 20_000


def realtime_offset_ns() -> int:
    """Returns CLOCK_REALTIME - CLOCK_MONOTONIC in ns, from the closest pair of readings."""
    anchor = ClockAnchor.now()
    return anchor.realtime_ns - anchor.monotonic_ns


def counter_tracks(samples: Samples) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Returns {track name: {series name: float array}} aligned with ``samples.t_ns``
    (a counter's rate is given at the later row of each interval; NaN where unknown)."""
    tracks: dict[str, dict[str, NDArray[np.float64]]] = {}
    n = len(samples)

    def rate(name: str, scale: float) -> NDArray[np.float64]:
        out = np.full(n, np.nan)
        if name in samples and n > 1:
            out[1:] = samples.rate(name) * scale
        return out

    if "cpu.stat.usage_usec" in samples:
        tracks["pycgroup: CPU (cores)"] = {"used": rate("cpu.stat.usage_usec", 1e-6)}
    if "cpu.stat.throttled_usec" in samples:
        tracks["pycgroup: CPU throttled (s/s)"] = {
            "throttled": rate("cpu.stat.throttled_usec", 1e-6)}
    if catalogue.WORKING_SET in samples:
        tracks["pycgroup: memory (bytes)"] = {
            "working set": samples.as_float(catalogue.WORKING_SET)}
    stalls = {name.replace(".pressure.", " ").replace(".total", ""): rate(name, 1e-6)
              for name in samples.columns if ".pressure." in name}
    if stalls:
        tracks["pycgroup: pressure stalls (s/s)"] = stalls
    return tracks


def merge_counters(trace_path: PathLike, sampler: Sampler,
                   out_path: PathLike | None = None) -> dict[str, Any]:
    """Adds the sampler's counter tracks over the trace's time span to a trace written
    by ``export_chrome_trace`` (as a process of its own, named with this cgroup and the
    RANK/LOCAL_RANK/WORLD_SIZE labels); writes it to out_path (default: in place) and
    returns it. Every original event is kept."""
    with open(trace_path) as f:
        trace: dict[str, Any] = json.load(f)
    original = trace["traceEvents"]
    timed = [e for e in original if "ts" in e and e.get("ph") != "M"]
    if not timed:
        raise ValueError(f"{trace_path}: the trace has no timed events to align with")
    base = int(trace.get("baseTimeNanoseconds", 0))
    offset = realtime_offset_ns() - base  # monotonic ns + offset = ns after base
    start_us = min(float(e["ts"]) for e in timed)
    end_us = max(float(e["ts"]) + float(e.get("dur", 0)) for e in timed)
    start_ns = int(start_us * 1000) - offset
    pid = max([e["pid"] for e in original if isinstance(e.get("pid"), int)], default=0) + 1
    labels = rank_labels()
    name = "pycgroup: " + (sampler.cgroup.paths.get("cpu") or sampler.cgroup.paths.get("unified")
                           or "cgroup")
    if "rank" in labels:
        name += " (rank {rank}{})".format(
            f" of {labels['world_size']}" if "world_size" in labels else "", **labels)
    events = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
               "args": {"name": f"{name} on {socket.gethostname()}"}},
              {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
               "args": {"sort_index": pid}}]
    if sampler.running:
        sampler.sample()  # a row just after the window, should the thread lag behind
    rows = sampler.data(since_ns=start_ns - sampler.period_ns * 2)
    ts = (rows.t_ns.astype(np.float64) + offset) / 1000.0
    # The rows inside the window, and the nearest on either side of it: a thread that
    # was not scheduled for the whole window still gives the tracks their values there.
    lo = max(int(np.searchsorted(ts, start_us, side="right")) - 1, 0)
    hi = int(np.searchsorted(ts, end_us, side="left")) + 1
    keep = np.arange(lo, min(hi, len(ts)))
    if len(keep) > MAX_POINTS:
        keep = keep[np.linspace(0, len(keep) - 1, MAX_POINTS).astype(np.int64)]
    for track, series in counter_tracks(rows).items():
        for i in keep:
            args = {k: float(v[i]) for k, v in series.items() if np.isfinite(v[i])}
            if args:
                events.append({"ph": "C", "name": track, "cat": "pycgroup", "pid": pid,
                               "tid": 0, "ts": float(ts[i]), "args": args})
    trace["traceEvents"] = original + events
    trace.setdefault("pycgroup", {}).update(labels)
    out_path = trace_path if out_path is None else out_path
    tmp = f"{os.fspath(out_path)}.tmp"
    with open(tmp, "w") as f:
        json.dump(trace, f)
    os.replace(tmp, out_path)
    return trace


class TraceHandler(Protocol):
    """An ``on_trace_ready`` callable; ``paths`` lists the traces it wrote."""

    paths: list[str]

    def __call__(self, prof: profile) -> None: ...


def trace_handler(sampler: Sampler, dir_name: str,
                  worker_name: str | None = None) -> TraceHandler:
    """Returns an ``on_trace_ready`` for ``torch.profiler.profile``: it exports each
    trace as ``<dir_name>/<worker>.<ns>.pt.trace.json`` (the names TensorBoard's profiler
    plugin reads, like ``torch.profiler.tensorboard_trace_handler``) and merges the
    sampler's counter tracks into it. ``worker`` defaults to host_pid, with the rank
    when RANK is set. A failure to merge is logged once; the trace is still written."""
    from pycgroup.integrations._meter import StepMeter

    warn = StepMeter(sampler)  # only its warn-once log
    os.makedirs(dir_name, exist_ok=True)
    if worker_name is None:
        labels = rank_labels()
        worker_name = f"{socket.gethostname()}_{os.getpid()}"
        if "rank" in labels:
            worker_name = f"rank{labels['rank']}_{worker_name}"

    def handler(prof: profile) -> None:
        path = os.path.join(dir_name, f"{worker_name}.{time.time_ns()}.pt.trace.json")
        prof.export_chrome_trace(path)
        try:
            merge_counters(path, sampler)
        except Exception as e:  # noqa: BLE001 - never into the training loop
            warn.warn_once("trace", "pycgroup: adding counters to %s failed (%s: %s)",
                           path, type(e).__name__, e)
        traced.paths.append(path)

    traced = cast(TraceHandler, handler)  # a function given the attribute below
    traced.paths = []
    return traced
