"""``pycgroup info``: the cgroup mode, paths, limits and usage of a process."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from pycgroup import gpu
from pycgroup.cgroup import current, of_pid
from pycgroup.limits import limits
from pycgroup.sampler import Sampler

USAGE_METRICS = (
    "memory.current", "memory.working_set", "memory.peak", "memory.swap.current",
    "memory.events.max", "memory.events.oom_kill", "cpu.stat.usage_usec",
    "cpu.stat.nr_periods", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec",
    "cpu.pressure.some.total", "memory.pressure.some.total", "memory.pressure.full.total",
    "io.pressure.some.total", "pids.current", "proc.rss_bytes", "proc.utime_usec",
    "proc.stime_usec",
)


def _bytes(n: int | None) -> str:
    if n is None:
        return "unlimited"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _value(name: str, value: int | None) -> str:
    if value is None:
        return "-"
    if name.endswith(("_bytes", "current", "working_set", "peak")) and "pids" not in name:
        return _bytes(value)
    if name.endswith(("_usec", ".total")):
        return f"{value / 1e6:.3f} s"
    return str(value)


def summarise(cg, seconds: float, hz: float = 1000.0) -> dict:
    """Returns what a sampler at hz saw over the next seconds."""
    sampler = Sampler(hz=hz, cgroup=cg)
    with sampler:
        time.sleep(seconds)
    data = sampler.data()
    stats = sampler.stats
    summary = dataclasses.asdict(data.throttling())
    summary.update(
        rows=len(data),
        memory_current_peak_bytes=data.peak("memory.current"),
        memory_working_set_peak_bytes=data.peak("memory.working_set"),
        period_error_p99_us=stats.period_error_p99_us,
        read_errors=stats.read_errors,
    )
    sampler.close()
    return summary


def gather(pid=None, procfs="/proc", rootfs="/", seconds: float = 1.0) -> dict:
    """Returns what ``pycgroup info`` shows, as plain data."""
    cg = current(procfs, rootfs) if pid is None else of_pid(pid, procfs, rootfs)
    with cg:
        lim = limits(cg)
        usage = cg.read(USAGE_METRICS)
        unavailable = {n: cg.explain(n) for n, v in usage.items() if v is None}
        summary = summarise(cg, seconds) if seconds > 0 else None
    return {
        "mode": cg.mode,
        "paths": dict(cg.paths),
        "problems": list(cg.problems),
        "limits": dataclasses.asdict(lim),
        "usage": usage,
        "unavailable": unavailable,
        "sampled": summary,
        "gpu": gpu_info(),
    }


def gpu_info() -> dict:
    """Returns whether GPU metrics can be read, why not, and the GPUs this process sees."""
    reason = gpu.unavailable_reason()
    devices = []
    if reason is None:
        for n, index in enumerate(gpu.visible_devices()):
            if isinstance(index, str):
                devices.append({"name": f"gpu{n}", "unsupported": index})
            else:
                devices.append({"name": f"gpu{n}", "nvml_index": index,
                                "uuid": gpu.nvml().uuid(index)})
    return {"available": reason is None, "reason": reason, "devices": devices}


def format_text(info: dict) -> str:
    """Returns the human-readable report of gather()."""
    lim = info["limits"]
    lines = [f"cgroup mode   {info['mode']}"]
    if info["mode"] == "none":
        lines.append("              not in a cgroup: no cgroup hierarchy is mounted here")
    for name, path in sorted(info["paths"].items()):
        lines.append(f"  {name:<11} {path}")
    lines += [f"  problem: {p}" for p in info["problems"]]
    cores = lim["cpu_quota_cores"]
    lines += [
        "",
        "limits",
        f"  memory      {_bytes(lim['memory_max_bytes'])} (high {_bytes(lim['memory_high_bytes'])},"
        f" swap {_bytes(lim['swap_max_bytes'])})",
        f"  host memory {_bytes(lim['host_memory_bytes'])}; effective "
        f"{_bytes(lim['effective_memory_bytes'])}",
        f"  cpu quota   {'unlimited' if cores is None else f'{cores:g} cores'}; cpuset "
        f"{','.join(map(str, lim['cpuset_cpus']))}",
        f"  cpus        {lim['effective_cpus']:g} effective -> cpu_count {lim['cpu_count']}",
        f"  pids        {lim['pids_max'] if lim['pids_max'] is not None else 'unlimited'}",
        "",
        "usage",
    ]
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


def _fraction(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _format_summary(s: dict) -> list:
    cores = "-" if s["cpu_cores_used"] is None else f"{s['cpu_cores_used']:.3f}"
    limit = s["cpu_limit_cores"]
    psi = " ".join(f"{k[4:]} {_fraction(s[k])}" for k in
                   ("psi_cpu_some", "psi_memory_some", "psi_memory_full", "psi_io_some")
                   if s[k] is not None)
    return [
        f"sampled for {s['interval_s']:.2f} s at 1 kHz ({s['rows']} rows, "
        f"p99 period error {s['period_error_p99_us']:.0f} µs)",
        f"  cpu cores used     {cores} of {'unlimited' if limit is None else f'{limit:g}'}",
        f"  cpu throttled      {_fraction(s['cpu_throttled_fraction'])} of periods, "
        f"{_fraction(s['cpu_throttled_seconds_per_second'])} of the time",
        f"  memory peak        {_bytes(s['memory_current_peak_bytes'])} "
        f"(working set {_bytes(s['memory_working_set_peak_bytes'])}); headroom "
        f"{_bytes(s['memory_headroom_bytes'])}",
        f"  pressure stalls    {psi or '- (needs cgroup v2)'}",
    ]


def add_parser(commands) -> None:
    """Adds ``info`` to the subcommands of the pycgroup command."""
    info = commands.add_parser("info", help="show the cgroup mode, paths, limits and usage")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    info.add_argument("--pid", type=int, help="another process (default: this one)")
    info.add_argument("--seconds", type=float, default=1.0,
                      help="sample at 1 kHz for this long (default: 1; 0: do not sample)")
    info.add_argument("--procfs", default="/proc", help="where procfs is (default: /proc)")
    info.add_argument("--rootfs", default="/",
                      help="the root the cgroup mounts are under (default: /)")
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints what ``pycgroup info`` shows; returns the exit status."""
    try:
        data = gather(args.pid, args.procfs, args.rootfs, args.seconds)
    except OSError as e:
        print(f"pycgroup: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if args.json else format_text(data))
    return 0
