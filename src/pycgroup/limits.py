"""Container-aware limits: the tightest limit along a cgroup's ancestry, and the
smaller of that and what the host has."""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass

from pycgroup import catalogue
from pycgroup.backends import reader_class
from pycgroup.cgroup import CGroup, current
from pycgroup.formats import MISSING, UNLIMITED, Field, Format, SourceSpec


@dataclass(frozen=True)
class Limits:
    """What a process in a cgroup may really use. None means "no limit"."""

    memory_max_bytes: int | None  # tightest memory.max up the ancestry (None if >= host RAM)
    memory_high_bytes: int | None  # tightest memory.high (v2 only)
    swap_max_bytes: int | None
    host_memory_bytes: int  # MemTotal
    effective_memory_bytes: int  # min(host memory, memory_max_bytes)
    cpu_quota_cores: float | None  # tightest quota/period up the ancestry
    cpuset_cpus: tuple  # the effective cpuset ∩ sched_getaffinity
    effective_cpus: float  # min(cpu_quota_cores, len(cpuset_cpus))
    cpu_count: int  # ceil(effective_cpus), at least 1: size thread pools with this
    pids_max: int | None


def ancestry(cg: CGroup, controller: str) -> list[str]:
    """Returns the cgroup's directory and its ancestors up to its mount's root, leaf first."""
    leaf = cg.paths.get(controller)
    if leaf is None:
        return []
    root = cg.mount_roots.get(controller, leaf)
    dirs = [leaf]
    while dirs[-1] != root and dirs[-1].startswith(root.rstrip("/") + "/"):
        dirs.append(os.path.dirname(dirs[-1]))
    return dirs


def parse_cpu_list(text: str) -> tuple:
    """Returns the CPUs of a kernel cpu list such as "0-3,8,10-11"."""
    cpus = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return tuple(sorted(cpus))


class _Gather:
    """Collects single fields from many files, then reads them all in one pass."""

    def __init__(self):
        self.specs: dict = {}
        self.count = 0

    def add(self, path, fmt, key="", div=1, unlimited_at=0) -> int:
        fields = self.specs.setdefault((path, fmt), [])
        fields.append(Field(key, self.count, 1, div, unlimited_at))
        self.count += 1
        return self.count - 1

    def read(self, backend: str) -> list:
        specs = [SourceSpec(p, f, fields) for (p, f), fields in self.specs.items()]
        reader = reader_class(backend)(specs, self.count)
        for error in reader.open_errors().values():
            if error.errno not in (errno.ENOENT, errno.ENODEV):
                raise error
        row = reader.read()
        reader.close()
        return [None if v in (MISSING, UNLIMITED) else v for v in row]


def _tightest(values) -> int | None:
    limited = [v for v in values if v is not None]
    return min(limited) if limited else None


def _read_cpuset(cg: CGroup) -> tuple | None:
    if "cpuset" in cg.paths:
        path = os.path.join(cg.paths["cpuset"], "cpuset.effective_cpus")
    elif "unified" in cg.paths:
        path = os.path.join(cg.paths["unified"], "cpuset.cpus.effective")
    else:
        return None
    try:
        with open(path) as f:
            return parse_cpu_list(f.read())
    except FileNotFoundError:
        return None  # the cpuset controller is not enabled for this cgroup


