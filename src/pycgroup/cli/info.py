"""``pycgroup info``: the cgroup mode, paths, limits and usage of a process."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from typing import Any

from pycgroup import catalogue, gpu
from pycgroup.cgroup import CGroup, current, of_pid
from pycgroup.formats import MISSING
from pycgroup.iofiles import read_io
from pycgroup.limits import limits
from pycgroup.sampler import Sampler
from pycgroup.samples import Samples
from pycgroup.values import to_json

USAGE_METRICS = (
    "memory.current", "memory.working_set", "memory.peak", "memory.swap.current",
    "memory.events.max", "memory.events.oom_kill", "cpu.stat.usage_usec",
    "cpu.stat.nr_periods", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec",
    "cpu.pressure.some.total", "memory.pressure.some.total", "memory.pressure.full.total",
    "io.pressure.some.total", "pids.current", "proc.rss_bytes", "proc.utime_usec",
    "proc.stime_usec",
)


def _bytes(n: int | float | None) -> str:
    if n is None:
        return "unavailable"
    if math.isinf(n):
        return "unlimited"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _value(name: str, value: int | float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "unlimited"
    if name.endswith(("_bytes", "current", "working_set", "peak")) and "pids" not in name:
        return _bytes(value)
    if name.endswith(("_usec", ".total")):
        return f"{value / 1e6:.3f} s"
    return str(value)


def throttled_gaps(data: Samples) -> tuple[int, int | None]:
    """Returns how many gaps the sampler's own schedule has (rows more than two periods
    apart), and how many of them ``cpu.stat.nr_throttled`` grew across (None when it was
    not sampled). A sampler inside the cgroup is throttled with the work, so a gap that
    coincides with a throttled period is the quota stopping the sampler itself: direct
    evidence of throttling, whatever the counters' rates say."""
    gaps = data.gaps
    if "cpu.stat.nr_throttled" not in data:
        return len(gaps), None
    throttled = data["cpu.stat.nr_throttled"]
    before, after = throttled[gaps - 1], throttled[gaps]
    known = (before != MISSING) & (after != MISSING)
    return len(gaps), int((known & (after > before)).sum())


def summarise(cg: CGroup, seconds: float, hz: float = 1000.0) -> dict[str, Any]:
    """Returns what a sampler at hz saw over the next seconds."""
    sampler = Sampler(hz=hz, cgroup=cg)
    with sampler:
        time.sleep(seconds)
    data = sampler.data()
    stats = sampler.stats
    summary = dataclasses.asdict(data.throttling())
    gaps, gaps_throttled = throttled_gaps(data)
    summary.update(
        rows=len(data),
        gaps=gaps,
        gaps_while_throttled=gaps_throttled,
        memory_current_peak_bytes=data.peak("memory.current"),
        memory_working_set_peak_bytes=data.peak("memory.working_set"),
        lateness_p99_us=stats.lateness_p99_us,
        read_errors=stats.read_errors,
    )
    sampler.close()
    return summary


def gather(pid: int | None = None, procfs: str = "/proc", rootfs: str = "/",
           seconds: float = 1.0) -> dict[str, Any]:
    """Returns what ``pycgroup info`` shows, as plain data (``math.inf`` for unlimited)."""
    cg = current(procfs, rootfs) if pid is None else of_pid(pid, procfs, rootfs)
    with cg:
        lim = limits(cg)
        usage = cg.read(USAGE_METRICS)
        unavailable = {n: cg.explain(n) for n, v in usage.items() if v is None}
        summary = summarise(cg, seconds) if seconds > 0 else None
    io_stat = None
    if catalogue.version_for(cg.paths, "io") == "v2":
        io_stat = read_io(cg.paths["unified"], catalogue.IO_STAT.name)
    return {
        "mode": cg.mode,
        "paths": dict(cg.paths),
        "problems": list(cg.problems),
        "limits": dataclasses.asdict(lim),
        "io_stat": io_stat,
        "usage": usage,
        "unavailable": unavailable,
        "sampled": summary,
        "gpu": gpu_info(),
    }


def gpu_info() -> dict[str, Any]:
    """Returns whether GPU metrics can be read, why not, and the GPUs this process sees."""
    reason = gpu.unavailable_reason()
    devices: list[dict[str, Any]] = []
    if reason is None:
        for n, index in enumerate(gpu.visible_devices()):
            if isinstance(index, str):
                devices.append({"name": f"gpu{n}", "unsupported": index})
            else:
                devices.append({"name": f"gpu{n}", "nvml_index": index,
                                "uuid": gpu.nvml().uuid(index)})
    return {"available": reason is None, "reason": reason, "devices": devices}


