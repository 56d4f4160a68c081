"""The pure-Python twin of the native reader: kept-open fds, ``os.pread`` and split.

It accepts and rejects exactly what the C core does, so it serves as the oracle of
the differential tests, and it is the baseline the benchmarks compare against.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from typing import TYPE_CHECKING, Iterable, Literal, MutableSequence, Sequence, Union

from pycgroup.errors import NotRegularFile, ParseError
from pycgroup.formats import MISSING, Field, Format, RawValue, SourceSpec, convert

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    #: A row the reader fills: an int64 array, or a list of ints.
    Row = Union[NDArray[np.int64], MutableSequence[int]]

U64_MAX = 2**64 - 1
#: Longer files read as EFBIG, as in the C core (PCG_MAX_CONTENT in csrc/source.h).
MAX_FILE_BYTES = 8 << 20
_PSI_LINE = re.compile(
    rb"(some|full) avg10=(\d+)\.(\d+) avg60=(\d+)\.(\d+) avg300=(\d+)\.(\d+) total=(\d+)"
)
_FIXED_KEYS = {
    Format.VALUE: ("",),
    Format.QUOTA_V1: ("",),
    Format.CPU_MAX: ("quota", "period"),
    Format.PSI: ("some", "full"),
}


class _BadContent(Exception):
    def __init__(self, line: int):
        self.line = line


def _u64(token: bytes) -> int | None:
    if not token.isdigit():
        return None
    token = token.lstrip(b"0") or b"0"
    if len(token) > 20:  # more digits than 2**64-1 has (and int() refuses past 4,300)
        return None
    value = int(token)
    return value if value <= U64_MAX else None


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _single_line(data: bytes) -> bytes:
    body = data[:-1] if data.endswith(b"\n") else data
    if not body or b"\n" in body:
        raise _BadContent(1)
    return body


def _max_or_u64(token: bytes) -> int | Literal["max"]:
    if token == b"max":
        return "max"
    value = _u64(token)
    if value is None:
        raise _BadContent(1)
    return value


def _parse_value(data: bytes, minus_one_is_max: bool) -> list[RawValue]:
    body = _single_line(data)
    if minus_one_is_max and body == b"-1":
        return ["max"]
    return [_max_or_u64(body)]


def _parse_cpu_max(data: bytes) -> list[RawValue]:
    parts = _single_line(data).split(b" ")
    if len(parts) != 2 or _u64(parts[1]) is None:
        raise _BadContent(1)
    return [_max_or_u64(parts[0]), _u64(parts[1])]


def _parse_flat(data: bytes, wanted: set[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for number, line in enumerate(_lines(data), 1):
        key, space, value = line.partition(b" ")
        number_value = _u64(value)
        if not space or not key or number_value is None:
            raise _BadContent(number)
        found.setdefault(key, number_value)
    return found


def _parse_colon(data: bytes, wanted: set[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for number, line in enumerate(_lines(data), 1):
        key, colon, value = line.partition(b":")
        if not colon or not key:
            raise _BadContent(number)
        if key not in wanted or key in found:
            continue
        value = value.lstrip(b" \t")
        unit = 1
        if value.endswith(b" kB"):
            value, unit = value[:-3], 1024
        number_value = _u64(value)
        if number_value is None or number_value * unit > U64_MAX:
            raise _BadContent(number)
        found[key] = number_value * unit
    return found


def _parse_psi(data: bytes) -> list[RawValue]:
    totals: dict[bytes, int] = {}
    for number, line in enumerate(_lines(data), 1):
        match = _PSI_LINE.fullmatch(line)
        if match is None or match[1] in totals or any(_u64(g) is None for g in match.groups()[1:]):
            raise _BadContent(number)
        totals[match[1]] = int(match[8])
    return [totals.get(b"some"), totals.get(b"full")]


def _parse_pid_stat(data: bytes, fields: list[int]) -> list[RawValue]:
    body = data[:-1] if data.endswith(b"\n") else data
    head = re.match(rb"(\d+) \(", body)
    close = body.rfind(b")")
    if b"\n" in body or head is None or _u64(head[1]) is None or close < head.end():
        raise _BadContent(1)
    rest = body[close + 1 :]
    needed = max(fields, default=0) - 2  # tokens from field 3 to the last wanted one
    tokens = rest[1:].split(b" ")[:needed] if rest else []
    if rest and needed > 0 and (not rest.startswith(b" ") or b"" in tokens):
        raise _BadContent(1)
    out: list[RawValue] = []
    for field in fields:
        if field - 3 >= len(tokens):
            out.append(None)
        elif (value := _u64(tokens[field - 3])) is None:
            raise _BadContent(1)
        else:
            out.append(value)
    return out


def _check_keys(fmt: Format, keys: Sequence[str]) -> None:
    """Raises ValueError for keys that the format cannot have (as the C core does)."""
    for key in keys:
        if "\0" in key:
            raise ValueError(f"key {key!r} holds a NUL character")
        if fmt in _FIXED_KEYS:
            ok = key in _FIXED_KEYS[fmt]
        elif fmt is Format.PID_STAT:
            ok = key.isdigit() and key.isascii() and 3 < int(key) < 1000
        else:
            sep = " " if fmt is Format.FLAT_KEYED else ":"
            ok = bool(key) and "\n" not in key and sep not in key
        if not ok:
            raise ValueError(f"cannot read keys {list(keys)} as {fmt.name}")


def _parse_checked(fmt: Format, data: bytes, keys: Sequence[str]) -> list[RawValue]:
    if fmt is Format.FLAT_KEYED or fmt is Format.COLON_KEYED:
        wanted = {k.encode() for k in keys}
        parse = _parse_flat if fmt is Format.FLAT_KEYED else _parse_colon
        found = parse(data, wanted)
        return [found.get(k.encode()) for k in keys]
    if fmt is Format.PID_STAT:
        return _parse_pid_stat(data, [int(k) for k in keys])
    if fmt is Format.VALUE or fmt is Format.QUOTA_V1:
        values = _parse_value(data, fmt is Format.QUOTA_V1)
    elif fmt is Format.CPU_MAX:
        values = _parse_cpu_max(data)
    else:
        values = _parse_psi(data)
    return [values[_FIXED_KEYS[fmt].index(k)] for k in keys]


def parse(fmt: Format | int, data: bytes, keys: Sequence[str],
          path: str | None = None) -> list[RawValue]:
    """Returns the raw value of each key in data (int, "max" or None); raises ParseError."""
    fmt = Format(fmt)
    _check_keys(fmt, keys)
    try:
        return _parse_checked(fmt, data, keys)
    except _BadContent as bad:
        raise ParseError(f"content is not in the {fmt.name} format", path, bad.line) from None


def _read_all(fd: int) -> bytes:
    """Returns the file's content from offset 0 to EOF; OSError(EFBIG) past MAX_FILE_BYTES."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, min(65536, MAX_FILE_BYTES + 1 - offset), offset):
        chunks.append(chunk)
        offset += len(chunk)
        if offset > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    return b"".join(chunks)


