"""Finding a process's cgroup directories from /proc/<pid>/cgroup and mountinfo.

References: Documentation/admin-guide/cgroup-v2.rst ("Namespace" and "Processes"),
Documentation/admin-guide/cgroup-v1/cgroups.rst, and proc(5) for mountinfo.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

from pycgroup._pure import read_regular
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
    super_options: frozenset[str]  # v1: the controllers and "name=" of the hierarchy


@dataclass(frozen=True)
class Membership:
    """One line of /proc/<pid>/cgroup: "hierarchy-ID:controller-list:cgroup-path"."""

    hierarchy: int  # 0 is the cgroup v2 hierarchy
    controllers: tuple[str, ...]  # empty for v2; may hold "name=systemd"
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


def _candidates(membership: Membership, mounts: list[Mount],
                all_controllers: set[str]) -> list[Mount]:
    """Returns the mounts of a membership's hierarchy, those at the conventional place
    (/sys/fs/cgroup and below, where the JDK and runc look) first."""
    if membership.hierarchy == 0:
        found = [m for m in mounts if m.fstype == "cgroup2"]
    else:
        wanted = set(membership.controllers)
        found = [m for m in mounts
                 if m.fstype == "cgroup" and wanted == (m.super_options & all_controllers)]
    return sorted(found, key=lambda m: not _conventional(m.mountpoint))


def _conventional(mountpoint: str) -> bool:
    return mountpoint == CONVENTIONAL or mountpoint.startswith(CONVENTIONAL + "/")


#: Where cgroup hierarchies are mounted by convention.
CONVENTIONAL = "/sys/fs/cgroup"
#: How many directories a search for a process's cgroup below a mount point may visit.
SEARCH_LIMIT = 20000


def _visible(mounts: list[Mount]) -> list[Mount]:
    """Returns the mounts not hidden by a later mount on the same mount point."""
    last = {m.mountpoint: i for i, m in enumerate(mounts)}
    return [m for i, m in enumerate(mounts) if last[m.mountpoint] == i]


def _ups(path: str) -> tuple[int, list[str]]:
    """Returns how many ".." a path starts with, and the components after them."""
    parts = [p for p in path.split("/") if p and p != "."]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    return ups, parts[ups:]


def search_depth(cgroup_path: str, mount_root: str) -> int | None:
    """Returns how deep below a mount point a cgroup must be, from the ".." components of
    its path and of the mount's root (both relative to the reader's cgroup namespace), or
    None when they do not say.

    A mount root of "/../.." shows the hierarchy two levels above the namespace's root; a
    cgroup "/../x" is one level above it, then "x": it lies 2 - 1 + 1 = 2 levels below the
    mount point, under a directory whose name the namespace hides."""
    ups, rest = _ups(cgroup_path)
    root_ups, root_rest = _ups(mount_root)
    if root_rest or ups > root_ups or ".." in rest:
        return None
    return root_ups - ups + len(rest)


def _lists(procs_file: str, pid: int) -> bool:
    try:
        return str(pid).encode() in read_regular(procs_file).split()
    except OSError:
        return False


def find_by_procs(base: str, cgroup_path: str, mount_root: str, pid: int) -> str | None:
    """Returns the directory below base (relative to it; "" for base) whose cgroup.procs
    lists pid, searching only where cgroup_path can be (its known trailing components, at
    the depth its ".." components give when they do), or None.

    This is how a cgroup outside the reader's namespace, or a mount's root, is found: the
    kernel shows its path with ".." components that hide the directory names above."""
    depth = search_depth(cgroup_path, mount_root)
    tail = _ups(cgroup_path)[1]
    if ".." in tail:
        tail = []
    visited = 0
    stack: list[tuple[str, int]] = [("", 0)]
    while stack and visited < SEARCH_LIMIT:
        relative, level = stack.pop()
        visited += 1
        directory = os.path.join(base, relative) if relative else base
        parts = relative.split("/") if relative else []
        fits = (depth is None or level == depth) and (not tail or parts[-len(tail):] == tail)
        if fits and _lists(os.path.join(directory, "cgroup.procs"), pid):
            return relative
        if depth is not None and level >= depth:
            continue
        try:
            entries = sorted(e.name for e in os.scandir(directory)
                             if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        stack.extend((f"{relative}/{e}" if relative else e, level + 1)
                     for e in reversed(entries))
    return None


@dataclass(frozen=True)
class Hierarchies:
    """Where a process's cgroups are: the result of :func:`resolve`."""

    mode: str  # "v1", "v2", "hybrid", or "none"
    paths: dict[str, str]  # controller (or "unified") -> cgroup directory under rootfs
    mount_roots: dict[str, str]  # controller (or "unified") -> its mount point under rootfs
    deleted: bool
    problems: tuple[str, ...]  # what could not be found as the kernel describes it
    # controller (or "unified") -> the hierarchy's directory its mount shows (mountinfo
    # field 4): "/" unless the mount shows a subtree (a container's cgroup on v1).
    hierarchy_roots: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # directories in paths that did not exist when found
    # Controllers (or "unified") of the process's hierarchies that no mount shows: it is in
    # a cgroup there whose limits cannot be read.
    unmounted: tuple[str, ...] = ()


