"""``pycgroup info``: the cgroup mode, paths, limits and usage of a process."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from typing import Any, Callable, Sequence

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


#: What the usage figures are, for a person: (label, how the value reads).
USAGE_LABELS = {
    "memory.current": "memory used",
    "memory.working_set": "working set",
    "memory.peak": "peak memory used",
    "memory.swap.current": "swap used",
    "memory.events.max": "memory limit reached",
    "memory.events.oom_kill": "OOM kills",
    "cpu.stat.usage_usec": "CPU time used",
    "cpu.stat.nr_periods": "CPU periods run",
    "cpu.stat.nr_throttled": "CPU periods throttled",
    "cpu.stat.throttled_usec": "time throttled",
    "cpu.pressure.some.total": "CPU stalls (some)",
    "memory.pressure.some.total": "memory stalls (some)",
    "memory.pressure.full.total": "memory stalls (full)",
    "io.pressure.some.total": "I/O stalls (some)",
    "pids.current": "processes and threads",
    "proc.rss_bytes": "resident memory (RSS)",
    "proc.utime_usec": "user CPU time",
    "proc.stime_usec": "system CPU time",
}
#: Limits that exist on one cgroup version only: field -> (file, the version it is on).
ONE_VERSION_ONLY = {
    "memory_high_bytes": ("memory.high", "v2"),
    "memory_low_bytes": ("memory.low", "v2"),
    "memory_min_bytes": ("memory.min", "v2"),
    "memory_soft_limit_bytes": ("memory.soft_limit_in_bytes", "v1"),
}


def format_text(info: dict[str, Any], who: str = "this process") -> str:
    """Returns the human-readable report of gather(): the cgroup (where it is, its
    limits, its usage), the host, what the process can use of both, and the process
    itself; who names the process."""
    lim = info["limits"]
    memory_version = catalogue.version_for(info["paths"], "memory")

    def limit(field: str, show: Callable[[Any], str] = _bytes) -> str:
        value = lim[field]
        if value is None and field in ONE_VERSION_ONLY and memory_version is not None:
            file, version = ONE_VERSION_ONLY[field]
            if memory_version != version:
                return f"does not exist on cgroup {memory_version} ({file} is {version} only)"
        return show(value)

    lines = [f"cgroup mode   {info['mode']}"]
    if info["mode"] == "none":
        lines.append("              not in a cgroup: no cgroup hierarchy is mounted here"
                     if not info["problems"] else
                     "              in a cgroup, but none of its hierarchies can be read here")
    for name, path in sorted(info["paths"].items()):
        lines.append(f"  {name:<11} {path}")
    lines += [f"  problem: {p}" for p in info["problems"]]
    weight = lim["cpu_weight"]
    if weight is not None and lim["cpu_shares"] is not None:
        weight = f"{weight} (cpu.shares {lim['cpu_shares']})"
    lines += [
        "",
        "limits of the cgroup (the tightest up its ancestry)",
        f"  memory limit   {limit('memory_max_bytes')}",
        f"  memory.high    {limit('memory_high_bytes')}",
        f"  swap limit     {limit('swap_max_bytes')}",
        f"  memory.low     {limit('memory_low_bytes')}",
        f"  memory.min     {limit('memory_min_bytes')}",
        f"  soft limit     {limit('memory_soft_limit_bytes')}",
        f"  cpu quota      {_cores(lim['cpu_quota_cores'])}",
        f"  cpu weight     {'unavailable' if weight is None else weight}",
        f"  pids limit     {_count(lim['pids_max'])}",
    ]
    for device, values in sorted(lim["io_max"].items()):
        lines.append(f"  io {device:<11} " + " ".join(
            f"{k} {_count(v)}" for k, v in values.items()))
    lines += [f"  problem: {p}" for p in lim["problems"] if p not in info["problems"]]
    lines += [
        "",
        "host",
        f"  memory         {_bytes(lim['host_memory_bytes'])}",
        f"  swap           {_bytes(lim['host_swap_bytes'])}",
        "",
        f"what {who} can use (the cgroup's limits on this host)",
        f"  memory         {_bytes(lim['effective_memory_bytes'])}",
        f"  swap           {_bytes(lim['effective_swap_bytes'])}",
        f"  cpus           {lim['effective_cpus']:g} (cpus {_cpu_list(lim['cpuset_cpus'])} of "
        f"the cpuset and affinity) -> cpu_count {lim['cpu_count']}",
    ]
    if info.get("io_stat"):
        lines += ["", "io of the cgroup"]
        for device, values in sorted(info["io_stat"].items()):
            lines.append(f"  {device:<10} " + " ".join(f"{k} {v}" for k, v in values.items()))
    usage = info["usage"]
    mine = [n for n in usage if n.startswith("proc.")]
    lines += ["", "usage of the cgroup"]
    lines += [_usage_line(n, usage[n]) for n in usage if n not in mine]
    if mine:
        lines += ["", f"{who} alone"]
        lines += [_usage_line(n, usage[n]) for n in mine]
    if info["sampled"] is not None:
        lines += ["", *_format_summary(info["sampled"])]
    g = info["gpu"]
    lines += ["", "gpus"]
    if not g["available"]:
        lines.append(f"  unavailable: {g['reason']}")
    for d in g["devices"]:
        lines.append(f"  {d['name']:<11} {d.get('uuid') or d.get('unsupported')}")
    return "\n".join(lines)


def _usage_line(name: str, value: int | float | None) -> str:
    return f"  {USAGE_LABELS.get(name, name):<22} {_value(name, value):<13} {name}".rstrip()


def _cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus)) or "none"


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


def _gaps(gaps: int, while_throttled: int | None) -> str:
    # The sampler runs in the cgroup it samples: a quota stops it with the work.
    if not while_throttled:
        return str(gaps)
    return f"{gaps}, {while_throttled} across throttled periods (the quota stopped it too)"


def _format_summary(s: dict[str, Any]) -> list[str]:
    limit = s["cpu_limit_cores"]
    quota = limit is not None and not math.isinf(limit)
    cores = "-" if s["cpu_cores_used"] is None else f"{s['cpu_cores_used']:.3f}"
    cores += f" of the {limit:g}-core quota" if quota else " (no quota)"
    per_second = s["cpu_throttled_seconds_per_second"]
    if s["cpu_throttled_fraction"] is not None:
        throttled = f"in {_fraction(s['cpu_throttled_fraction'])} of the CPU periods"
    elif quota:
        throttled = "no CPU period ended while sampling"
    else:
        throttled = "never: no CPU quota"
    if per_second is not None and (quota or s["cpu_throttled_fraction"] is not None):
        # The kernel counts throttled time once per CPU the cgroup was throttled on, so
        # the time is a rate (up to the number of CPUs), not a fraction of the time.
        throttled += f", {per_second:.3f} s throttled per s (summed over CPUs)"
    psi = ", ".join(f"{k[4:].replace('_', ' ')} {_fraction(s[k])}" for k in
                    ("psi_cpu_some", "psi_memory_some", "psi_memory_full", "psi_io_some")
                    if s[k] is not None)
    return [
        f"what a 1 kHz sampler saw over {s['interval_s']:.2f} s ({s['rows']} rows, "
        f"p99 lateness {s['lateness_p99_us']:.0f} µs)",
        f"  cpu cores used     {cores}",
        f"  cpu throttled      {throttled}",
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
    who = "this process" if args.pid is None else f"pid {args.pid}"
    print(json.dumps(to_json(data), indent=2) if args.json else format_text(data, who))
    return 0