def open_regular(path: str) -> int:
    """Returns an fd of path opened for reading without blocking (a FIFO does not wait for
    a writer); raises NotRegularFile for what is not a regular file, as the C core does."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(path)
    return fd


def read_regular(path: str) -> bytes:
    """Returns the whole content of path, opened as the readers open a kernel file: without
    blocking, NotRegularFile for what is not a regular file, and OSError(EFBIG) naming the
    path past MAX_FILE_BYTES. For the files read once, outside a reader (memory.stat's
    keys, io.max, cpuset.cpus.effective, cgroup.procs): a FIFO or a device there must not
    hang or exhaust the process either."""
    fd = open_regular(path)
    try:
        return _read_all(fd)
    except OSError as e:
        assert e.errno is not None  # raised by a system call
        raise OSError(e.errno, os.strerror(e.errno), path) from None
    finally:
        os.close(fd)


class Reader:
    """The pure-Python reader, with the native Reader's interface."""

    def __init__(self, specs: Sequence[SourceSpec], ncolumns: int):
        if ncolumns < 0:
            raise ValueError("ncolumns must be >= 0")
        self.specs = tuple(specs)
        self.ncolumns = ncolumns
        self._fds: list[int | None] = []
        self._open_errors: dict[int, OSError] = {}
        self._errors: list[tuple[int, Exception]] = []
        self._lock = threading.Lock()  # a read in flight keeps its fds until it is done
        for spec in self.specs:
            fields: Sequence[Field] = spec.fields
            if any(f.mul < 1 or f.div < 1 or f.unlimited_at < 0 for f in fields) or any(
                not 0 <= f.column < ncolumns for f in fields
            ):
                raise ValueError(f"{spec.path}: bad fields {list(fields)}")
            _check_keys(Format(spec.format), [f.key for f in fields])
        for index, spec in enumerate(self.specs):
            self._fds.append(self._open(index, spec.path))

    def _open(self, index: int, path: str) -> int | None:
        try:
            fd = open_regular(path)
        except NotRegularFile as e:
            self._open_errors[index] = e
            return None
        except OSError as e:
            assert e.errno is not None  # raised by a system call
            self._open_errors[index] = OSError(e.errno, os.strerror(e.errno), path)
            return None
        try:
            _read_all(fd)
        except OSError as e:
            os.close(fd)
            assert e.errno is not None  # raised by a system call
            self._open_errors[index] = OSError(e.errno, os.strerror(e.errno), path)
            return None
        return fd

    def open_errors(self) -> dict[int, OSError]:
        """Returns {source index: OSError} for the files that could not be opened."""
        return dict(self._open_errors)

    def read_into(self, row: Row) -> int:
        """Fills row (a mutable int64 sequence); returns how many sources failed."""
        if len(row) < self.ncolumns:
            raise ValueError(f"row has {len(row)} slots, the reader fills {self.ncolumns}")
        with self._lock:
            row[: self.ncolumns] = [MISSING] * self.ncolumns
            return self._read_sources(row, range(len(self.specs)))

    def read_sources(self, row: Row, indices: Iterable[int]) -> int:
        """Reads only the sources at indices into row (their columns alone change);
        returns how many failed."""
        with self._lock:
            return self._read_sources(row, indices)

    def _read_sources(self, row: Row, indices: Iterable[int]) -> int:
        self._errors = []
        for index in indices:
            spec, fd = self.specs[index], self._fds[index]
            if fd is None:
                continue
            try:
                data = _read_all(fd)
                values = parse(spec.format, data, [f.key for f in spec.fields], spec.path)
            except OSError as e:
                assert e.errno is not None  # raised by a system call
                self._errors.append((index, OSError(e.errno, os.strerror(e.errno), spec.path)))
                values = [None] * len(spec.fields)
            except ParseError as e:
                self._errors.append((index, e))
                values = [None] * len(spec.fields)
            for field, value in zip(spec.fields, values):
                row[field.column] = convert(value, field)
        return len(self._errors)

    def read(self) -> list[int]:
        """Returns one row as a list of ints; raises the first source's error, if any."""
        row = [MISSING] * self.ncolumns
        if self.read_into(row):
            raise self._errors[0][1]
        return row

    def errors(self) -> list[tuple[int, Exception]]:
        """Returns [(source index, exception)] for the sources the last read failed on."""
        return list(self._errors)

    def fill(self) -> int:
        """Reads every file without parsing; returns how many failed."""
        failed = 0
        with self._lock:
            for fd in self._fds:
                if fd is not None:
                    try:
                        _read_all(fd)
                    except OSError:
                        failed += 1
        return failed

    def close(self) -> None:
        """Closes every file, after any read in flight in another thread; the reader then
        fills rows with MISSING."""
        with self._lock:
            fds, self._fds = self._fds, [None] * len(self.specs)
        for fd in fds:
            if fd is not None:
                os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fds", None) and getattr(self, "_lock", None):
            self.close()
