"""Errors raised by pycgroup.

Everything pycgroup raises on purpose is a ``pycgroup.Error``, and also an instance
of the builtin exception a caller would otherwise expect, so both ``except
pycgroup.Error`` and ``except ValueError``/``OSError``/... keep working:

- ``ParseError`` (``ValueError``): a kernel file's content did not have the
  documented format. It names the file and line.
- ``CgroupGone`` (``OSError``): the cgroup was removed while it was being read.
- ``NotRegularFile`` (``OSError``): where a kernel file was expected there is a
  FIFO, a device or a directory, which could block a read or never end. It names the path.
- ``SamplerClosed`` (``RuntimeError``): a method of a closed Sampler was called.
- ``SpanNotFinished`` (``RuntimeError``): a span's figures were asked for before its
  block ended.
- ``MetricUnavailable`` (``LookupError``): a metric named explicitly cannot be provided
  here (a GPU metric without NVML, given to a Sampler); the message says why.
  ``CGroup.read()`` returns None instead, and a Sampler leaves a cgroup metric that this
  cgroup version lacks out of its columns (``Sampler.unavailable`` says why), so one
  metric list serves v1 and v2.
- ``UnknownMetric`` (a ``MetricUnavailable`` and a ``KeyError``): a metric name that is
  not in the catalogue; the message names the closest known names.
- ``OutOfMemory`` (``MemoryError``): a ring could not be allocated; the message names
  the bytes asked for.
- ``MissingExtra`` (``ImportError``): a feature needs an optional dependency that is
  not installed; the message names the ``pip install "pycgroup[extra]"`` to run.
- ``RecordingError`` (``ValueError``), as ``NotARecording``, ``TruncatedRecording`` or
  ``NewerRecordingFormat``: ``load()`` cannot read a file as a recording. It names the
  file and the reason.

Other I/O failures are plain ``OSError`` subclasses carrying the file name
(``FileNotFoundError``, ``PermissionError``, ...).
"""

from __future__ import annotations

import errno
import os
import stat


class Error(Exception):
    """The base of every error pycgroup raises on purpose."""


class ParseError(Error, ValueError):
    """A kernel file's content did not have the documented format."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        where = path or "<buffer>"
        if line:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str | None, int | None]]:
        return (type(self), (self.message, self.path, self.line))


class CgroupGone(Error, OSError):
    """The cgroup was removed while it was being read (the kernel answers ENODEV, or the
    directory is gone)."""


class NotRegularFile(Error, OSError):
    """A path where pycgroup expects a kernel file (cgroupfs, procfs and sysfs files are all
    regular files) is a FIFO, a device, a directory...: opening or reading it could block
    or never end, so it is refused. ``filename`` is the path."""

    def __init__(self, path: str, kind: str | None = None):
        self.kind = kind if kind is not None else _file_kind(path)
        super().__init__(errno.EMEDIUMTYPE, f"not a regular file ({self.kind})", path)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.filename, self.kind))


def _file_kind(path: str) -> str:
    """Returns what is at path, in words ("a FIFO", "a character device", ...)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"cannot stat: {e.strerror}"
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


class SamplerClosed(Error, RuntimeError):
    """A method of a Sampler was called after ``close()``."""


#: What SamplerClosed says from a Sampler's methods.
CLOSED = "this Sampler is closed; make a new one to sample again"


class SpanNotFinished(Error, RuntimeError):
    """A span's figures (delta, rates, peak, throttling, ...) were read before it ended."""


class MetricUnavailable(Error, LookupError):
    """A metric named explicitly cannot be provided by this cgroup or machine: raised by
    Sampler for GPU metrics that cannot be read (``CGroup.read()`` returns None for an
    unavailable metric, and a Sampler leaves out cgroup metrics this cgroup version
    lacks, with the reason in ``Sampler.unavailable``)."""


class UnknownMetric(MetricUnavailable, KeyError):
    """A metric name that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError's own __str__ quotes its argument
        return str(self.args[0]) if self.args else ""


class OutOfMemory(Error, MemoryError):
    """Memory for a ring (or another buffer sized by the caller) could not be allocated."""


class MissingExtra(Error, ImportError):
    """An optional dependency is not installed."""


class RecordingError(Error, ValueError):
    """A file could not be loaded as a pycgroup recording; ``path`` is the file and
    ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.path, self.reason))


class NotARecording(RecordingError):
    """The file is not a pycgroup recording (another program's file, or not one at all)."""


class TruncatedRecording(RecordingError):
    """The file is a pycgroup recording that ends early or is damaged."""


class NewerRecordingFormat(RecordingError):
    """The file was written by a newer pycgroup, in a format version this one cannot read."""
