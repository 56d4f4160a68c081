"""A short-lived child cgroup for one command (``pycgroup record --cgroup new``): made in
every hierarchy this process's cgroups are mounted in (cgroup v1 controllers, and the
cgroup2 hierarchy), with optional memory, CPU and pids limits, and removed afterwards.

Kernel references: Documentation/admin-guide/cgroup-v2.rst ("Controlling Controllers",
memory.max, cpu.max, pids.max, cgroup.kill), cgroup-v1/memory.rst (limit_in_bytes),
scheduler/sched-bwc.rst (cfs_quota_us/cfs_period_us), cgroup-v1/pids.rst.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
import uuid

from pycgroup.cgroup import CGroup, current

PREFIX = "pycgroup-record-"
#: v1 hierarchies a command is moved into (cpuset needs cpus and mems set first, and
#: limits nothing pycgroup records, so it is left alone).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "blkio", "io")
CPU_PERIOD_US = 100_000
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Returns bytes for "512M", "1G", "1.5GiB", "1073741824" (K, M, G, T are powers of
    1024, as docker and systemd read them)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r} (try 512M or 2G)")
    scale = 1024 ** " kmgt".index(m[2].lower() or " ")
    return int(float(m[1]) * scale)


class ChildCgroup:
    """Directories made for one command; ``join()`` (a preexec_fn) moves the calling
    process into them; ``remove()`` kills what is left in them and removes them."""

    def __init__(self, memory: int | None = None, cpus: float | None = None,
                 pids: int | None = None):
        if os.geteuid() != 0:
            raise PermissionError("--cgroup new needs root: only root may create cgroups "
                                  "and move processes between them")
        here = current()
        if here.mode == "none":
            raise OSError("--cgroup new: no cgroup hierarchy is mounted here")
        self.name = PREFIX + uuid.uuid4().hex[:10]
        self.dirs: dict[str, str] = {}  # controller or "unified" -> directory made
        try:
            self._make(here)
            self._limit(memory, cpus, pids)
        except BaseException:
            self.remove()
            raise

    def _make(self, here: CGroup) -> None:
        made_in: dict[str, str] = {}  # a mount's directory is shared by co-mounted controllers
        for controller, leaf in here.paths.items():
            if controller != "unified" and controller not in V1_CONTROLLERS:
                continue
            root = here.mount_roots.get(controller, leaf)
            if not os.access(root, os.W_OK):
                continue
            target = os.path.join(root, self.name)
            if target not in made_in.values():
                os.mkdir(target)
            made_in[controller] = target
        if not made_in:
            raise OSError("--cgroup new: no writable cgroup hierarchy is mounted")
        self.dirs = made_in

    def _write(self, controller: str, file: str, value: int | str) -> None:
        with open(os.path.join(self.dirs[controller], file), "w") as f:
            f.write(str(value))

    def _v2_enable(self, controller: str) -> bool:
        """Enables a controller for the new cgroup's parent's children; returns whether
        the cgroup2 hierarchy has it."""
        if "unified" not in self.dirs:
            return False
        parent = os.path.dirname(self.dirs["unified"])
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            if controller not in f.read().split():
                return False
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write(f"+{controller}")
        return True

    def _limit(self, memory: int | None, cpus: float | None, pids: int | None) -> None:
        if memory is not None:
            if "memory" in self.dirs:
                self._write("memory", "memory.limit_in_bytes", memory)
            elif self._v2_enable("memory"):
                self._write("unified", "memory.max", memory)
            else:
                raise OSError("--memory: no memory controller is available here")
        if cpus is not None:
            quota = max(1000, round(cpus * CPU_PERIOD_US))
            if "cpu" in self.dirs:
                self._write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US)
                self._write("cpu", "cpu.cfs_quota_us", quota)
            elif self._v2_enable("cpu"):
                self._write("unified", "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                raise OSError("--cpus: no cpu controller is available here")
        if pids is not None:
            if "pids" in self.dirs:
                self._write("pids", "pids.max", pids)
            elif self._v2_enable("pids"):
                self._write("unified", "pids.max", pids)
            else:
                raise OSError("--pids: no pids controller is available here")

    def join(self) -> None:
        """Moves the calling process into every directory (use as a preexec_fn)."""
        for directory in set(self.dirs.values()):
            with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                f.write("0")

    def _pids(self) -> set[int]:
        found: set[int] = set()
        for directory in set(self.dirs.values()):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    found |= {int(p) for p in f.read().split()}
            except FileNotFoundError:
                pass
        return found

    def remove(self, timeout: float = 5.0) -> None:
        """Kills the processes left in the cgroup (a command's stray children) and removes
        its directories."""
        deadline = time.monotonic() + timeout
        while self.dirs:
            for pid in self._pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for controller, directory in list(self.dirs.items()):
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    continue
                del self.dirs[controller]
            if self.dirs:
                time.sleep(0.01)

    def __enter__(self) -> "ChildCgroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
