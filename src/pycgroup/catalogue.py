"""The metric catalogue: canonical cgroup-v2-style names, and the file each one is read
from on cgroup v1 and v2, with units normalised (bytes, microseconds, counts).

Kernel references: Documentation/admin-guide/cgroup-v2.rst (v2 files),
Documentation/admin-guide/cgroup-v1/memory.rst and cpuacct.rst (v1 files),
Documentation/scheduler/sched-bwc.rst (CFS bandwidth), Documentation/accounting/psi.rst.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence, Union

from pycgroup import gpu, iofiles
from pycgroup.errors import UnknownMetric
from pycgroup.formats import Format
from pycgroup.sources import Derived, ProcessClock, Source, Unavailable

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: An unlimited v1 memory.limit_in_bytes: LONG_MAX rounded down to a page (mm/memcontrol.c).
V1_MEMORY_UNLIMITED = (2**63 - 1) // PAGE_SIZE * PAGE_SIZE

COUNTER = "counter"  # only goes up; deltas and rates make sense
GAUGE = "gauge"  # a level: current usage, a limit


@dataclass(frozen=True)
class _File:
    """A catalogue entry's file on one cgroup version."""

    controller: str  # the hierarchy it lives in; "unified" for v2-only files
    name: str
    format: Format = Format.VALUE
    key: str = ""
    div: int = 1
    unlimited_at: int = 0


@dataclass(frozen=True)
class _Derive:
    """A catalogue entry computed from other metrics on one cgroup version."""

    inputs: tuple[str, ...]
    compute: Callable[..., Union[int, float, None]]
    note: str


def shares_to_weight(shares: int | float | None) -> int | None:
    """Returns the cgroup v2 cpu.weight (1-10000) of a v1 cpu.shares value (2-262144), by the
    conversion runc, crun and the kubelet use: 1 + (shares - 2) * 9999 / 262142, in integers;
    None for None."""
    if shares is None or math.isinf(shares):
        return None
    shares = min(max(int(shares), 2), 262144)
    return 1 + (shares - 2) * 9999 // 262142


def swap_of_memsw(memsw: int | float | None, memory: int | float | None) -> int | float | None:
    """Returns v1's swap allowance: memory+swap limit - memory limit (the kernel keeps
    memsw >= memory), UNLIMITED when memsw is unlimited, None when either is unavailable."""
    if memsw is None or memory is None:
        return None
    if math.isinf(memsw):
        return math.inf
    if math.isinf(memory):
        return None  # the kernel refuses this; nothing sensible to report
    return max(0, int(memsw) - int(memory))


_FLAT = Format.FLAT_KEYED
_V1_NO_HIGH = "cgroup v1 has no memory.high"
_V1_NO_LOW = "cgroup v1 has no memory.low"
_PSI_V1 = "per-cgroup pressure stall information needs cgroup v2"

