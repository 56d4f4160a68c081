"""CGroup: where a process's cgroups are, and snapshot reads of their metrics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pycgroup import catalogue, discovery, gpu, plan
from pycgroup.sources import Derived, ProcessClock, Source, Unavailable
from pycgroup.formats import Format


@dataclass(frozen=True, eq=False)
class CGroup:
    """The cgroups of one process.

    ``mode`` is "v1", "v2", "hybrid" or "none" (no cgroup hierarchy is mounted where
    this process can see it); ``paths`` maps each controller ("unified" for cgroup v2)
    to its directory. Reads keep their files open: ``close()`` or ``with`` releases them.
    """

    mode: str
    paths: dict
    mount_roots: dict = field(default_factory=dict, repr=False)
    pid: int | str = "self"
    procfs: str = "/proc"
    deleted: bool = False  # the kernel reports the cgroup as removed
    problems: tuple = ()  # hierarchies the process is in but that cannot be read here
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def resolve(self, name: str) -> Source | Derived | Unavailable:
        """Returns where a metric is read; raises KeyError for an unknown name."""
        return catalogue.resolve(name, self.paths, self.procfs, self.pid)

    def explain(self, name: str) -> str:
        """Returns where a metric comes from here, or why it is unavailable."""
        where = self.resolve(name)
        if isinstance(where, Unavailable):
            return f"{name}: unavailable: {where.reason}"
        if isinstance(where, Derived):
            parts = "; ".join(self.explain(n) for n in where.inputs)
            return f"{name}: derived from {', '.join(where.inputs)} ({parts})"
        missing = missing_reason(where)
        return f"{name}: {where.describe()}" + (f" (unavailable: {missing})" if missing else "")

    def metrics(self) -> list[str]:
        """Returns the canonical names this cgroup can provide now, sorted."""
        names = catalogue.static_names()
        memory_stat = self.resolve(catalogue.WORKING_SET_INPUTS[1])
        if isinstance(memory_stat, Source) and memory_stat.version == "v2":
            try:
                names += [catalogue.MEMORY_STAT_PREFIX + k for k in _keys_of(memory_stat.path)]
            except OSError:
                pass  # no memory.stat: metrics() then leaves those names out
        if gpu.available():
            names += [f"gpu{n}.{m}" for n in range(len(gpu.visible_devices()))
                      for m in gpu.METRICS]
        available = []
        for name in sorted(set(names)):
            where = self.resolve(name)
            if isinstance(where, Derived):
                ok = all(missing_reason(self.resolve(n)) is None for n in where.inputs)
            else:
                ok = missing_reason(where) is None
            if ok:
                available.append(name)
        return available

    def read(self, names, backend: str = "native") -> dict:
        """Returns {name: int or None}: None for what is unavailable (see explain()) and
        for limits that are unlimited. Raises KeyError for unknown names, OSError naming
        the file for I/O errors, ParseError for content that does not parse."""
        if isinstance(names, str):
            names = [names]
        key = (tuple(names), backend)
        current = self._plans.get(key)
        if current is None:
            current = plan.build(names, self.resolve, backend)
            self._plans[key] = current
        return current.values(current.read())

    def close(self) -> None:
        """Closes the files that reads keep open."""
        for p in self._plans.values():
            p.reader.close()
        self._plans.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _keys_of(path: str, separator: str = " ") -> list[str]:
    """Returns the keys of a keyed file ("key value" or "Key: value"); raises OSError."""
    with open(path, "rb") as f:
        return [line.split(separator.encode(), 1)[0].decode(errors="replace")
                for line in f.read().splitlines() if line]


def missing_reason(where) -> str | None:
    """Returns why a resolved metric cannot be read now, or None when it can."""
    if isinstance(where, Unavailable):
        return where.reason
    if isinstance(where, (gpu.GpuSource, ProcessClock)):
        return None
    if not os.path.exists(where.path):
        return f"{where.path} does not exist"
    if where.format in (Format.FLAT_KEYED, Format.COLON_KEYED):
        try:
            keys = _keys_of(where.path, " " if where.format is Format.FLAT_KEYED else ":")
        except OSError as e:
            return str(e)
        if where.key not in keys:
            return f"{where.path} has no key {where.key!r}"
    return None


def current(procfs: str = "/proc", rootfs: str = "/") -> CGroup:
    """Returns the cgroups of this process."""
    return of_pid("self", procfs, rootfs)


def of_pid(pid: int | str, procfs: str = "/proc", rootfs: str = "/") -> CGroup:
    """Returns the cgroups of another process (its proc.* metrics are its own)."""
    found = discovery.discover(pid, procfs, rootfs)
    return CGroup(found.mode, found.paths, found.mount_roots, pid, procfs, found.deleted,
                  found.problems)
