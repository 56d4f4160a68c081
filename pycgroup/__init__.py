"""pycgroup: the cgroup limits, usage, throttling and pressure a process really has.

    >>> import pycgroup
    >>> cg = pycgroup.current()
    >>> cg.read(["memory.current", "cpu.stat.throttled_usec"])
    >>> pycgroup.limits().cpu_count
"""

from pycgroup.cgroup import CGroup, current, of_pid
from pycgroup.errors import ParseError
from pycgroup.limits import Limits, available_memory, limits
from pycgroup.samples import Samples, Throttling
from pycgroup.sampler import Mark, Sampler, SamplerStats, Span

__all__ = [
    "CGroup",
    "Limits",
    "Mark",
    "ParseError",
    "Sampler",
    "SamplerStats",
    "Samples",
    "Span",
    "Throttling",
    "available_memory",
    "current",
    "limits",
    "of_pid",
]
__version__ = "0.1.0"
