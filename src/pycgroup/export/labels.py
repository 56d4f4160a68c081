"""The labels every exported series carries: which cgroup, and which rank of a job."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from pycgroup.cgroup import CGroup

#: Environment variables set by torchrun, Lightning, DeepSpeed and most MPI launchers,
#: -> the label each becomes.
RANK_VARIABLES = {"RANK": "rank", "LOCAL_RANK": "local_rank"}
#: The hierarchies whose path names the cgroup, in order of preference.
_NAMING_HIERARCHIES = ("memory", "cpu", "unified")


def cgroup_path(cg: CGroup) -> str:
    """Returns the cgroup's path as /proc/<pid>/cgroup shows it ("/" for the root): the
    path in the memory hierarchy, else the cpu one, else the cgroup2 one; "" when the
    process is in no mounted hierarchy."""
    order = ("unified",) + _NAMING_HIERARCHIES if cg.mode == "v2" else _NAMING_HIERARCHIES
    for controller in order:
        if controller in cg.paths:
            root = cg.mount_roots.get(controller, cg.paths[controller])
            relative = os.path.relpath(cg.paths[controller], root)
            return "/" if relative == "." else "/" + relative
    return ""


def rank_labels(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Returns {"rank": ..., "local_rank": ...} for the rank variables that are set."""
    environ = os.environ if environ is None else environ
    return {label: environ[variable] for variable, label in RANK_VARIABLES.items()
            if environ.get(variable, "") != ""}


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """Returns LOCAL_RANK as an int (0 when unset); raises ValueError naming a bad value."""
    environ = os.environ if environ is None else environ
    value = environ.get("LOCAL_RANK", "")
    if value == "":
        return 0
    try:
        rank = int(value)
    except ValueError:
        raise ValueError(f"LOCAL_RANK must be an integer, not {value!r}") from None
    if rank < 0:
        raise ValueError(f"LOCAL_RANK must be >= 0, not {rank}")
    return rank