#: name -> (kind, v2 file or why v2 lacks it, v1 file, derivation or why v1 lacks it)
TABLE: dict[str, tuple[str, Union[_File, str], Union[_File, _Derive, str]]] = {
    "memory.current": (GAUGE, _File("memory", "memory.current"),
                       _File("memory", "memory.usage_in_bytes")),
    "memory.max": (GAUGE, _File("memory", "memory.max"),
                   _File("memory", "memory.limit_in_bytes", unlimited_at=V1_MEMORY_UNLIMITED)),
    "memory.high": (GAUGE, _File("memory", "memory.high"), _V1_NO_HIGH),
    "memory.low": (GAUGE, _File("memory", "memory.low"), _V1_NO_LOW),
    "memory.min": (GAUGE, _File("memory", "memory.min"), "cgroup v1 has no memory.min"),
    # --memory-reservation: memory.soft_limit_in_bytes on v1, memory.low on v2 (runc).
    "memory.soft_limit": (GAUGE, "cgroup v2 has no soft limit (memory.low is its counterpart)",
                          _File("memory", "memory.soft_limit_in_bytes",
                                unlimited_at=V1_MEMORY_UNLIMITED)),
    "memory.swap.max": (GAUGE, _File("memory", "memory.swap.max"),
                        _Derive(("memory.memsw.max", "memory.max"), swap_of_memsw,
                                "memory.memsw.max - memory.max")),
    "memory.memsw.max": (GAUGE, "cgroup v2 limits swap alone (memory.swap.max)",
                         _File("memory", "memory.memsw.limit_in_bytes",
                               unlimited_at=V1_MEMORY_UNLIMITED)),
    # memory.peak: since Linux 5.19 on v2.
    "memory.peak": (GAUGE, _File("memory", "memory.peak"),
                    _File("memory", "memory.max_usage_in_bytes")),
    "memory.swap.current": (GAUGE, _File("memory", "memory.swap.current"),
                            _File("memory", "memory.stat", _FLAT, "total_swap")),
    "memory.events.low": (COUNTER, _File("memory", "memory.events", _FLAT, "low"), _V1_NO_LOW),
    "memory.events.high": (COUNTER, _File("memory", "memory.events", _FLAT, "high"),
                           _V1_NO_HIGH),
    # v1 failcnt counts the charges that hit the limit, as v2's "max" event does.
    "memory.events.max": (COUNTER, _File("memory", "memory.events", _FLAT, "max"),
                          _File("memory", "memory.failcnt")),
    "memory.events.oom": (COUNTER, _File("memory", "memory.events", _FLAT, "oom"),
                          "cgroup v1 does not count OOM events (memory.oom_control has "
                          "only the under_oom state)"),
    # v1 oom_kill in memory.oom_control: since Linux 4.13.
    "memory.events.oom_kill": (COUNTER, _File("memory", "memory.events", _FLAT, "oom_kill"),
                               _File("memory", "memory.oom_control", _FLAT, "oom_kill")),
    "cpu.stat.usage_usec": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "usage_usec"),
                            _File("cpuacct", "cpuacct.usage", div=1000)),
    # v1 cpuacct.usage_user and usage_sys: since Linux 4.7, in ns.
    "cpu.stat.user_usec": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "user_usec"),
                           _File("cpuacct", "cpuacct.usage_user", div=1000)),
    "cpu.stat.system_usec": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "system_usec"),
                             _File("cpuacct", "cpuacct.usage_sys", div=1000)),
    "cpu.stat.nr_periods": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "nr_periods"),
                            _File("cpu", "cpu.stat", _FLAT, "nr_periods")),
    "cpu.stat.nr_throttled": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "nr_throttled"),
                              _File("cpu", "cpu.stat", _FLAT, "nr_throttled")),
    "cpu.stat.throttled_usec": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "throttled_usec"),
                                _File("cpu", "cpu.stat", _FLAT, "throttled_time", div=1000)),
    # nr_bursts and burst_usec (v1 burst_time): since Linux 5.14.
    "cpu.stat.nr_bursts": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "nr_bursts"),
                           _File("cpu", "cpu.stat", _FLAT, "nr_bursts")),
    "cpu.stat.burst_usec": (COUNTER, _File("cpu", "cpu.stat", _FLAT, "burst_usec"),
                            _File("cpu", "cpu.stat", _FLAT, "burst_time", div=1000)),
    "cpu.max.quota_usec": (GAUGE, _File("cpu", "cpu.max", Format.CPU_MAX, "quota"),
                           _File("cpu", "cpu.cfs_quota_us", Format.QUOTA_V1)),
    "cpu.max.period_usec": (GAUGE, _File("cpu", "cpu.max", Format.CPU_MAX, "period"),
                            _File("cpu", "cpu.cfs_period_us")),
    # cpu.weight 1-10000 (default 100); v1 cpu.shares 2-262144 (default 1024).
    "cpu.weight": (GAUGE, _File("cpu", "cpu.weight"),
                   _Derive(("cpu.shares",), shares_to_weight,
                           "1 + (cpu.shares - 2) * 9999 / 262142, as runc converts it")),
    "cpu.shares": (GAUGE, "cgroup v2 has cpu.weight instead", _File("cpu", "cpu.shares")),
    "pids.current": (GAUGE, _File("pids", "pids.current"), _File("pids", "pids.current")),
    "pids.max": (GAUGE, _File("pids", "pids.max"), _File("pids", "pids.max")),
}
for _resource in ("cpu", "memory", "io"):
    for _line in ("some", "full"):
        TABLE[f"{_resource}.pressure.{_line}.total"] = (
            COUNTER, _File("unified", f"{_resource}.pressure", Format.PSI, _line), _PSI_V1)

