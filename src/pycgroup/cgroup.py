"""CGroup: where a process's cgroups are, and snapshot reads of their metrics."""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from pycgroup import catalogue, discovery, gpu, plan
from pycgroup._pure import read_regular
from pycgroup.errors import CgroupGone
from pycgroup.sources import Derived, ProcessClock, Source, Unavailable
from pycgroup.formats import Format

#: How many metric lists' readers read() keeps open (least recently used closed first):
#: a program polling a few fixed lists reuses their open files, and one building a new
#: list on every call holds at most this many lists' files.
READ_CACHE_SIZE = 16
#: What read() returns for one metric: an int, UNLIMITED (math.inf) or None (unavailable).
Value = Union[int, float, None]


@dataclass(frozen=True, eq=False)
class CGroup:
    """The cgroups of one process.

    ``mode`` is "v1", "v2", "hybrid" or "none" (no cgroup hierarchy is mounted where
    this process can see it); ``paths`` maps each controller ("unified" for cgroup v2)
    to its directory. Reads keep the files of the last READ_CACHE_SIZE metric lists
    open: ``close()`` or ``with`` releases them.
    """

    mode: str
    paths: dict[str, str]
    mount_roots: dict[str, str] = field(default_factory=dict, repr=False)
    pid: int | str = "self"
    procfs: str = "/proc"
    deleted: bool = False  # the kernel reports the cgroup as removed
    problems: tuple[str, ...] = ()  # what discovery could not find as the kernel says
    # controller -> the hierarchy directory its mount shows ("/" unless a subtree).
    hierarchy_roots: dict[str, str] = field(default_factory=dict, repr=False)
    missing: tuple[str, ...] = ()  # directories of paths that did not exist when found
    # controllers (or "unified") of hierarchies the process is in that are not mounted here
    unmounted: tuple[str, ...] = ()
    # read()'s cache: (names, backend) -> (plan, derived metrics), least recently used first.
    _plans: OrderedDict[Any, Any] = field(default_factory=OrderedDict, repr=False,
                                          compare=False)
    _plans_lock: threading.RLock = field(default_factory=threading.RLock, repr=False,
                                         compare=False)

    def resolve(self, name: str) -> Union[Source, Derived, Unavailable, ProcessClock,
                                          gpu.GpuSource]:
        """Returns where a metric is read; raises KeyError for an unknown name."""
        where = catalogue.resolve(name, self.paths, self.procfs, self.pid)
        if (isinstance(where, Source) and where.version == "v2"
                and not os.path.exists(where.path) and self._root_without_usage()):
            return self._at_root(name, where)
        if name == catalogue.WORKING_SET and self._root_without_usage():
            return Unavailable("the cgroup v2 root has no memory.current to take the "
                               "working set of (read memory.current: it is derived from "
                               "/proc/meminfo there)")
        return where

    def _at_root(self, name: str, where: Source) -> Union[Source, Derived]:
        """Returns what stands in for a file a pure v2 root cgroup does not have."""
        derive = {"memory.current": catalogue.ROOT_MEMORY_CURRENT,
                  "memory.swap.current": catalogue.ROOT_SWAP_CURRENT}.get(name)
        if derive is not None:
            return Derived(derive.inputs, derive.compute, derive.note)
        resource, dot, _ = name.partition(".pressure.")
        if dot and where.format is Format.PSI:
            return catalogue.root_pressure(self.procfs, resource, where.key)
        return where

    def _root_without_usage(self) -> bool:
        return self.is_v2_root() and "memory" not in self.paths and not os.path.exists(
            os.path.join(self.paths["unified"], "memory.current"))

    def is_v2_root(self) -> bool:
        """Returns whether this is the root cgroup of a cgroup2 hierarchy: the host's, not a
        cgroup namespace's root, which looks the same in mountinfo but has the files that
        cgroup-v2.rst says exist "on non-root cgroups" (cgroup.type among them)."""
        unified = self.paths.get("unified")
        return (unified is not None and unified == self.mount_roots.get("unified")
                and self.hierarchy_roots.get("unified", "/") == "/"
                and not os.path.exists(os.path.join(unified, "cgroup.type")))

    def explain(self, name: str) -> str:
        """Returns where a metric comes from here, or why it is unavailable."""
        where = self.resolve(name)
        if isinstance(where, Unavailable):
            return f"{name}: unavailable: {where.reason}"
        if isinstance(where, Derived) and not where.inputs and where.compute is not None:
            absent = " (unavailable: no such file, device or key)" if where.compute() is None else ""
            return f"{name}: {where.note}{absent}"
        if isinstance(where, Derived):
            parts = "; ".join(self.explain(n) for n in where.inputs)
            how = f" as {where.note}" if where.note else ""
            return f"{name}: derived from {', '.join(where.inputs)}{how} ({parts})"
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
        names += catalogue.io_names(self.paths)
        if gpu.available():
            names += [f"gpu{n}.{m}" for n in range(len(gpu.visible_devices()))
                      for m in gpu.METRICS]
        available = []
        for name in sorted(set(names)):
            where = self.resolve(name)
            if isinstance(where, Derived):
                ok = all(missing_reason(self.resolve(n)) is None for n in where.inputs) and (
                    where.inputs or where.compute is None or where.compute() is not None)
            else:
                ok = missing_reason(where) is None
            if ok:
                available.append(name)
        return available

    def read(self, names: Union[str, Iterable[str]], backend: str = "native") -> dict[str, Value]:
        """Returns {name: value}: an int, ``pycgroup.UNLIMITED`` (``math.inf``) for a limit
        that is unlimited, or None for what is unavailable here (see explain()).

        Raises KeyError for unknown names, ``pycgroup.CgroupGone`` (an OSError,
        errno ENODEV or ENOENT, naming the file or directory) when the cgroup was removed,
        other OSErrors naming the file for I/O errors, and ParseError for content that
        does not parse."""
        if isinstance(names, str):
            names = [names]
        key = (tuple(names), backend)
        # One lock for the cache and the read: a reader evicted (closed) by another thread
        # must not be read, or its metrics would read as None.
        with self._plans_lock:
            cached = self._plans.get(key)
            if cached is None:
                current = plan.build(names, self.resolve, backend)
                derived = {n: w for n in key[0] if isinstance(w := self.resolve(n), Derived)
                           and w.compute is not None}
                cached = self._plans[key] = (current, derived)
                while len(self._plans) > READ_CACHE_SIZE:
                    self._plans.popitem(last=False)[1][0].reader.close()
                if current.unavailable:
                    self._raise_if_gone()
            else:
                self._plans.move_to_end(key)
            current, derived = cached
            try:
                values = current.values(current.read())
            except OSError as e:
                if e.errno == errno.ENODEV or self._gone() is not None:
                    raise _gone_error(e) from e
                raise
        if derived:
            values.update(self._derive(derived, backend))
        return values

    def _derive(self, derived: dict[str, Derived], backend: str) -> dict[str, Value]:
        inputs = [n for where in derived.values() for n in where.inputs]
        got = self.read(inputs, backend) if inputs else {}
        return {name: where.compute(*(got[n] for n in where.inputs))  # type: ignore[misc]
                for name, where in derived.items()}

    def _gone(self) -> str | None:
        """Returns a cgroup directory that existed when discovered and is gone now."""
        for path in self.paths.values():
            if path not in self.missing and not os.path.isdir(path):
                return path
        return None

    def _raise_if_gone(self) -> None:
        path = self._gone()
        if path is not None:
            self.close()
            raise CgroupGone(errno.ENOENT, "the cgroup was removed", path)

    def close(self) -> None:
        """Closes the files that reads keep open."""
        with self._plans_lock:
            for cached_plan, _ in self._plans.values():
                cached_plan.reader.close()
            self._plans.clear()

    def __enter__(self) -> "CGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gone_error(e: OSError) -> CgroupGone:
    """Returns the CgroupGone for an OSError met reading a removed cgroup."""
    return CgroupGone(e.errno, "the cgroup was removed" if e.errno == errno.ENODEV
                      else e.strerror, e.filename)


def _keys_of(path: str, separator: str = " ") -> list[str]:
    """Returns the keys of a keyed file ("key value" or "Key: value"); raises OSError."""
    return [line.split(separator.encode(), 1)[0].decode(errors="replace")
            for line in read_regular(path).splitlines() if line]


def missing_reason(where: Any) -> str | None:
    """Returns why a resolved metric cannot be read now, or None when it can."""
    if isinstance(where, Unavailable):
        return str(where.reason)
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
                  found.problems, found.hierarchy_roots, found.missing, found.unmounted)
