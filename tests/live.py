"""Helpers for tests on the running kernel: make cgroups under the mounted hierarchies,
run children inside them, and always remove them again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from pycgroup.discovery import parse_mountinfo

PREFIX = "pycgroup-test-"


def mount_points() -> dict:
    """Returns {controller or "unified": mount point} for the writable cgroup mounts."""
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    found = {}
    for m in mounts:
        if m.root != "/" or not os.access(m.mountpoint, os.W_OK):
            continue
        if m.fstype == "cgroup2":
            found.setdefault("unified", m.mountpoint)
        elif m.fstype == "cgroup":
            for option in m.super_options:
                if option in ("cpu", "cpuacct", "memory", "pids", "cpuset"):
                    found.setdefault(option, m.mountpoint)
    return found


class LiveCgroups:
    """Nested test cgroups (parent/leaf) in every hierarchy asked for."""

    def __init__(self, controllers):
        points = mount_points()
        self.name = PREFIX + uuid.uuid4().hex[:10]
        self.parents, self.leaves = {}, {}
        self.missing = [c for c in controllers if c not in points]
        for controller in controllers:
            if controller not in points:
                continue
            mount = points[controller]
            if any(d.startswith(mount + "/") for d in self.parents.values()):
                continue  # co-mounted with one made already
            parent = os.path.join(mount, self.name)
            if not os.path.isdir(parent):
                os.mkdir(parent)
            leaf = os.path.join(parent, "leaf")
            os.mkdir(leaf)
            self.parents[controller], self.leaves[controller] = parent, leaf
        for controller, point in points.items():  # co-mounted controllers share a directory
            if controller in controllers and controller not in self.leaves:
                owner = next((c for c, p in points.items() if p == point and c in self.leaves), None)
                if owner:
                    self.parents[controller] = self.parents[owner]
                    self.leaves[controller] = self.leaves[owner]

    def set(self, controller, file, value, level="leaf"):
        directory = (self.leaves if level == "leaf" else self.parents)[controller]
        with open(os.path.join(directory, file), "w") as f:
            f.write(str(value))

    def join(self):
        """Moves the calling process into every leaf (use as a preexec_fn)."""
        for leaf in set(self.leaves.values()):
            with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                f.write("0")

    def run(self, code, **kwargs):
        """Runs Python code in a child that first joins the leaves. It runs from "/" so
        that it imports the installed pycgroup, not the source tree."""
        return subprocess.run([sys.executable, "-c", code], preexec_fn=self.join, cwd="/",
                              capture_output=True, text=True, timeout=120, **kwargs)

    def popen(self, args, **kwargs):
        return subprocess.Popen(args, preexec_fn=self.join, cwd="/", **kwargs)

    def remove(self):
        """Removes the cgroups, killing anything still inside them."""
        for directory in [*set(self.leaves.values()), *set(self.parents.values())]:
            for _ in range(100):
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    for pid in open(os.path.join(directory, "cgroup.procs")).read().split():
                        try:
                            os.kill(int(pid), 9)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.05)