#: The memory.stat keys of cgroup-v2.rst; a v2 file may hold more, and those work too.
V2_MEMORY_STAT_KEYS = (
    "anon file kernel kernel_stack pagetables sec_pagetables percpu sock vmalloc shmem zswap "
    "zswapped file_mapped file_dirty file_writeback swapcached anon_thp file_thp shmem_thp "
    "inactive_anon active_anon inactive_file active_file unevictable slab_reclaimable "
    "slab_unreclaimable slab workingset_refault_anon workingset_refault_file "
    "workingset_activate_anon workingset_activate_file workingset_restore_anon "
    "workingset_restore_file workingset_nodereclaim pswpin pswpout pgscan pgsteal "
    "pgscan_kswapd pgscan_direct pgscan_khugepaged pgsteal_kswapd pgsteal_direct "
    "pgsteal_khugepaged pgfault pgmajfault pgrefill pgactivate pgdeactivate pglazyfree "
    "pglazyfreed zswpin zswpout zswpwb thp_fault_alloc thp_collapse_alloc thp_swpout "
    "thp_swpout_fallback numa_pages_migrated numa_pte_updates numa_hint_faults "
    "pgdemote_kswapd pgdemote_direct pgdemote_khugepaged hugetlb"
).split()

#: v2 memory.stat key -> the hierarchical v1 key with the same meaning.
V1_MEMORY_STAT_KEYS = {
    "anon": "total_rss",
    "file": "total_cache",
    "shmem": "total_shmem",
    "file_mapped": "total_mapped_file",
    "file_dirty": "total_dirty",
    "file_writeback": "total_writeback",
    "swapcached": "total_swapcached",
    "anon_thp": "total_rss_huge",
    "inactive_anon": "total_inactive_anon",
    "active_anon": "total_active_anon",
    "inactive_file": "total_inactive_file",
    "active_file": "total_active_file",
    "unevictable": "total_unevictable",
    "pgfault": "total_pgfault",
    "pgmajfault": "total_pgmajfault",
    "workingset_refault_anon": "total_workingset_refault_anon",
    "workingset_refault_file": "total_workingset_refault_file",
    "workingset_activate_anon": "total_workingset_activate_anon",
    "workingset_activate_file": "total_workingset_activate_file",
    "workingset_restore_anon": "total_workingset_restore_anon",
    "workingset_restore_file": "total_workingset_restore_file",
    "workingset_nodereclaim": "total_workingset_nodereclaim",
}
_MEMORY_STAT_COUNTER_PREFIXES = ("pg", "pswp", "workingset_", "zswp", "thp_", "numa_")

PROCESS_AND_HOST: dict[str, tuple[str, str | None, Format | None, str, int, int]] = {
    # /proc/<pid>/stat fields (proc(5)): 14 utime and 15 stime in clock ticks, 24 rss in pages.
    "proc.utime_usec": (COUNTER, "stat", Format.PID_STAT, "14", 1_000_000, CLOCK_TICKS),
    "proc.stime_usec": (COUNTER, "stat", Format.PID_STAT, "15", 1_000_000, CLOCK_TICKS),
    "proc.rss_bytes": (GAUGE, "stat", Format.PID_STAT, "24", PAGE_SIZE, 1),
    # For the sampler's own process these and the two below come from clocks (see
    # PROCESS_CLOCKS); for another pid proc.cpu_usec has no file, and the peak RSS is
    # /proc/<pid>/status VmHWM (kB, converted to bytes by the parser).
    "proc.cpu_usec": (COUNTER, None, None, "", 1, 1),
    "proc.max_rss_bytes": (GAUGE, "status", Format.COLON_KEYED, "VmHWM", 1, 1),
    # /proc/meminfo values are in kB; the parser converts them to bytes.
    "host.mem.total": (GAUGE, "meminfo", Format.COLON_KEYED, "MemTotal", 1, 1),
    "host.mem.available": (GAUGE, "meminfo", Format.COLON_KEYED, "MemAvailable", 1, 1),
    "host.mem.free": (GAUGE, "meminfo", Format.COLON_KEYED, "MemFree", 1, 1),
    "host.swap.total": (GAUGE, "meminfo", Format.COLON_KEYED, "SwapTotal", 1, 1),
    "host.swap.free": (GAUGE, "meminfo", Format.COLON_KEYED, "SwapFree", 1, 1),
}