def format_text(info: dict[str, Any]) -> str:
    """Returns the human-readable report of gather()."""
    lim = info["limits"]
    lines = [f"cgroup mode   {info['mode']}"]
    if info["mode"] == "none":
        lines.append("              not in a cgroup: no cgroup hierarchy is mounted here"
                     if not info["problems"] else
                     "              in a cgroup, but none of its hierarchies can be read here")
    for name, path in sorted(info["paths"].items()):
        lines.append(f"  {name:<11} {path}")
    lines += [f"  problem: {p}" for p in info["problems"]]
    cores = lim["cpu_quota_cores"]
    weight = lim["cpu_weight"]
    if weight is not None and lim["cpu_shares"] is not None:
        weight = f"{weight} (cpu.shares {lim['cpu_shares']})"
    lines += [
        "",
        "limits",
        f"  memory      {_bytes(lim['memory_max_bytes'])} (high {_bytes(lim['memory_high_bytes'])})",
        f"  host memory {_bytes(lim['host_memory_bytes'])}; effective "
        f"{_bytes(lim['effective_memory_bytes'])}",
        # The cgroup's allowance is not what can be swapped: a host without swap has none.
        f"  swap        usable {_bytes(lim['effective_swap_bytes'])} (cgroup allowance "
        f"{_bytes(lim['swap_max_bytes'])}, host {_bytes(lim['host_swap_bytes'])})",
        f"  protection  low {_bytes(lim['memory_low_bytes'])}, min "
        f"{_bytes(lim['memory_min_bytes'])}, v1 soft limit "
        f"{_bytes(lim['memory_soft_limit_bytes'])}",
        f"  cpu quota   {_cores(cores)}; cpuset {','.join(map(str, lim['cpuset_cpus']))}",
        f"  cpus        {lim['effective_cpus']:g} effective -> cpu_count {lim['cpu_count']}",
        f"  cpu weight  {'unavailable' if weight is None else weight}",
        f"  pids        {_count(lim['pids_max'])}",
    ]
    for device, values in sorted(lim["io_max"].items()):
        lines.append(f"  io {device:<8} " + " ".join(
            f"{k} {_count(v)}" for k, v in values.items()))
    lines += [f"  problem: {p}" for p in lim["problems"] if p not in info["problems"]]
    if info.get("io_stat"):
        lines += ["", "io"]
        for device, values in sorted(info["io_stat"].items()):
            lines.append(f"  {device:<10} " + " ".join(f"{k} {v}" for k, v in values.items()))
    lines += ["", "usage"]
    for name, value in info["usage"].items():
        lines.append(f"  {name:<27} {_value(name, value)}")
    if info["sampled"] is not None:
        lines += ["", *_format_summary(info["sampled"])]
    g = info["gpu"]
    lines += ["", "gpus"]
    if not g["available"]:
        lines.append(f"  unavailable: {g['reason']}")
    for d in g["devices"]:
        lines.append(f"  {d['name']:<11} {d.get('uuid') or d.get('unsupported')}")
    return "\n".join(lines)


def _cores(cores: float | None) -> str:
    if cores is None:
        return "unavailable"
    return "unlimited" if math.isinf(cores) else f"{cores:g} cores"


def _count(n: int | float | None) -> str:
    if n is None:
        return "unavailable"
    return "unlimited" if math.isinf(n) else str(n)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _per_second(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _gaps(gaps: int, while_throttled: int | None) -> str:
    # The sampler runs in the cgroup it samples: a quota stops it with the work.
    if not while_throttled:
        return str(gaps)
    return f"{gaps}, {while_throttled} across throttled periods (the quota stopped it too)"


def _format_summary(s: dict[str, Any]) -> list[str]:
    cores = "-" if s["cpu_cores_used"] is None else f"{s['cpu_cores_used']:.3f}"
    limit = s["cpu_limit_cores"]
    psi = " ".join(f"{k[4:]} {_fraction(s[k])}" for k in
                   ("psi_cpu_some", "psi_memory_some", "psi_memory_full", "psi_io_some")
                   if s[k] is not None)
    return [
        f"sampled for {s['interval_s']:.2f} s at 1 kHz ({s['rows']} rows, "
        f"p99 lateness {s['lateness_p99_us']:.0f} µs)",
        f"  cpu cores used     {cores} of "
        f"{'unlimited' if limit is None or math.isinf(limit) else f'{limit:g}'}",
        # The kernel counts throttled time once per CPU the cgroup was throttled on, so
        # this is a rate (up to the number of CPUs), not a fraction of the time.
        f"  cpu throttled      {_fraction(s['cpu_throttled_fraction'])} of periods, "
        f"{_per_second(s['cpu_throttled_seconds_per_second'])} s throttled per s "
        "(summed over CPUs)",
        f"  sampler gaps       {_gaps(s['gaps'], s['gaps_while_throttled'])}",
        f"  memory peak        {_bytes(s['memory_current_peak_bytes'])} "
        f"(working set {_bytes(s['memory_working_set_peak_bytes'])}); headroom "
        f"{_bytes(s['memory_headroom_bytes'])}",
        f"  pressure stalls    {psi or '- (needs cgroup v2)'}",
    ]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``info`` to the subcommands of the pycgroup command."""
    info = commands.add_parser("info", help="show the cgroup mode, paths, limits and usage")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    info.add_argument("--pid", type=int,
                      help="another process (default: this one); on the host, a container's "
                      "process by its host PID")
    info.add_argument("--seconds", type=float, default=1.0,
                      help="sample at 1 kHz for this long (default: 1; 0: do not sample)")
    info.add_argument("--procfs", default="/proc", help="where procfs is (default: /proc)")
    info.add_argument("--rootfs", default="/",
                      help="the root the cgroup mounts are under (default: /); with --pid, "
                      "/proc/<pid>/root shows a container's own view from the host")
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints what ``pycgroup info`` shows; returns the exit status."""
    try:
        data = gather(args.pid, args.procfs, args.rootfs, args.seconds)
    except OSError as e:
        print(f"pycgroup: {e}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(data), indent=2) if args.json else format_text(data))
    return 0
