"""pycgroup: the cgroup limits, usage, throttling and pressure a process really has.

    >>> import pycgroup
    >>> cg = pycgroup.current()
    >>> cg.read(["memory.current", "cpu.stat.throttled_usec"])
    >>> pycgroup.limits().cpu_count
"""

from pycgroup._version import __version__
from pycgroup.cgroup import CGroup, current, of_pid
from pycgroup.errors import (CgroupGone, Error, MetricUnavailable, MissingExtra,
                             NewerRecordingFormat, NotARecording, NotRegularFile, OutOfMemory,
                             ParseError, RecordingError, SamplerClosed, SpanNotFinished,
                             TruncatedRecording,
                             UnknownMetric)
from pycgroup.limits import Limits, available_memory, limits
from pycgroup.values import UNLIMITED
from pycgroup import gpu
from pycgroup.samples import GpuThrottling, Samples, Throttling
from pycgroup.sampler import Sampler, SamplerStats
from pycgroup.marks import Mark
from pycgroup.spans import Span
from pycgroup.steps import Steps
from pycgroup.summary import Distribution, StepSummary
from pycgroup.export.files import Recording, load, save
from pycgroup.export.stream import Recorder, record

__all__ = [
    "CGroup",
    "CgroupGone",
    "Distribution",
    "Error",
    "GpuThrottling",
    "Limits",
    "Mark",
    "MetricUnavailable",
    "MissingExtra",
    "NewerRecordingFormat",
    "NotARecording",
    "NotRegularFile",
    "OutOfMemory",
    "ParseError",
    "Recorder",
    "Recording",
    "RecordingError",
    "Sampler",
    "SamplerClosed",
    "SamplerStats",
    "Samples",
    "Span",
    "SpanNotFinished",
    "Steps",
    "StepSummary",
    "Throttling",
    "TruncatedRecording",
    "UnknownMetric",
    "UNLIMITED",
    "available_memory",
    "current",
    "gpu",
    "limits",
    "load",
    "of_pid",
    "record",
    "save",
]
