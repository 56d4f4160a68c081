"""Finding a process's cgroup directories from /proc/<pid>/cgroup and mountinfo.

References: Documentation/admin-guide/cgroup-v2.rst ("Namespace" and "Processes"),
Documentation/admin-guide/cgroup-v1/cgroups.rst, and proc(5) for mountinfo.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from pycgroup.errors import ParseError

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_DELETED = " (deleted)"


def unescape(field: str) -> str:
    """Returns a mountinfo path with its octal escapes (\\040 space, \\011 tab,
    \\012 newline, \\134 backslash) decoded."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), field)


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo."""

    root: str  # the directory of the hierarchy that is mounted (field 4)
    mountpoint: str  # where (field 5)
    fstype: str  # "cgroup", "cgroup2", ...
    super_options: frozenset  # v1: the controllers and "name=" of the hierarchy


@dataclass(frozen=True)
class Membership:
    """One line of /proc/<pid>/cgroup: "hierarchy-ID:controller-list:cgroup-path"."""

    hierarchy: int  # 0 is the cgroup v2 hierarchy
    controllers: tuple  # empty for v2; may hold "name=systemd"
    path: str
    deleted: bool  # the kernel appended " (deleted)": the cgroup was removed


def parse_mountinfo(text: str, path: str = "mountinfo") -> list[Mount]:
    """Returns the mounts of a mountinfo file, in its order."""
    mounts = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)  # zero or more optional fields end with "-"
            fstype, super_options = fields[separator + 1], fields[separator + 3]
            root, mountpoint = fields[3], fields[4]
        except (ValueError, IndexError):
            raise ParseError("not a mountinfo line", path, number) from None
        mounts.append(Mount(unescape(root), unescape(mountpoint), fstype,
                            frozenset(super_options.split(","))))
    return mounts


def parse_proc_cgroup(text: str, path: str = "cgroup") -> list[Membership]:
    """Returns the hierarchies a process belongs to."""
    memberships = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split(":", 2)  # the path itself may contain ':'
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].startswith("/"):
            raise ParseError("not a hierarchy-ID:controllers:path line", path, number)
        cgroup_path = parts[2]
        deleted = cgroup_path.endswith(_DELETED)
        if deleted:
            cgroup_path = cgroup_path[: -len(_DELETED)]
        controllers = tuple(c for c in parts[1].split(",") if c)
        memberships.append(Membership(int(parts[0]), controllers, cgroup_path, deleted))
    return memberships


def relative_to_root(cgroup_path: str, mount_root: str) -> str | None:
    """Returns cgroup_path relative to a mount's root ("" for the root itself), or None when
    the cgroup is not visible through that mount: outside its root, or outside this
    cgroup namespace (a path with ".." components, as for a process migrated out of it)."""
    if ".." in cgroup_path.split("/"):
        return None
    if mount_root == "/":
        return cgroup_path.strip("/")
    if cgroup_path == mount_root:
        return ""
    if cgroup_path.startswith(mount_root.rstrip("/") + "/"):
        return cgroup_path[len(mount_root.rstrip("/")) + 1 :].strip("/")
    return None


def _candidates(membership: Membership, mounts: list[Mount], all_controllers: set) -> list:
    if membership.hierarchy == 0:
        return [m for m in mounts if m.fstype == "cgroup2"]
    wanted = set(membership.controllers)
    return [
        m for m in mounts
        if m.fstype == "cgroup" and wanted == (m.super_options & all_controllers)
    ]


def _visible(mounts: list[Mount]) -> list[Mount]:
    """Returns the mounts not hidden by a later mount on the same mount point."""
    last = {m.mountpoint: i for i, m in enumerate(mounts)}
    return [m for i, m in enumerate(mounts) if last[m.mountpoint] == i]


@dataclass(frozen=True)
class Hierarchies:
    """Where a process's cgroups are: the result of :func:`resolve`."""

    mode: str  # "v1", "v2", "hybrid", or "none"
    paths: dict  # controller (or "unified") -> cgroup directory under rootfs
    mount_roots: dict  # controller (or "unified") -> the directory its mount shows as root
    deleted: bool
    problems: tuple  # why a hierarchy the process belongs to is not in paths


def resolve(memberships: list[Membership], mounts: list[Mount], rootfs: str = "/") -> Hierarchies:
    """Returns the directory of each of the process's hierarchies under rootfs."""
    mounts = _visible(mounts)
    all_controllers = {c for m in memberships for c in m.controllers}
    paths, roots, problems = {}, {}, []
    for membership in memberships:
        if membership.hierarchy != 0 and not membership.controllers:
            continue  # a v1 hierarchy with no controllers and no name: nothing to read
        names = ["unified"] if membership.hierarchy == 0 else [
            c for c in membership.controllers if not c.startswith("name=")
        ]
        if not names:
            continue  # "name=systemd" and the like are not controllers
        candidates = _candidates(membership, mounts, all_controllers)
        for mount in candidates:
            relative = relative_to_root(membership.path, mount.root)
            if relative is None:
                continue
            base = os.path.join(rootfs, mount.mountpoint.lstrip("/"))
            for name in names:
                paths[name] = posixpath.normpath(os.path.join(base, relative))
                roots[name] = posixpath.normpath(base)
            break
        else:
            label = ",".join(names)
            if not candidates:
                problems.append(f"{label}: hierarchy {membership.hierarchy} is not mounted")
            else:
                problems.append(
                    f"{label}: cgroup {membership.path} is outside every mount of its "
                    "hierarchy (another cgroup namespace, or the process was moved out of it)"
                )
    v1 = any(name != "unified" for name in paths)
    v2 = "unified" in paths
    mode = "hybrid" if v1 and v2 else "v1" if v1 else "v2" if v2 else "none"
    deleted = any(m.deleted for m in memberships)
    return Hierarchies(mode, paths, roots, deleted, tuple(problems))


def discover(pid: int | str = "self", procfs: str = "/proc", rootfs: str = "/") -> Hierarchies:
    """Returns the hierarchies of a process, read from procfs.

    The process's /proc/<pid>/cgroup paths are relative to the reader's cgroup
    namespace, so they are resolved through the reader's own mountinfo."""
    cgroup_file = os.path.join(procfs, str(pid), "cgroup")
    mountinfo_file = os.path.join(procfs, "self", "mountinfo")
    with open(cgroup_file, encoding="utf-8", errors="surrogateescape") as f:
        memberships = parse_proc_cgroup(f.read(), cgroup_file)
    with open(mountinfo_file, encoding="utf-8", errors="surrogateescape") as f:
        mounts = parse_mountinfo(f.read(), mountinfo_file)
    return resolve(memberships, mounts, rootfs)
