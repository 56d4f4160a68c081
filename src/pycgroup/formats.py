"""The file formats pycgroup reads, and how one file maps onto row columns.

Shared by the native reader and its pure-Python twin, so both are driven by the
same description of what to read.
"""

from __future__ import annotations

import enum
from typing import Literal, NamedTuple, Sequence, Union

#: Row value of a file or key that is absent, or of a read that failed.
MISSING = -(2**63)
#: Row value of a limit the kernel reports as "max" (or "-1" for a v1 quota).
UNLIMITED = 2**63 - 1
#: Largest ordinary row value; larger numbers saturate here.
VALUE_CEIL = 2**63 - 2


#: A value as parsed from a file, before conversion to a row value: a number, "max", or
#: None for a key the file does not have.
RawValue = Union[int, Literal["max"], None]


class Format(enum.IntEnum):
    """How a file is laid out (values match ``enum pcg_format`` in ``csrc/source.h``)."""

    FLAT_KEYED = 0  # "key value" lines: memory.stat, cpu.stat, memory.events
    COLON_KEYED = 1  # "Key:  value kB" lines: /proc/meminfo, /proc/self/status
    VALUE = 2  # one value or "max": memory.max, memory.current, pids.max
    QUOTA_V1 = 3  # one value, "-1" meaning unlimited: cpu.cfs_quota_us
    CPU_MAX = 4  # "max 100000": cpu.max, keys "quota" and "period"
    PSI = 5  # pressure files, keys "some" and "full" (their total= in µs)
    PID_STAT = 6  # /proc/<pid>/stat, keys are proc(5) field numbers ("14")


class Field(NamedTuple):
    """One value of a file and the row column it lands in: ``value * mul // div``."""

    key: str
    column: int
    mul: int = 1
    div: int = 1
    unlimited_at: int = 0  # values at or above this (when > 0) mean "unlimited"


class SourceSpec(NamedTuple):
    """One file to open once and read repeatedly."""

    path: str
    format: Format
    fields: Sequence[Field]


def convert(value: RawValue, field: Field) -> int:
    """Returns the row value of a parsed value (an int, ``"max"`` or None) for ``field``."""
    if value is None:
        return MISSING
    if value == "max":
        return UNLIMITED
    scaled = min(value * field.mul // field.div, VALUE_CEIL)
    if field.unlimited_at > 0 and scaled >= field.unlimited_at:
        return UNLIMITED
    return scaled