def resolve(memberships: list[Membership], mounts: list[Mount], rootfs: str = "/",
            pid: int | None = None) -> Hierarchies:
    """Returns the directory of each of the process's hierarchies under rootfs.

    A cgroup outside its mount's root (another cgroup namespace, a process moved after
    its namespace was made, ``unshare -C`` without remounting) is searched for below the
    mount point by the cgroup.procs that lists pid (the process's PID as the reader's
    procfs numbers it); when that finds nothing, the mount point itself stands in, as the
    JDK does. Either is said in ``problems``."""
    mounts = _visible(mounts)
    all_controllers = {c for m in memberships for c in m.controllers}
    paths: dict[str, str] = {}
    roots: dict[str, str] = {}
    hierarchy_roots: dict[str, str] = {}
    problems: list[str] = []
    unmounted: list[str] = []
    for membership in memberships:
        if membership.hierarchy != 0 and not membership.controllers:
            continue  # a v1 hierarchy with no controllers and no name: nothing to read
        names = ["unified"] if membership.hierarchy == 0 else [
            c for c in membership.controllers if not c.startswith("name=")
        ]
        if not names:
            continue  # "name=systemd" and the like are not controllers
        label = ",".join(names)
        candidates = _candidates(membership, mounts, all_controllers)
        if not candidates:
            problems.append(f"{label}: hierarchy {membership.hierarchy} is not mounted")
            unmounted += names
            continue
        covering = [(m, r) for m in candidates
                    if (r := relative_to_root(membership.path, m.root)) is not None]
        if covering:
            mount, relative = covering[0]
        else:
            mount = candidates[0]
            base = os.path.join(rootfs, mount.mountpoint.lstrip("/"))
            found = None if pid is None or membership.deleted else find_by_procs(
                base, membership.path, mount.root, pid)
            outside = (f"{label}: cgroup {membership.path} is outside the root "
                       f"{mount.root} of its mount at {mount.mountpoint} (another cgroup "
                       "namespace, or the process was moved out of it)")
            if found is not None:
                relative = found
                problems.append(f"{outside}; found it by the cgroup.procs that lists "
                                f"PID {pid}")
            else:
                relative = ""
                problems.append(f"{outside}; no cgroup.procs below the mount point lists "
                                f"PID {pid}, so the mount point's limits stand in (as the "
                                "JDK does): they may be looser than the process's own")
        base = os.path.join(rootfs, mount.mountpoint.lstrip("/"))
        for name in names:
            paths[name] = posixpath.normpath(os.path.join(base, relative))
            roots[name] = posixpath.normpath(base)
            hierarchy_roots[name] = mount.root
    missing = []
    for path in dict.fromkeys(paths.values()):
        if not os.path.isdir(path):
            missing.append(path)
            label = ",".join(n for n, p in paths.items() if p == path)
            problems.append(f"{label}: the cgroup directory {path} does not exist"
                            + (" (the kernel reports the cgroup as deleted)"
                               if any(m.deleted for m in memberships) else
                               " (is the root right for this procfs?)"))
    v1 = any(name != "unified" for name in paths)
    v2 = "unified" in paths
    mode = "hybrid" if v1 and v2 else "v1" if v1 else "v2" if v2 else "none"
    deleted = any(m.deleted for m in memberships)
    return Hierarchies(mode, paths, roots, deleted, tuple(problems), hierarchy_roots,
                       tuple(missing), tuple(unmounted))


def namespace_pids(status_text: str) -> tuple[int, ...]:
    """Returns a process's PIDs from its /proc/<pid>/status: the NSpid line (the PID in
    the PID namespace of the procfs read, then in each nested namespace down to the
    process's own), else the Pid line alone (kernels before 4.1); () when neither is there."""
    pid_line = None
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == "NSpid":
            return tuple(int(v) for v in value.split())
        if key == "Pid":
            pid_line = (int(value),)
    return pid_line or ()


def procfs_pid(pid: int | str, procfs: str = "/proc") -> int | None:
    """Returns the PID of a process as its procfs numbers it (what that namespace's
    cgroup.procs lists), or None when procfs does not say."""
    try:
        with open(os.path.join(procfs, str(pid), "status"), encoding="utf-8",
                  errors="replace") as f:
            pids = namespace_pids(f.read())
    except OSError:
        pids = ()
    if pids:
        return pids[0]
    return int(pid) if str(pid).isdigit() else None


def mountinfo_path(pid: int | str = "self", procfs: str = "/proc", rootfs: str = "/") -> str:
    """Returns the mountinfo that places pid's cgroups under rootfs.

    With rootfs "/" that is the reader's own (``<procfs>/self/mountinfo``): the
    hierarchies as this process sees them. With another rootfs (a container's root seen
    from the host), it is the process's own ``<procfs>/<pid>/mountinfo``, whose mount
    points are under that root; whichever of the two exists is used when the other does
    not (a procfs without ``self``, a fixture tree)."""
    own = os.path.join(procfs, "self", "mountinfo")
    theirs = os.path.join(procfs, str(pid), "mountinfo")
    first, second = (own, theirs) if rootfs == "/" or str(pid) == "self" else (theirs, own)
    return first if os.path.exists(first) or not os.path.exists(second) else second


def discover(pid: int | str = "self", procfs: str = "/proc", rootfs: str = "/") -> Hierarchies:
    """Returns the hierarchies of a process, read from procfs.

    The process's /proc/<pid>/cgroup paths are relative to the reader's cgroup
    namespace, so they are resolved through a mountinfo read by the same reader
    (see :func:`mountinfo_path`)."""
    cgroup_file = os.path.join(procfs, str(pid), "cgroup")
    mountinfo_file = mountinfo_path(pid, procfs, rootfs)
    with open(cgroup_file, encoding="utf-8", errors="surrogateescape") as f:
        memberships = parse_proc_cgroup(f.read(), cgroup_file)
    with open(mountinfo_file, encoding="utf-8", errors="surrogateescape") as f:
        mounts = parse_mountinfo(f.read(), mountinfo_file)
    return resolve(memberships, mounts, rootfs, procfs_pid(pid, procfs))
