"""A read plan: the metrics asked for, the sources that hold them, and one reader."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Union

import numpy as np

from pycgroup import catalogue, gpu
from pycgroup.backends import reader_class
from pycgroup import process_clock
from pycgroup.sources import Derived, ProcessClock, Source, Unavailable
from pycgroup.formats import Field, Format, SourceSpec
from pycgroup.values import from_row, to_row

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.backends import GpuGroupLike, ReaderLike

#: What a metric name resolves to.
Where = Union[Source, Derived, Unavailable, ProcessClock, gpu.GpuSource]
#: A file, clock or GPU metric that a row column holds.
Input = Union[Source, ProcessClock, gpu.GpuSource]


@dataclass
class Plan:
    """How to fill one row holding every source a set of metric names needs."""

    names: tuple[str, ...]  # the metric names, in the order asked
    inputs: list[str]  # the metric names read from files (derived ones' inputs included)
    sources: dict[str, Input]  # input name -> Source
    column: dict[str, int]  # input name -> row column
    unavailable: dict[str, str]  # name -> reason
    reader: ReaderLike
    gpu_groups: list[GpuGroupLike]  # one per GPU, filling the columns after the files'
    # this process's CPU clocks: ProcessClock field -> row column (after the files')
    process_clock: dict[str, int] = field(default_factory=dict)
    # asked names computed from inputs that all have columns (v1 cpu.weight, a v2 root's
    # memory.current): name -> Derived, in the order asked; with_derived() computes them
    derived: dict[str, Derived] = field(default_factory=dict)

    @property
    def ncolumns(self) -> int:
        return self.reader.ncolumns

    def read(self) -> NDArray[np.int64]:
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

    def values(self, row: NDArray[np.int64]) -> dict[str, int | float | None]:
        """Returns {name: int, UNLIMITED (inf) or None (unavailable)} for the asked names."""
        out: dict[str, int | float | None] = {}
        for name in self.names:
            if name == catalogue.WORKING_SET:
                out[name] = working_set(*(self._value(row, i) for i in catalogue.WORKING_SET_INPUTS))
            else:
                out[name] = self._value(row, name)
        return out

    def with_derived(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """Returns sampler rows (t_ns, then this plan's columns) with one more column per
        derived metric, computed row by row from its inputs by the function read() uses
        (MISSING where it gives None: an input missing in that row); rows as they are
        when there is none."""
        if not self.derived:
            return rows
        width = 1 + len(self.column)  # a sampler's row: no two names share a column
        out = np.empty((len(rows), width + len(self.derived)), dtype=np.int64)
        out[:, :width] = rows[:, :width]
        for k, where in enumerate(self.derived.values()):
            assert where.compute is not None  # build() keeps only those it can compute
            inputs = rows[:, [1 + self.column[n] for n in where.inputs]]
            out[:, width + k] = derived_column(inputs, where.compute)
        return out

    def _value(self, row: NDArray[np.int64], name: str) -> int | float | None:
        column = self.column.get(name)
        if column is None:
            return None
        return from_row(row[column])


def derived_column(inputs: NDArray[np.int64],
                   compute: Callable[..., int | float | None]) -> NDArray[np.int64]:
    """Returns compute(*input values) for each row of inputs (n x k, row values): once
    per run of rows with the same inputs, since a column keeps its value between reads
    of its file and most rows repeat the one before."""
    if len(inputs) == 0:
        return np.zeros(0, dtype=np.int64)
    changed = np.ones(len(inputs), dtype=bool)
    np.any(inputs[1:] != inputs[:-1], axis=1, out=changed[1:])
    starts = np.flatnonzero(changed)
    values = np.array([to_row(compute(*map(from_row, row))) for row in inputs[starts].tolist()],
                      dtype=np.int64)
    return np.repeat(values, np.diff(starts, append=len(inputs)))


def working_set(current: int | float | None,
                inactive_file: int | float | None) -> int | float | None:
    """Returns memory.current - inactive_file floored at 0, as cAdvisor and the kubelet do."""
    if current is None or inactive_file is None:
        return None
    return max(0, current - inactive_file)


def build(names: Iterable[str], resolve: Callable[[str], Where],
          backend: str = "native") -> Plan:
    """Returns a plan for names, resolving each with resolve(name) -> Source/Derived/Unavailable.

    Files that do not exist make their metrics unavailable; other open errors are raised."""
    names = tuple(dict.fromkeys(names))
    sources: dict[str, Input] = {}
    unavailable: dict[str, str] = {}
    inputs: list[str] = []
    derived: dict[str, Derived] = {}
    for name in names:
        where = resolve(name)
        if isinstance(where, Derived) and where.compute is not None and not where.inputs:
            # io.max and io.stat: one line per device, which no row reader format parses.
            unavailable[name] = (f"read() parses it from {where.note}; a file with a line "
                                 f"per device is not read into sampler rows")
        elif isinstance(where, Derived):
            found = {dependency: resolve(dependency) for dependency in where.inputs}
            files = {d: f for d, f in found.items() if isinstance(f, Source)}
            lacking = [(d, f) for d, f in found.items() if d not in files]
            if lacking:
                dependency, why = lacking[0]
                assert isinstance(why, Unavailable)  # derived metrics' inputs are files
                unavailable[name] = f"needs {dependency}: {why.reason}"
                continue
            for dependency, source in files.items():
                sources.setdefault(dependency, source)
                inputs.append(dependency)
            if where.compute is not None:  # the working set: Samples computes it
                derived[name] = where
        elif isinstance(where, (Source, gpu.GpuSource, ProcessClock)):
            sources[name] = where
            inputs.append(name)
        else:
            unavailable[name] = where.reason
    inputs = list(dict.fromkeys(inputs))
    while True:  # at most twice: files that do not exist are left out, then laid out again
        column, clock, reader = _lay_out(inputs, sources, backend)
        gone = set()
        for index, error in reader.open_errors().items():
            if error.errno not in (errno.ENOENT, errno.ENODEV):
                reader.close()
                raise error
            gone.add(reader.specs[index].path)
        if not gone:
            break
        # A file that does not exist takes no row column: a hole would put every later
        # column one place off the names a sampler gives its rows.
        reader.close()
        for name in inputs:
            path = getattr(sources[name], "path", None)  # GPUs and clocks have none
            if path in gone:
                unavailable.setdefault(name, f"{path} does not exist")
        inputs = [n for n in inputs if getattr(sources[n], "path", None) not in gone]
    for name, where in list(derived.items()):
        lost = [n for n in where.inputs if n not in column]
        if lost:  # an input's file does not exist
            unavailable[name] = f"needs {lost[0]}: {unavailable[lost[0]]}"
            del derived[name]
    try:
        groups = gpu.groups(sources, column, backend)
    except gpu.GpuUnavailable as e:
        assert e.strerror is not None  # GpuUnavailable always says why
        groups = []
        for name in inputs:
            if isinstance(sources[name], gpu.GpuSource):
                unavailable[name] = e.strerror
                column.pop(name, None)
    return Plan(names, inputs, sources, column, unavailable, reader, groups, clock, derived)


def _lay_out(inputs: list[str], sources: dict[str, Input],
             backend: str) -> tuple[dict[str, int], dict[str, int], ReaderLike]:
    """Returns (input name -> row column, ProcessClock field -> row column, the reader
    opened on the files): the files' fields first, then the clocks, then the GPUs."""
    column: dict[str, int] = {}
    column_of_field: dict[tuple[Any, ...], int] = {}
    by_file: dict[tuple[str, Format], list[Field]] = {}
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
    clock: dict[str, int] = {}
    for name in inputs:
        if isinstance(clock_source := sources[name], ProcessClock):
            column[name] = clock[clock_source.field] = ncolumns
            ncolumns += 1
    for name in inputs:
        if isinstance(sources[name], gpu.GpuSource):
            column[name] = ncolumns
            ncolumns += 1
    return column, clock, reader_class(backend)(specs, ncolumns)
