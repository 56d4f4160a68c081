"""pycgroup: the cgroup limits, usage, throttling and pressure a process really has.

    >>> import pycgroup
    >>> cg = pycgroup.current()
    >>> cg.read(["memory.current", "cpu.stat.throttled_usec"])
    >>> pycgroup.limits().cpu_count
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from pycgroup._version import __version__
from pycgroup.errors import (CgroupGone, Error, MetricUnavailable, MissingExtra,
                             NewerRecordingFormat, NotARecording, NotRegularFile, OutOfMemory,
                             ParseError, RecordingError, SamplerClosed, SpanNotFinished,
                             TruncatedRecording, UnknownMetric)

if TYPE_CHECKING:  # what the lazily imported names below are
    from pycgroup import gpu
    from pycgroup.cgroup import CGroup, current, of_pid
    from pycgroup.export.files import Recording, load, save
    from pycgroup.export.stream import Recorder, record
    from pycgroup.limits import Limits, available_memory, limits
    from pycgroup.marks import Mark
    from pycgroup.sampler import Sampler, SamplerStats
    from pycgroup.samples import GpuThrottling, Samples, Throttling
    from pycgroup.spans import Span
    from pycgroup.steps import Steps
    from pycgroup.summary import Distribution, StepSummary
    from pycgroup.values import UNLIMITED

#: The public names beyond the errors -> the module defining each, imported on first use
#: (PEP 562). They bring numpy and the core, about 200 ms; the pytest plugin is loaded
#: into every pytest run of an environment that has pycgroup, enabled or not, and
#: imports them only when it is.
_LAZY = {
    **dict.fromkeys(["CGroup", "current", "of_pid"], "pycgroup.cgroup"),
    **dict.fromkeys(["Recording", "load", "save"], "pycgroup.export.files"),
    **dict.fromkeys(["Recorder", "record"], "pycgroup.export.stream"),
    **dict.fromkeys(["Limits", "available_memory", "limits"], "pycgroup.limits"),
    "Mark": "pycgroup.marks",
    **dict.fromkeys(["Sampler", "SamplerStats"], "pycgroup.sampler"),
    **dict.fromkeys(["GpuThrottling", "Samples", "Throttling"], "pycgroup.samples"),
    "Span": "pycgroup.spans",
    "Steps": "pycgroup.steps",
    **dict.fromkeys(["Distribution", "StepSummary"], "pycgroup.summary"),
    "UNLIMITED": "pycgroup.values",
}


def __getattr__(name: str) -> Any:
    if name == "gpu":
        return importlib.import_module("pycgroup.gpu")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pycgroup' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found without this function from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Importing the submodule pycgroup.limits binds it to the package's name "limits",
    which is the function limits(): the function keeps the name."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "limits" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
