"""The pycgroup command: ``pycgroup info [--json] [--pid PID]``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from pycgroup.cgroup import current, of_pid
from pycgroup.limits import limits

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


def gather(pid=None, procfs="/proc", rootfs="/") -> dict:
    """Returns what ``pycgroup info`` shows, as plain data."""
    cg = current(procfs, rootfs) if pid is None else of_pid(pid, procfs, rootfs)
    with cg:
        lim = limits(cg)
        usage = cg.read(USAGE_METRICS)
        unavailable = {n: cg.explain(n) for n, v in usage.items() if v is None}
    return {
        "mode": cg.mode,
        "paths": dict(cg.paths),
        "problems": list(cg.problems),
        "limits": dataclasses.asdict(lim),
        "usage": usage,
        "unavailable": unavailable,
    }


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
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pycgroup", description="What a process's cgroups allow it, and what it uses.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show the cgroup mode, paths, limits and usage")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    info.add_argument("--pid", type=int, help="another process (default: this one)")
    info.add_argument("--procfs", default="/proc", help="where procfs is (default: /proc)")
    info.add_argument("--rootfs", default="/",
                      help="the root the cgroup mounts are under (default: /)")
    args = parser.parse_args(argv)
    try:
        data = gather(args.pid, args.procfs, args.rootfs)
    except OSError as e:
        print(f"pycgroup: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if args.json else format_text(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
