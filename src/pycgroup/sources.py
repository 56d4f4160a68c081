"""What a metric name resolves to: a file to read (Source), other metrics to compute it
from (Derived), or the reason this cgroup cannot provide it (Unavailable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

from pycgroup.formats import Format


@dataclass(frozen=True)
class Source:
    """Where a metric is read: a file, its format, a key in it, and a unit conversion."""

    path: str
    format: Format
    key: str = ""
    mul: int = 1
    div: int = 1
    unlimited_at: int = 0
    version: str = ""  # "v1", "v2", or "" for procfs

    def describe(self) -> str:
        where = f"{self.path} key {self.key!r}" if self.key else self.path
        scale = f" ×{self.mul}" if self.mul != 1 else ""
        scale += f" ÷{self.div}" if self.div != 1 else ""
        return f"{self.version + ' ' if self.version else ''}{where}{scale}"


@dataclass(frozen=True)
class ProcessClock:
    """A CPU clock of the calling process itself, read with clock_gettime and getrusage
    rather than from a file (see pycgroup.process_clock)."""

    field: str  # "cpu_usec", "utime_usec", "stime_usec" or "max_rss_bytes"

    def describe(self) -> str:
        how = ("clock_gettime(CLOCK_PROCESS_CPUTIME_ID)" if self.field == "cpu_usec"
               else f"getrusage(RUSAGE_SELF) {self.field}")
        return f"this process: {how}"


@dataclass(frozen=True)
class Unavailable:
    """A metric this cgroup cannot provide, and why."""

    reason: str


@dataclass(frozen=True)
class Derived:
    """A metric computed from others: memory.working_set (which the sampler computes too),
    and the entries ``compute`` derives from its inputs' values in ``read()``."""

    inputs: tuple[str, ...]
    compute: Optional[Callable[..., Union[int, float, None]]] = None
    note: str = ""  # how, for explain()