#: v1 memory.stat keys that hold the tightest limit of the whole ancestry, including the
#: ancestors above a container's mount root (cgroup-v1/memory.rst, 5.2 stat file).
V1_HIERARCHICAL = {
    "memory.max": _File("memory", "memory.stat", _FLAT, "hierarchical_memory_limit",
                        unlimited_at=V1_MEMORY_UNLIMITED),
    "memory.memsw.max": _File("memory", "memory.stat", _FLAT, "hierarchical_memsw_limit",
                              unlimited_at=V1_MEMORY_UNLIMITED),
}
#: The CPUs a cgroup may run on, a kernel cpu list: (v2 file, v1 file).
CPUSET_EFFECTIVE = (_File("cpuset", "cpuset.cpus.effective"),
                    _File("cpuset", "cpuset.effective_cpus"))
#: The per-device I/O limit and statistics files (cgroup v2 only; one "MAJ:MIN key=value
#: ..." line per device): cgroup-v2.rst "IO Interface Files".
IO_MAX = _File("io", "io.max")
IO_STAT = _File("io", "io.stat")
#: A pure cgroup v2 root has no memory.current (nor memory.peak, memory.events,
#: pids.current): there its usage is MemTotal - MemFree, as runc, cAdvisor and the kubelet
#: derive it.
ROOT_MEMORY_CURRENT = _Derive(("host.mem.total", "host.mem.free"),
                              lambda total, free: None if total is None or free is None
                              else max(0, total - free),
                              "/proc/meminfo MemTotal - MemFree: the v2 root cgroup has no "
                              "memory.current, so its usage is derived as runc, cAdvisor and "
                              "the kubelet do")
ROOT_SWAP_CURRENT = _Derive(("host.swap.total", "host.swap.free"),
                            lambda total, free: None if total is None or free is None
                            else max(0, total - free),
                            "/proc/meminfo SwapTotal - SwapFree: the v2 root cgroup has no "
                            "memory.swap.current")


def root_pressure(procfs: str, resource: str, line: str) -> Source:
    """Returns the system-wide PSI file that stands in for a v2 root's missing
    <resource>.pressure: /proc/pressure/<resource> (Documentation/accounting/psi.rst)."""
    return Source(os.path.join(procfs, "pressure", resource), Format.PSI, line, 1, 1, 0, "")

#: Process metrics read from the calling process's own CPU clocks, ns-precise where
#: /proc/self/stat counts 10 ms ticks (when the cgroup is the caller's and procfs is /proc).
PROCESS_CLOCKS = {
    "proc.cpu_usec": "cpu_usec",  # clock_gettime(CLOCK_PROCESS_CPUTIME_ID): all threads
    "proc.utime_usec": "utime_usec",  # getrusage(RUSAGE_SELF)
    "proc.stime_usec": "stime_usec",
    "proc.max_rss_bytes": "max_rss_bytes",
}
WORKING_SET = "memory.working_set"
WORKING_SET_INPUTS = ("memory.current", "memory.stat.inactive_file")
MEMORY_STAT_PREFIX = "memory.stat."


def static_names() -> list[str]:
    """Returns every canonical name that does not depend on a particular file's keys."""
    return sorted([*TABLE, WORKING_SET, *PROCESS_AND_HOST,
                   *(MEMORY_STAT_PREFIX + k for k in V2_MEMORY_STAT_KEYS)])


def kind(name: str) -> str:
    """Returns COUNTER or GAUGE for a canonical name."""
    gpu_name = gpu.NAME.fullmatch(name)
    if gpu_name and gpu_name[2] in gpu.METRICS:
        return COUNTER if gpu_name[2] in gpu.COUNTERS else GAUGE
    if name in TABLE:
        return TABLE[name][0]
    if name in PROCESS_AND_HOST:
        return PROCESS_AND_HOST[name][0]
    io_name = iofiles.NAME.fullmatch(name)
    if io_name:
        return COUNTER if io_name[1] == "stat" else GAUGE
    if name.startswith(MEMORY_STAT_PREFIX):
        key = name[len(MEMORY_STAT_PREFIX):]
        return COUNTER if key.startswith(_MEMORY_STAT_COUNTER_PREFIXES) else GAUGE
    if name == WORKING_SET:
        return GAUGE
    raise unknown_metric(name)