def limits(cg: CGroup | None = None, backend: str = "native") -> Limits:
    """Returns the limits of cg (default: this process's cgroups)."""
    cg = cg if cg is not None else current()
    g = _Gather()
    host = g.add(os.path.join(cg.procfs, "meminfo"), Format.COLON_KEYED, "MemTotal")
    v1_memory = "memory" in cg.paths
    memory_dirs = ancestry(cg, "memory" if v1_memory else "unified")
    cpu_dirs = ancestry(cg, "cpu" if "cpu" in cg.paths else "unified")
    pids_dirs = ancestry(cg, "pids" if "pids" in cg.paths else "unified")
    memory_max, memory_high, swap_max, quotas = [], [], [], []
    if v1_memory:
        memory_max = [g.add(os.path.join(d, "memory.limit_in_bytes"), Format.VALUE,
                            unlimited_at=catalogue.V1_MEMORY_UNLIMITED) for d in memory_dirs]
        # The ancestors above the mount's root (a container's) count in here too.
        stat = os.path.join(memory_dirs[0], "memory.stat")
        memory_max.append(g.add(stat, Format.FLAT_KEYED, "hierarchical_memory_limit",
                                unlimited_at=catalogue.V1_MEMORY_UNLIMITED))
        memsw = g.add(stat, Format.FLAT_KEYED, "hierarchical_memsw_limit",
                      unlimited_at=catalogue.V1_MEMORY_UNLIMITED)
    else:
        for d in memory_dirs:
            memory_max.append(g.add(os.path.join(d, "memory.max"), Format.VALUE))
            memory_high.append(g.add(os.path.join(d, "memory.high"), Format.VALUE))
            swap_max.append(g.add(os.path.join(d, "memory.swap.max"), Format.VALUE))
    for d in cpu_dirs:
        if "cpu" in cg.paths:
            quota = g.add(os.path.join(d, "cpu.cfs_quota_us"), Format.QUOTA_V1)
            period = g.add(os.path.join(d, "cpu.cfs_period_us"), Format.VALUE)
        else:
            quota = g.add(os.path.join(d, "cpu.max"), Format.CPU_MAX, "quota")
            period = g.add(os.path.join(d, "cpu.max"), Format.CPU_MAX, "period")
        quotas.append((quota, period))
    pids = [g.add(os.path.join(d, "pids.max"), Format.VALUE) for d in pids_dirs]

    row = g.read(backend)
    host_memory = row[host]
    memory_limit = _tightest(row[i] for i in memory_max)
    if memory_limit is not None and host_memory is not None and memory_limit >= host_memory:
        memory_limit = None  # a limit the host cannot reach limits nothing
    if v1_memory:
        total = row[memsw]
        swap = total - memory_limit if total is not None and memory_limit is not None else None
        swap = max(0, swap) if swap is not None else None
    else:
        swap = _tightest(row[i] for i in swap_max)
    cores = _tightest_cores((row[q], row[p]) for q, p in quotas)

    pid = 0 if cg.pid == "self" else int(cg.pid)
    affinity = set(os.sched_getaffinity(pid))
    cpuset = _read_cpuset(cg)
    cpus = tuple(sorted(affinity & set(cpuset))) if cpuset else tuple(sorted(affinity))
    effective_cpus = float(len(cpus)) if cores is None else min(cores, float(len(cpus)))
    effective_memory = host_memory if memory_limit is None else min(host_memory, memory_limit)
    return Limits(
        memory_max_bytes=memory_limit,
        memory_high_bytes=_tightest(row[i] for i in memory_high),
        swap_max_bytes=swap,
        host_memory_bytes=host_memory,
        effective_memory_bytes=effective_memory,
        cpu_quota_cores=cores,
        cpuset_cpus=cpus,
        effective_cpus=effective_cpus,
        cpu_count=max(1, math.ceil(effective_cpus)),
        pids_max=_tightest(row[i] for i in pids),
    )


def _tightest_cores(pairs) -> float | None:
    cores = [quota / period for quota, period in pairs if quota is not None and period]
    return min(cores) if cores else None


def available_memory(cg: CGroup | None = None, backend: str = "native") -> int:
    """Returns the bytes this process may still use: effective memory - working set, or the
    host's MemAvailable when that is smaller (or no memory cgroup can be read)."""
    cg = cg if cg is not None else current()
    lim = limits(cg, backend)
    values = cg.read([catalogue.WORKING_SET, "host.mem.available"], backend)
    candidates = [values["host.mem.available"]]
    if values[catalogue.WORKING_SET] is not None:
        candidates.append(lim.effective_memory_bytes - values[catalogue.WORKING_SET])
    return max(0, min(c for c in candidates if c is not None))
