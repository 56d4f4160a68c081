"""Container-aware limits: the tightest limit along a cgroup's ancestry, and the
smaller of that and what the host has.

Which v1 or v2 file holds each limit is the catalogue's knowledge
(:mod:`pycgroup.catalogue`); this module only walks the ancestry and combines.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Union, cast

from pycgroup import catalogue
from pycgroup._pure import read_regular
from pycgroup.backends import reader_class
from pycgroup.cgroup import CGroup, _gone_error, current
from pycgroup.errors import CgroupGone, MetricUnavailable, ParseError
from pycgroup.formats import Field, Format, SourceSpec
from pycgroup.iofiles import read_io
from pycgroup.sources import Source
from pycgroup.values import UNLIMITED, from_row

#: A limit: bytes, cores or a count; UNLIMITED (math.inf) for none; None when unavailable.
Limit = Union[int, float, None]


@dataclass(frozen=True)
class Limits:
    """What a process in a cgroup may really use.

    Each limit is a number, ``pycgroup.UNLIMITED`` (``math.inf``) when nothing limits it,
    or None when it cannot be known here (this cgroup version has no such limit, or its
    cgroup directory is missing or not mounted: ``problems`` says which).

    Attributes:
        memory_max_bytes: The tightest ``memory.max`` up the ancestry (UNLIMITED if >= host
            RAM).
        memory_high_bytes: The tightest ``memory.high`` (v2 only).
        swap_max_bytes: The cgroup's swap allowance (v1: memsw - memory limit).
        host_memory_bytes: ``MemTotal``.
        effective_memory_bytes: min(host memory, memory_max_bytes).
        cpu_quota_cores: The tightest quota/period up the ancestry.
        cpuset_cpus: The effective cpuset ∩ the process's CPU affinity.
        effective_cpus: min(cpu_quota_cores, len(cpuset_cpus)).
        cpu_count: ceil(effective_cpus), at least 1: size thread pools with this.
        pids_max: The tightest ``pids.max`` up the ancestry.
        host_swap_bytes: ``SwapTotal``.
        effective_swap_bytes: min(swap_max_bytes, host swap): what can be used.
        memory_low_bytes: The cgroup's ``memory.low`` protection (v2 only).
        memory_min_bytes: The cgroup's ``memory.min`` protection (v2 only).
        memory_soft_limit_bytes: ``memory.soft_limit_in_bytes`` (v1 only).
        cpu_weight: ``cpu.weight`` 1-10000; on v1 converted from ``cpu.shares``.
        cpu_shares: v1 ``cpu.shares`` as written (2-262144); None on v2.
        io_max: "MAJ:MIN" -> {"rbps", "wbps", "riops", "wiops"}: the tightest ``io.max``
            up the ancestry.
        problems: Why a figure is missing or may be too loose."""

    memory_max_bytes: Limit  # tightest memory.max up the ancestry (UNLIMITED if >= host RAM)
    memory_high_bytes: Limit  # tightest memory.high (v2 only)
    swap_max_bytes: Limit  # the cgroup's swap allowance (v1: memsw - memory limit)
    host_memory_bytes: int  # MemTotal
    effective_memory_bytes: int  # min(host memory, memory_max_bytes)
    cpu_quota_cores: Limit  # tightest quota/period up the ancestry
    cpuset_cpus: tuple[int, ...]  # the effective cpuset ∩ the process's CPU affinity
    effective_cpus: float  # min(cpu_quota_cores, len(cpuset_cpus))
    cpu_count: int  # ceil(effective_cpus), at least 1: size thread pools with this
    pids_max: Limit
    host_swap_bytes: int | None = None  # SwapTotal
    effective_swap_bytes: Limit = None  # min(swap_max_bytes, host swap): what can be used
    memory_low_bytes: Limit = None  # the cgroup's memory.low protection (v2 only)
    memory_min_bytes: Limit = None  # the cgroup's memory.min protection (v2 only)
    memory_soft_limit_bytes: Limit = None  # memory.soft_limit_in_bytes (v1 only)
    cpu_weight: int | None = None  # cpu.weight 1-10000; on v1 converted from cpu.shares
    cpu_shares: int | None = None  # v1 cpu.shares as written (2-262144); None on v2
    # "MAJ:MIN" -> {"rbps", "wbps", "riops", "wiops"}: the tightest io.max up the ancestry.
    io_max: dict[str, dict[str, Limit]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # why a figure is missing or may be too loose


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


def parse_cpu_list(text: str, path: str = "cpu list") -> tuple[int, ...]:
    """Returns the CPUs of a kernel cpu list such as "0-3,8,10-11" (cpuset(7) "List
    format"); raises ParseError naming path for anything else, reversed ranges included."""
    if not text.strip():
        return ()  # an empty cpuset: no CPUs
    cpus: set[int] = set()
    for part in text.strip().split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ParseError(f"{part!r} is not a CPU number or range", path, 1)
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ParseError(f"reversed CPU range {part!r}", path, 1)
        cpus.update(range(low, high + 1))
    return tuple(sorted(cpus))


class _Gather:
    """Collects single fields from many files, then reads them all in one pass."""

    def __init__(self) -> None:
        self.specs: dict[tuple[str, Format], list[Field]] = {}
        self.count = 0

    def add(self, source: Source) -> int:
        """Adds a field; returns its index in read()'s list."""
        fields = self.specs.setdefault((source.path, source.format), [])
        fields.append(Field(source.key, self.count, source.mul, source.div,
                            source.unlimited_at))
        self.count += 1
        return self.count - 1

    def read(self, backend: str) -> list[Limit]:
        """Returns each field's value: an int, UNLIMITED, or None where the file or key is
        absent; raises CgroupGone when a file's cgroup was removed while open."""
        specs = [SourceSpec(p, f, fields) for (p, f), fields in self.specs.items()]
        reader = reader_class(backend)(specs, self.count)
        try:
            for error in reader.open_errors().values():
                if error.errno not in (errno.ENOENT, errno.ENODEV):
                    raise error
            try:
                row = reader.read()
            except OSError as e:
                if e.errno == errno.ENODEV:
                    raise _gone_error(e) from e
                raise
        finally:
            reader.close()
        return [from_row(v) for v in row]


def _tightest(values: Iterable[Limit]) -> Limit:
    """Returns the smallest value; UNLIMITED when every value present is; None when none
    is present (every file of the ancestry absent)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _ratio(quota: Limit, period: Limit) -> Limit:
    if quota is None or not period:
        return None  # no quota file, or no (or a zero) period
    return UNLIMITED if math.isinf(quota) else quota / period


class _Walk:
    """The directories of one controller's ancestry and its cgroup version."""

    def __init__(self, cg: CGroup, controller: str) -> None:
        self.version = catalogue.version_for(cg.paths, controller)
        self.dirs = ancestry(cg, controller if self.version == "v1" else "unified")
        self.missing = bool(self.dirs) and self.dirs[0] in cg.missing
        # In a hierarchy no mount shows: the controller's own v1 one (whatever v2 shows),
        # or, with no v1 hierarchy of it, v2's.
        self.unmounted = controller in cg.unmounted or (
            self.version is None and "unified" in cg.unmounted)

    def sources(self, name: str) -> list[Source]:
        """Returns the sources of a catalogue metric in each directory, leaf first."""
        spec = self.spec(name)
        if spec is None or self.version is None or self.missing or self.unmounted:
            return []
        return [catalogue.source_at(d, spec, self.version) for d in self.dirs]

    def spec(self, name: str) -> catalogue._File | None:
        """Returns the file of a catalogue metric on this version, None if it has none."""
        return catalogue.file_of(name, self.version) if self.version else None

    def limit(self, name: str, values: Iterable[Limit]) -> Limit:
        """Returns the tightest of a limit's values up the ancestry: UNLIMITED where no
        directory has the file (v2 writes them only where the controller is enabled, never
        in the root), None where the version has no such limit or the cgroup's directory
        is missing or its hierarchy is not mounted here, and UNLIMITED outside any
        hierarchy of the controller."""
        if self.unmounted:
            return None
        if self.version is None:
            return UNLIMITED
        if self.missing or self.spec(name) is None:
            return None
        found = _tightest(values)
        return UNLIMITED if found is None else found


def _v2_mount_above_hidden(cg: CGroup) -> str | None:
    """Returns what the cgroup2 mount shows when the cgroups above its root are hidden:
    "the root of a cgroup namespace as /" (a container in its own cgroup namespace,
    ``unshare -C``) or "the subtree <root>", or None when the mount's root directory is the
    host's root cgroup (no cgroup.type there: cgroup-v2.rst writes it only in non-root
    cgroups) or no cgroup2 hierarchy is mounted. The ancestry limits() walks ends there."""
    mount = cg.mount_roots.get("unified")
    if mount is None or not os.path.exists(os.path.join(mount, "cgroup.type")):
        return None
    root = cg.hierarchy_roots.get("unified", "/")
    return "the root of a cgroup namespace as /" if root == "/" else f"the subtree {root}"


def limits(cg: CGroup | None = None, backend: str = "native") -> Limits:
    """Returns the limits of cg (default: this process's cgroups).

    Raises ``pycgroup.CgroupGone`` when the cgroup was removed, OSError naming the
    file for other I/O errors, ParseError for content that does not parse. A limit whose
    files are absent is None, and ``problems`` says why where that is not the normal
    state of this cgroup version."""
    cg = cg if cg is not None else current()
    problems = list(cg.problems)
    gone = cg._gone()
    if gone is not None:
        raise CgroupGone(errno.ENOENT, "the cgroup was removed", gone)
    g = _Gather()
    host_total = cast(Source, cg.resolve("host.mem.total"))  # the catalogue's meminfo key
    host = g.add(host_total)
    host_swap = g.add(cast(Source, cg.resolve("host.swap.total")))
    memory, cpu, pids = _Walk(cg, "memory"), _Walk(cg, "cpu"), _Walk(cg, "pids")

    def each(walk: _Walk, name: str) -> list[int]:
        return [g.add(s) for s in walk.sources(name)]

    def leaf(walk: _Walk, name: str) -> int | None:
        found = walk.sources(name)
        return g.add(found[0]) if found else None

    memory_max = each(memory, "memory.max")
    memory_high = each(memory, "memory.high")
    swap_max = each(memory, "memory.swap.max")
    memsw_max: list[int] = []
    if memory.version == "v1" and memory.dirs:
        # The ancestors above the mount's root (a container's) count in here too.
        for name, into in (("memory.max", memory_max), ("memory.memsw.max", memsw_max)):
            into.append(g.add(catalogue.source_at(memory.dirs[0],
                                                  catalogue.V1_HIERARCHICAL[name], "v1")))
        memsw_max += each(memory, "memory.memsw.max")
    memory_low, memory_min = leaf(memory, "memory.low"), leaf(memory, "memory.min")
    soft_limit = leaf(memory, "memory.soft_limit")
    quotas = list(zip(each(cpu, "cpu.max.quota_usec"), each(cpu, "cpu.max.period_usec")))
    weight, shares = leaf(cpu, "cpu.weight"), leaf(cpu, "cpu.shares")
    pids_max = each(pids, "pids.max")

    row = g.read(backend)

    def value(index: int | None) -> Limit:
        return None if index is None else row[index]

    host_memory = row[host]
    if host_memory is None or math.isinf(host_memory):
        raise ParseError("no MemTotal line", host_total.path)
    host_memory = int(host_memory)
    raw_memory = memory.limit("memory.max", (row[i] for i in memory_max))
    memory_limit = raw_memory
    if memory_limit is not None and memory_limit >= host_memory:
        memory_limit = UNLIMITED  # a limit the host cannot reach limits nothing
    if memory.version == "v1":
        memsw = memory.limit("memory.memsw.max", (row[i] for i in memsw_max))
        swap = catalogue.swap_of_memsw(memsw, raw_memory)
    else:
        swap = memory.limit("memory.swap.max", (row[i] for i in swap_max))
    swap_total = row[host_swap]
    host_swap_bytes = None if swap_total is None else int(swap_total)
    if host_swap_bytes == 0:
        effective_swap: Limit = 0  # no swap on the host: no cgroup can use any
    elif swap is None or host_swap_bytes is None:
        effective_swap = None
    else:
        effective_swap = min(swap, host_swap_bytes)
    cores = cpu.limit("cpu.max.quota_usec", (_ratio(row[q], row[p]) for q, p in quotas))

    for walk, name in ((memory, "memory"), (cpu, "cpu"), (pids, "pids")):
        if walk.missing:
            problems.append(f"{name} limits are unavailable: {walk.dirs[0]} does not exist")
        elif walk.unmounted:
            problems.append(f"{name} limits are unavailable: the process is in a {name} "
                            "cgroup, but its hierarchy is not mounted here")
    if cpu.version == "v1" and cg.hierarchy_roots.get("cpu", "/") != "/":
        problems.append(
            "cpu: the cpu hierarchy is mounted from " + cg.hierarchy_roots["cpu"] + ", so a "
            "tighter CPU quota of a cgroup above it cannot be seen from here (the kernel "
            "does not expose it; memory limits are seen through memory.stat's "
            "hierarchical_memory_limit); on the host, `pycgroup info --pid <host pid>` sees it")
    hidden = [name for walk, name in ((memory, "memory"), (cpu, "CPU"), (pids, "pids"))
              if walk.version == "v2" and not (walk.missing or walk.unmounted)]
    shown = _v2_mount_above_hidden(cg) if hidden else None
    if shown is not None:
        kinds = ", ".join(hidden[:-1]) + " or " + hidden[-1] if len(hidden) > 1 else hidden[0]
        problems.append(
            f"unified: the cgroup2 mount shows {shown}, not the host's root cgroup (its "
            f"directory has cgroup.type, which a root cgroup lacks), so a tighter {kinds} "
            "limit of a cgroup above it cannot be seen from here (cgroup v2 has no "
            "hierarchical limit to read instead); on the host, `pycgroup info --pid "
            "<host pid>` sees it")

    affinity = _affinity(cg, problems)
    cpuset = _read_cpuset(cg)
    usable = affinity if affinity is not None else set(cpuset or range(os.cpu_count() or 1))
    cpus = tuple(sorted(usable & set(cpuset))) if cpuset else tuple(sorted(usable))
    effective_cpus = float(len(cpus)) if cores is None else min(cores, float(len(cpus)))
    effective_memory = host_memory if memory_limit is None else min(host_memory, memory_limit)
    effective_memory = int(effective_memory)
    weight_value = value(weight)
    shares_value = value(shares)
    if shares_value is not None and weight_value is None:
        weight_value = catalogue.shares_to_weight(shares_value)
    return Limits(
        memory_max_bytes=memory_limit,
        memory_high_bytes=memory.limit("memory.high", (row[i] for i in memory_high)),
        swap_max_bytes=swap,
        host_memory_bytes=host_memory,
        effective_memory_bytes=effective_memory,
        cpu_quota_cores=cores,
        cpuset_cpus=cpus,
        effective_cpus=effective_cpus,
        cpu_count=max(1, math.ceil(effective_cpus)),
        pids_max=pids.limit("pids.max", (row[i] for i in pids_max)),
        host_swap_bytes=host_swap_bytes,
        effective_swap_bytes=effective_swap,
        memory_low_bytes=value(memory_low),
        memory_min_bytes=value(memory_min),
        memory_soft_limit_bytes=value(soft_limit),
        cpu_weight=None if weight_value is None else int(weight_value),
        cpu_shares=None if shares_value is None else int(shares_value),
        io_max=_io_max(cg),
        problems=tuple(problems),
    )


def _affinity(cg: CGroup, problems: list[str]) -> set[int] | None:
    """Returns the CPUs the process may run on: from another procfs (a container's root
    seen from the host, a test tree) ``Cpus_allowed_list`` of ``<procfs>/<pid>/status``,
    which needs no host PID; else sched_getaffinity() of this process, or of the PID
    where procfs is this machine's own /proc. None (and a problem) when neither is known."""
    own_procfs = os.path.realpath(cg.procfs) == "/proc"
    if not own_procfs:
        allowed = _status_cpus(os.path.join(cg.procfs, str(cg.pid), "status"))
        if allowed is not None:
            return allowed
    if cg.pid == "self":
        return set(os.sched_getaffinity(0))
    if own_procfs:
        return set(os.sched_getaffinity(int(cg.pid)))
    problems.append(f"cpus: {cg.procfs}/{cg.pid}/status has no Cpus_allowed_list, and PID "
                    f"{cg.pid} of another procfs cannot be asked for its affinity here; "
                    "the cpuset alone counts")
    return None


def _status_cpus(status: str) -> set[int] | None:
    try:
        with open(status, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return set(parse_cpu_list(line.split(":", 1)[1], status))
    except FileNotFoundError:
        return None
    return None


def _read_cpuset(cg: CGroup) -> tuple[int, ...] | None:
    v2, v1 = catalogue.CPUSET_EFFECTIVE
    version = catalogue.version_for(cg.paths, "cpuset")
    if version is None:
        return None
    spec = v1 if version == "v1" else v2
    path = os.path.join(cg.paths[spec.controller if version == "v1" else "unified"], spec.name)
    try:
        return parse_cpu_list(read_regular(path).decode("utf-8", "replace"), path)
    except FileNotFoundError:
        return None  # the cpuset controller is not enabled for this cgroup


def _io_max(cg: CGroup) -> dict[str, dict[str, Limit]]:
    """Returns the tightest io.max of each device and key up the ancestry (v2 only)."""
    if "unified" not in cg.paths:
        return {}  # io.max is cgroup v2's (v1 blkio.throttle.* files are not read)
    tightest: dict[str, dict[str, Limit]] = {}
    for directory in ancestry(cg, "unified"):
        for device, values in (read_io(directory, catalogue.IO_MAX.name) or {}).items():
            mine = tightest.setdefault(device, {})
            for key, v in values.items():
                mine[key] = v if key not in mine else _tightest((mine[key], v))
    return tightest


def available_memory(cg: CGroup | None = None, backend: str = "native") -> int:
    """Returns the bytes this process may still use: effective memory - working set, or the
    host's MemAvailable when that is smaller (or no memory cgroup can be read). Raises
    MetricUnavailable when neither the working set nor MemAvailable can be read."""
    cg = cg if cg is not None else current()
    lim = limits(cg, backend)
    values = cg.read([catalogue.WORKING_SET, "host.mem.available"], backend)
    candidates = [values["host.mem.available"]]
    working_set = values[catalogue.WORKING_SET]
    if working_set is not None:
        candidates.append(lim.effective_memory_bytes - working_set)
    known = [c for c in candidates if c is not None]
    if not known:
        raise MetricUnavailable(
            f"available memory cannot be known here: {cg.explain(catalogue.WORKING_SET)}; "
            f"{cg.explain('host.mem.available')}")
    return int(max(0, min(known)))
