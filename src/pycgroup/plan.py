"""A read plan: the metrics asked for, the sources that hold them, and one reader."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

import numpy as np

from pycgroup import catalogue, gpu
from pycgroup.backends import reader_class
from pycgroup import process_clock
from pycgroup.sources import Derived, ProcessClock, Source
from pycgroup.formats import Field, SourceSpec
from pycgroup.values import from_row


@dataclass
class Plan:
    """How to fill one row holding every source a set of metric names needs."""

    names: tuple  # the metric names, in the order asked
    inputs: list  # the metric names read from files (derived ones' inputs included)
    sources: dict  # input name -> Source
    column: dict  # input name -> row column
    unavailable: dict  # name -> reason
    reader: object
    gpu_groups: list  # one per GPU, filling the columns after the files'
    # this process's CPU clocks: ProcessClock field -> row column (after the files')
    process_clock: dict = field(default_factory=dict)

    @property
    def ncolumns(self) -> int:
        return self.reader.ncolumns

    def read(self) -> np.ndarray:
        """Returns one row (int64) of every input; raises the first file error met. A GPU
        that cannot be read (lost, or gone from the bus) leaves its columns MISSING."""
        row = np.empty(self.ncolumns, dtype=np.int64)
        if self.reader.read_into(row):
            raise self.reader.errors()[0][1]
        if self.process_clock:
            process_clock.read_into(self.process_clock, row)
        for group in self.gpu_groups:
            group.read_into(row)  # a lost GPU leaves its columns MISSING: not a cgroup error
        return row

    def values(self, row) -> dict:
        """Returns {name: int, UNLIMITED (inf) or None (unavailable)} for the asked names."""
        out = {}
        for name in self.names:
            if name == catalogue.WORKING_SET:
                out[name] = working_set(*(self._value(row, i) for i in catalogue.WORKING_SET_INPUTS))
            else:
                out[name] = self._value(row, name)
        return out

    def _value(self, row, name):
        column = self.column.get(name)
        if column is None:
            return None
        return from_row(row[column])


def working_set(current: int | None, inactive_file: int | None) -> int | None:
    """Returns memory.current - inactive_file floored at 0, as cAdvisor and the kubelet do."""
    if current is None or inactive_file is None:
        return None
    return max(0, current - inactive_file)


def build(names, resolve, backend: str = "native") -> Plan:
    """Returns a plan for names, resolving each with resolve(name) -> Source/Derived/Unavailable.

    Files that do not exist make their metrics unavailable; other open errors are raised."""
    names = tuple(dict.fromkeys(names))
    sources, unavailable, inputs = {}, {}, []
    for name in names:
        where = resolve(name)
        if isinstance(where, Derived):
            for dependency in where.inputs:
                found = resolve(dependency)
                if isinstance(found, Source):
                    sources.setdefault(dependency, found)
                    inputs.append(dependency)
                else:
                    unavailable[name] = f"needs {dependency}: {found.reason}"
        elif isinstance(where, (Source, gpu.GpuSource, ProcessClock)):
            sources[name] = where
            inputs.append(name)
        else:
            unavailable[name] = where.reason
    inputs = list(dict.fromkeys(inputs))
    column, column_of_field, by_file = {}, {}, {}
    for name in inputs:
        src = sources[name]
        if isinstance(src, (gpu.GpuSource, ProcessClock)):
            continue  # clock and GPU columns come after the files'

        field_id = (src.path, src.format, src.key, src.mul, src.div, src.unlimited_at)
        if field_id not in column_of_field:  # two names may share one field
            column_of_field[field_id] = len(column_of_field)
            by_file.setdefault((src.path, src.format), []).append(
                Field(src.key, column_of_field[field_id], src.mul, src.div, src.unlimited_at))
        column[name] = column_of_field[field_id]
    specs = [SourceSpec(path, fmt, fields) for (path, fmt), fields in by_file.items()]
    ncolumns = len(column_of_field)
    clock = {}
    for name in inputs:
        if isinstance(sources[name], ProcessClock):
            column[name] = clock[sources[name].field] = ncolumns
            ncolumns += 1
    for name in inputs:
        if isinstance(sources[name], gpu.GpuSource):
            column[name] = ncolumns
            ncolumns += 1
    reader = reader_class(backend)(specs, ncolumns)
    for index, error in reader.open_errors().items():
        if error.errno not in (errno.ENOENT, errno.ENODEV):
            raise error
        for name in inputs:
            if getattr(sources[name], "path", None) == specs[index].path:  # GPUs have none
                unavailable.setdefault(name, f"{specs[index].path} does not exist")
                column.pop(name, None)
    try:
        groups = gpu.groups(sources, column, backend)
    except gpu.GpuUnavailable as e:
        groups = []
        for name in inputs:
            if isinstance(sources[name], gpu.GpuSource):
                unavailable[name] = e.strerror
                column.pop(name, None)
    return Plan(names, inputs, sources, column, unavailable, reader, groups, clock)
