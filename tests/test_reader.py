"""Readers over real files: pread until EOF, buffer growth, errors naming their file."""

import errno
import os

import numpy as np
import pytest

from pycgroup.backends import reader_class
from pycgroup.errors import ParseError
from pycgroup.formats import MISSING, UNLIMITED, VALUE_CEIL, Field, Format, SourceSpec


def make(backend, specs, ncolumns):
    return reader_class(backend)(specs, ncolumns)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_reads_several_files_into_one_row(tmp_path, backend):
    write(tmp_path / "memory.current", "4096\n")
    write(tmp_path / "cpu.stat", "usage_usec 10\nthrottled_time 2500\n")
    reader = make(backend, [
        SourceSpec(str(tmp_path / "memory.current"), Format.VALUE, [Field("", 2)]),
        SourceSpec(str(tmp_path / "cpu.stat"), Format.FLAT_KEYED,
                   [Field("throttled_time", 0, div=1000), Field("usage_usec", 1)]),
    ], 3)
    assert reader.read() == [2, 10, 4096]
    write(tmp_path / "cpu.stat", "usage_usec 11\nthrottled_time 7999\n")
    assert reader.read() == [7, 11, 4096]


def test_conversions_saturate_and_mark_unlimited(tmp_path, backend):
    write(tmp_path / "v", "18446744073709551615\n")
    write(tmp_path / "limit", "9223372036854771712\n")
    write(tmp_path / "max", "max\n")
    reader = make(backend, [
        SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("", 0), Field("", 1, mul=3, div=2)]),
        SourceSpec(str(tmp_path / "limit"), Format.VALUE,
                   [Field("", 2, unlimited_at=9223372036854771712), Field("", 3)]),
        SourceSpec(str(tmp_path / "max"), Format.VALUE, [Field("", 4)]),
    ], 5)
    assert reader.read() == [VALUE_CEIL, VALUE_CEIL, UNLIMITED, 9223372036854771712, UNLIMITED]


def test_content_larger_than_the_buffer_grows_it(tmp_path, backend):
    lines = [f"key{i} {i}" for i in range(5000)]
    write(tmp_path / "big", "a 1\n")
    reader = make(backend, [SourceSpec(str(tmp_path / "big"), Format.FLAT_KEYED,
                                       [Field("a", 0), Field("key4999", 1)])], 2)
    assert reader.read() == [1, MISSING]
    write(tmp_path / "big", "\n".join(lines) + "\na 2\n")  # ~60 KiB, far past the first buffer
    assert reader.read() == [2, 4999]


def test_missing_file_is_an_open_error_and_its_columns_are_missing(tmp_path, backend):
    write(tmp_path / "here", "1\n")
    reader = make(backend, [
        SourceSpec(str(tmp_path / "absent"), Format.VALUE, [Field("", 0)]),
        SourceSpec(str(tmp_path / "here"), Format.VALUE, [Field("", 1)]),
    ], 2)
    (index, error), = reader.open_errors().items()
    assert index == 0 and isinstance(error, FileNotFoundError)
    assert error.filename == str(tmp_path / "absent")
    assert reader.read() == [MISSING, 1]


def test_malformed_content_raises_parse_error_with_path_and_line(tmp_path, backend):
    path = tmp_path / "memory.stat"
    write(path, "anon 1\nfile 2\n")
    reader = make(backend, [SourceSpec(str(path), Format.FLAT_KEYED, [Field("file", 0)])], 1)
    assert reader.read() == [2]
    write(path, "anon 1\nthis line is junk\nfile 2\n")
    with pytest.raises(ParseError) as info:
        reader.read()
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    row = np.zeros(1, dtype=np.int64)
    assert reader.read_into(row) == 1
    assert row.tolist() == [MISSING]


def test_empty_single_value_file_is_malformed(tmp_path, backend):
    write(tmp_path / "memory.max", "")
    reader = make(backend, [SourceSpec(str(tmp_path / "memory.max"), Format.VALUE, [Field("", 0)])], 1)
    with pytest.raises(ParseError):
        reader.read()


def test_removed_cgroup_file_fails_with_enodev_or_stays_readable(backend):
    """A file of a removed cgroup fails with ENODEV on the kernel; with a deleted regular
    file the open fd still reads. Both are handled without a crash."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("5\n")
    reader = make(backend, [SourceSpec(f.name, Format.VALUE, [Field("", 0)])], 1)
    os.unlink(f.name)
    assert reader.read() == [5]


def test_bad_field_specs_are_rejected(tmp_path, backend):
    write(tmp_path / "v", "1\n")
    with pytest.raises(ValueError):
        make(backend, [SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("", 3)])], 2)
    with pytest.raises(ValueError):
        make(backend, [SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("", 0, div=0)])], 1)
    with pytest.raises(ValueError):
        make(backend, [SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("x", 0)])], 1)
    with pytest.raises(ValueError):
        make(backend, [], -1)


def test_permission_error_names_the_file(tmp_path, backend):
    path = tmp_path / "secret"
    write(path, "1\n")
    os.chmod(path, 0)
    if os.geteuid() == 0:
        path = "/proc/self/mem"  # unreadable at offset 0 even for root
    reader = make(backend, [SourceSpec(str(path), Format.VALUE, [Field("", 0)])], 1)
    (error,) = reader.open_errors().values()
    assert error.errno in (errno.EACCES, errno.EIO, errno.EPERM)
    assert error.filename == str(path)


def test_fill_reads_without_parsing(tmp_path, backend):
    write(tmp_path / "v", "not a number\n")
    reader = make(backend, [SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("", 0)])], 1)
    assert reader.fill() == 0
    reader.close()
    assert reader.read() == [MISSING]


def test_read_into_numpy_row(tmp_path, backend):
    write(tmp_path / "v", "77\n")
    reader = make(backend, [SourceSpec(str(tmp_path / "v"), Format.VALUE, [Field("", 1)])], 2)
    row = np.zeros(2, dtype=np.int64)
    assert reader.read_into(row) == 0
    assert row.tolist() == [MISSING, 77]
    with pytest.raises(ValueError):
        reader.read_into(np.zeros(1, dtype=np.int64))
