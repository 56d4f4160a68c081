"""pycgroup: the cgroup limits, usage, throttling and pressure a process really has.

    >>> import pycgroup
    >>> cg = pycgroup.current()
    >>> cg.read(["memory.current", "cpu.stat.throttled_usec"])
    >>> pycgroup.limits().cpu_count
"""

from pycgroup.cgroup import CGroup, current, of_pid
from pycgroup.errors import (CgroupGone, Error, MetricUnavailable, MissingExtra, ParseError,
                             SamplerClosed)
from pycgroup.limits import Limits, available_memory, limits
from pycgroup import gpu
from pycgroup.samples import GpuThrottling, Samples, Throttling
from pycgroup.sampler import Mark, Sampler, SamplerStats, Span
from pycgroup.steps import Steps
from pycgroup.summary import Distribution, StepSummary
from pycgroup.errors import (NewerRecordingFormat, NotARecording, RecordingError,
                             TruncatedRecording)
from pycgroup.export.files import Recording, load, save
from pycgroup.export.stream import Recorder, record

__all__ = [
    "save",
    "record",
    "load",
    "TruncatedRecording",
    "RecordingError",
    "Recording",
    "Recorder",
    "NotARecording",
    "NewerRecordingFormat",
    "CGroup",
    "CgroupGone",
    "Distribution",
    "Error",
    "GpuThrottling",
    "Limits",
    "Mark",
    "MetricUnavailable",
    "MissingExtra",
    "ParseError",
    "Sampler",
    "SamplerStats",
    "Samples",
    "SamplerClosed",
    "Span",
    "StepSummary",
    "Steps",
    "Throttling",
    "available_memory",
    "current",
    "gpu",
    "limits",
    "of_pid",
]
__version__ = "0.1.0"
