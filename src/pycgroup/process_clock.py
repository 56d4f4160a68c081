"""The sampler's own process CPU time, from clocks rather than /proc/self/stat.

/proc/<pid>/stat counts CPU time in clock ticks (10 ms at USER_HZ 100), too coarse for
steps of a few milliseconds, and costs a file read and parse. For the calling process
clock_gettime(CLOCK_PROCESS_CPUTIME_ID) gives the CPU time of all its threads in ns,
and getrusage(RUSAGE_SELF) user and system time in µs and the peak RSS
(clock_gettime(2), getrusage(2)). The C core reads them in csrc/process_clock.c; this
is the pure-Python twin."""

from __future__ import annotations

import resource
import time
from typing import TYPE_CHECKING, Mapping

from pycgroup.formats import MISSING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: metric name -> the ProcessClock field (and row-column key) that provides it.
FIELDS = {
    "proc.cpu_usec": "cpu_usec",
    "proc.utime_usec": "utime_usec",
    "proc.stime_usec": "stime_usec",
    "proc.max_rss_bytes": "max_rss_bytes",
}


def read_into(columns: Mapping[str, int], row: NDArray[np.int64]) -> None:
    """Writes the clocks named in columns (field -> row index) into row."""
    if "cpu_usec" in columns:
        row[columns["cpu_usec"]] = time.process_time_ns() // 1000
    if columns.keys() - {"cpu_usec"}:
        try:
            ru = resource.getrusage(resource.RUSAGE_SELF)
        except OSError:
            ru = None
        for field in ("utime_usec", "stime_usec", "max_rss_bytes"):
            if field in columns:
                row[columns[field]] = MISSING if ru is None else _rusage_value(ru, field)


def _rusage_value(ru: resource.struct_rusage, field: str) -> int:
    """Returns a getrusage() figure in the unit of its row column (µs or bytes)."""
    if field == "utime_usec":
        return round(ru.ru_utime * 1e6)
    if field == "stime_usec":
        return round(ru.ru_stime * 1e6)
    return ru.ru_maxrss * 1024