def unknown_metric(name: str, extra: Sequence[str] = ()) -> UnknownMetric:
    """Returns the UnknownMetric (a KeyError) for a name that is not in the catalogue, naming close matches."""
    gpu_names = [f"gpu0.{m}" for m in gpu.METRICS]
    close = difflib.get_close_matches(name, [*static_names(), *gpu_names, *extra], n=3,
                                      cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownMetric(f"unknown metric {name!r}{hint}")


def _source_in(paths: dict[str, str], version: str, spec: _File,
               key: str | None = None) -> Source:
    return source_at(paths[spec.controller if version == "v1" else "unified"], spec, version,
                     key)


def source_at(directory: str, spec: _File, version: str, key: str | None = None) -> Source:
    """Returns the Source of a catalogue file in one cgroup directory."""
    return Source(os.path.join(directory, spec.name), spec.format,
                  spec.key if key is None else key, 1, spec.div, spec.unlimited_at, version)


def file_of(name: str, version: str) -> _File | None:
    """Returns the file that holds a cgroup metric on "v1" or "v2", or None where that
    version has no file for it (unavailable there, or derived from other metrics)."""
    if name not in TABLE:
        raise unknown_metric(name)
    spec = TABLE[name][1 if version == "v2" else 2]
    return spec if isinstance(spec, _File) else None


def controller_of(name: str) -> str:
    """Returns the controller whose hierarchy holds a cgroup metric ("unified" for the
    files only cgroup v2 has)."""
    _, v2, v1 = TABLE[name]
    return v2.controller if isinstance(v2, _File) else v1.controller  # type: ignore[union-attr]


def version_for(paths: dict[str, str], controller: str) -> str | None:
    """Returns "v1" when the controller has a v1 hierarchy, else "v2" when there is a
    cgroup2 directory, else None."""
    return _version_for(paths, controller)


def _version_for(paths: dict[str, str], controller: str) -> str | None:
    """Returns "v1" when the controller has a v1 hierarchy, else "v2" when there is a
    cgroup2 directory, else None."""
    if controller != "unified" and controller in paths:
        return "v1"
    return "v2" if "unified" in paths else None


def _resolve_io(paths: dict[str, str], file: str, device: str,
                key: str) -> "Derived | Unavailable":
    """Returns how io.max.<MAJ:MIN>.<key> or io.stat.<MAJ:MIN>.<key> is read: in read(),
    by parsing the file (its one-line-per-device layout is not a row reader format)."""
    if _version_for(paths, "io") != "v2":
        return Unavailable("cgroup v1 has blkio.throttle.* files instead of io.max and "
                           "io.stat, which pycgroup does not read" if paths else
                           "no cgroup2 hierarchy is mounted")
    spec = IO_MAX if file == "max" else IO_STAT
    directory = paths["unified"]

    def value() -> int | float | None:
        devices = iofiles.read_io(directory, spec.name)
        return None if devices is None else devices.get(device, {}).get(key)

    return Derived((), value, f"{os.path.join(directory, spec.name)} device {device} "
                              f"key {key!r}")


def io_names(paths: dict[str, str]) -> list[str]:
    """Returns the io.max.* and io.stat.* names of the devices and keys the files hold."""
    if _version_for(paths, "io") != "v2":
        return []
    names = []
    for spec in (IO_MAX, IO_STAT):
        try:
            devices = iofiles.read_io(paths["unified"], spec.name) or {}
        except (OSError, ValueError):
            devices = {}
        names += [f"{spec.name}.{d}.{k}" for d, values in devices.items() for k in values]
    return names


def resolve(name: str, paths: dict[str, str], procfs: str,
            pid: int | str) -> "Source | Derived | Unavailable | ProcessClock | gpu.GpuSource":
    """Returns where name is read for a process in the cgroups of paths; raises KeyError
    for a name the catalogue does not know. A memory.stat key outside the documented
    list is accepted and found missing if the file does not have it."""
    gpu_name = gpu.NAME.fullmatch(name)
    if gpu_name:
        if gpu_name[2] not in gpu.METRICS:
            raise unknown_metric(name)
        return gpu.resolve(int(gpu_name[1]), gpu_name[2])
    if name in PROCESS_CLOCKS and procfs == "/proc" and str(pid) in ("self", str(os.getpid())):
        return ProcessClock(PROCESS_CLOCKS[name])
    if name in PROCESS_AND_HOST:
        _, file, fmt, key, mul, div = PROCESS_AND_HOST[name]
        if file is None:
            return Unavailable(f"{name} is read for the sampler's own process only; for "
                               f"pid {pid} use proc.utime_usec + proc.stime_usec")
        assert fmt is not None  # an entry with a file has its format
        path = os.path.join(procfs, str(pid), file) if file in ("stat", "status") else (
            os.path.join(procfs, file))
        return Source(path, fmt, key, mul, div)
    if name == WORKING_SET:
        return Derived(WORKING_SET_INPUTS)
    io_name = iofiles.NAME.fullmatch(name)
    if io_name:
        return _resolve_io(paths, io_name[1], io_name[2], io_name[3])
    if name.startswith(MEMORY_STAT_PREFIX):
        key = name[len(MEMORY_STAT_PREFIX):]
        if not key or " " in key or "\n" in key:
            raise unknown_metric(name)
        version = _version_for(paths, "memory")
        if version is None:
            return Unavailable("no memory cgroup hierarchy is mounted")
        if version == "v1":
            if key not in V1_MEMORY_STAT_KEYS:
                return Unavailable(f"memory.stat key {key!r} has no cgroup v1 counterpart")
            key = V1_MEMORY_STAT_KEYS[key]
        return _source_in(paths, version, _File("memory", "memory.stat", _FLAT), key)
    if name not in TABLE:
        raise unknown_metric(name)
    _, v2, v1 = TABLE[name]
    controller = controller_of(name)
    version = _version_for(paths, controller)
    if version is None:
        if controller == "unified":
            return Unavailable(f"{v1} (no cgroup2 hierarchy is mounted)")
        return Unavailable(f"no {controller} cgroup hierarchy is mounted")
    if version == "v1":
        if isinstance(v1, str):
            return Unavailable(v1)
        if isinstance(v1, _Derive):
            return Derived(v1.inputs, v1.compute, v1.note)
        if v1.controller not in paths:
            return Unavailable(f"no {v1.controller} cgroup hierarchy is mounted")
        return _source_in(paths, "v1", v1)
    if isinstance(v2, str):
        return Unavailable(v2)
    return _source_in(paths, "v2", v2)


_GPU_UNITS = {"memory.used": "bytes", "memory.total": "bytes", "proc.memory.used": "bytes",
              "util.gpu": "percent", "util.memory": "percent", "power_mw": "mW",
              "energy_mj": "mJ", "temp_c": "degC", "clock.sm_mhz": "MHz",
              "clock.mem_mhz": "MHz", "clock_event_reasons": "bitmask"}


def unit(name: str) -> str:
    """Returns the unit of a canonical name's values: "bytes", "us", "ns", "count",
    "percent", "mW", "mJ", "degC", "MHz" or "bitmask"."""
    gpu_name = gpu.NAME.fullmatch(name)
    if gpu_name:
        metric = gpu_name[2]
        if metric not in gpu.METRICS:
            raise unknown_metric(name)
        return "ns" if metric.startswith("violation.") else _GPU_UNITS.get(metric, "count")
    kind(name)  # KeyError for an unknown name
    if name.endswith(("_usec", ".pressure.some.total", ".pressure.full.total")):
        return "us"
    if name.startswith(MEMORY_STAT_PREFIX):
        return "count" if kind(name) == COUNTER else "bytes"
    if name.startswith(("memory.events.", "cpu.stat.nr_", "pids.")):
        return "count"
    if name.startswith(("memory.", "host.mem.", "host.swap.")) or name.endswith("_bytes"):
        return "bytes"
    return "count"
