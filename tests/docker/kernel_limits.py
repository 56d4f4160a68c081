"""The oracle of the Docker tier: a process's limits computed from the kernel's own files,
read on the host along the whole cgroup ancestry, without pycgroup. Its cgroup comes from
/proc/<pid>/cgroup and the host's mounts, the limits are the tightest in every directory
from the process's cgroup up to the hierarchy's root."""

from __future__ import annotations

import math
import os

from live import mount_points

UNLIMITED_V1_MEMORY = 0x7FFFFFFFFFFFF000  # PAGE_COUNTER_MAX pages, as v1 prints "no limit"


def cgroup_dirs(pid: int) -> dict:
    """{controller or "unified": the host directory} of the process's cgroups."""
    points = mount_points()
    dirs = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            names = controllers.split(",") if controllers else ["unified"]
            for name in names:
                if name in points:
                    dirs[name] = points[name] + path.rstrip("/") if path != "/" else points[name]
    return dirs


def ancestry(directory: str, mount: str) -> list:
    dirs = [directory]
    while dirs[-1] != mount:
        dirs.append(os.path.dirname(dirs[-1]))
    return dirs


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def number(text: str | None) -> float | None:
    """A limit as a number: math.inf for none ("max", -1, v1's unlimited), None if absent."""
    if text is None:
        return None
    if text == "max" or text == "-1" or int(text) >= UNLIMITED_V1_MEMORY:
        return math.inf
    return int(text)


def meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class KernelLimits:
    """The limits of a process, with math.inf for "no limit"."""

    def __init__(self, pid: int):
        self.pid = pid
        self.dirs = cgroup_dirs(pid)
        points = mount_points()
        self.v1 = "memory" in self.dirs
        self.host_memory = meminfo("MemTotal")
        self.host_swap = meminfo("SwapTotal")

        def walk(controller):
            key = controller if controller in self.dirs else "unified"
            return ancestry(self.dirs[key], points[key]) if key in self.dirs else []

        def tightest(controller, file, convert=number):
            values = [convert(read(os.path.join(d, file))) for d in walk(controller)]
            values = [v for v in values if v is not None]
            return min(values) if values else math.inf

        if self.v1:
            self.memory = tightest("memory", "memory.limit_in_bytes")
            memsw = tightest("memory", "memory.memsw.limit_in_bytes")
            self.memory_high = math.inf
            self.swap = (max(0, memsw - self.memory) if math.isfinite(memsw)
                         and math.isfinite(self.memory) else math.inf)
            self.soft_limit = number(read(os.path.join(self.dirs["memory"],
                                                       "memory.soft_limit_in_bytes")))
            self.cpu_shares = int(read(os.path.join(self.dirs["cpu"], "cpu.shares")))
            self.cpu_weight = 1 + (self.cpu_shares - 2) * 9999 // 262142
            quotas = [(number(read(os.path.join(d, "cpu.cfs_quota_us"))),
                       int(read(os.path.join(d, "cpu.cfs_period_us")))) for d in walk("cpu")]
            self.own_quota = self._cores(quotas[:1])
            cpuset = read(os.path.join(self.dirs["cpuset"], "cpuset.effective_cpus"))
        else:
            self.memory = tightest("memory", "memory.max")
            self.memory_high = tightest("memory", "memory.high")
            self.swap = tightest("memory", "memory.swap.max")
            leaf = self.dirs["unified"]
            self.memory_low = number(read(os.path.join(leaf, "memory.low")))
            self.memory_min = number(read(os.path.join(leaf, "memory.min")))
            weight = read(os.path.join(leaf, "cpu.weight"))
            self.cpu_weight = int(weight) if weight is not None else None
            quotas = []
            for d in walk("cpu"):
                text = read(os.path.join(d, "cpu.max"))
                if text is not None:
                    quota, period = text.split()
                    quotas.append((number(quota), int(period)))
            self.own_quota = self._cores(quotas[:1])
            cpuset = read(os.path.join(leaf, "cpuset.cpus.effective"))
        self.cpu_quota = self._cores(quotas)
        self.pids = tightest("pids", "pids.max")
        self.io_max = {}  # "MAJ:MIN" -> key -> the tightest io.max value up the ancestry
        if "unified" in self.dirs:
            for d in ancestry(self.dirs["unified"], points["unified"]):
                for line in (read(os.path.join(d, "io.max")) or "").splitlines():
                    device, *pairs = line.split()
                    mine = self.io_max.setdefault(device, {})
                    for key, value in (pair.split("=") for pair in pairs):
                        mine[key] = min(mine.get(key, math.inf), number(value))
        if self.memory >= self.host_memory:
            self.memory = math.inf  # a limit the host cannot reach limits nothing
        affinity = set(os.sched_getaffinity(pid))
        self.cpuset = tuple(sorted(affinity & set(parse_cpu_list(cpuset)))) if cpuset \
            else tuple(sorted(affinity))

    @staticmethod
    def _cores(quotas) -> float:
        cores = [q / p for q, p in quotas if math.isfinite(q)]
        return min(cores) if cores else math.inf

    def effective_cpus(self, quota: float) -> float:
        return min(quota, float(len(self.cpuset)))


def parse_cpu_list(text: str) -> set:
    cpus = set()
    for part in text.split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    return cpus
