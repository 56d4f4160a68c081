# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Binding over the C core in ``csrc/``: converts types and errors, nothing else."""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport EINVAL, ENOMEM, EOVERFLOW
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from pycgroup._core.reader cimport (
    pcg_reader, pcg_reader_close, pcg_reader_fill, pcg_reader_init, pcg_reader_open,
    pcg_reader_read,
)
from pycgroup._core.source cimport (
    PCG_FMT_COLON_KEYED, PCG_FMT_CPU_MAX, PCG_FMT_FLAT_KEYED, PCG_FMT_PID_STAT, PCG_FMT_PSI,
    PCG_FMT_QUOTA_V1, PCG_FMT_VALUE, pcg_field_spec, pcg_format, pcg_source, pcg_source_close, pcg_source_grow, pcg_source_init,
    pcg_source_parse, pcg_source_set_content,
)
from pycgroup._core.value cimport (
    PCG_EPARSE, PCG_MISSING, PCG_UNLIMITED, PCG_VAL_MAX, PCG_VAL_MISSING, PCG_VALUE_CEIL,
    pcg_value,
)

from pycgroup.errors import ParseError
from pycgroup.formats import Field, Format

MISSING = PCG_MISSING
UNLIMITED = PCG_UNLIMITED
VALUE_CEIL = PCG_VALUE_CEIL
#: The C core's format numbers, which pycgroup.formats.Format must match.
FORMATS = {
    "FLAT_KEYED": PCG_FMT_FLAT_KEYED, "COLON_KEYED": PCG_FMT_COLON_KEYED, "VALUE": PCG_FMT_VALUE,
    "QUOTA_V1": PCG_FMT_QUOTA_V1, "CPU_MAX": PCG_FMT_CPU_MAX, "PSI": PCG_FMT_PSI,
    "PID_STAT": PCG_FMT_PID_STAT,
}


cdef object error_for(int rc, object path, int line, object fmt):
    """Returns the exception for a core error code about path."""
    if rc == -PCG_EPARSE:
        return ParseError(f"content is not in the {Format(fmt).name} format", path, line)
    return OSError(-rc, os.strerror(-rc), path)


cdef pcg_field_spec *field_specs(object fields, list keep_alive) except NULL:
    """Returns a malloc'd C copy of a list of Field; keep_alive holds the key bytes."""
    cdef Py_ssize_t i, n = len(fields)
    cdef pcg_field_spec *specs = <pcg_field_spec *>malloc((n if n else 1) * sizeof(pcg_field_spec))
    if specs == NULL:
        raise MemoryError()
    for i, field in enumerate(fields):
        key = field.key.encode()
        if b"\0" in key:
            free(specs)
            raise ValueError(f"key {field.key!r} holds a NUL character")
        keep_alive.append(key)
        specs[i].key = PyBytes_AS_STRING(key)
        specs[i].column = field.column
        specs[i].mul = field.mul
        specs[i].div = field.div
        specs[i].unlimited_at = field.unlimited_at
    return specs


cdef class Reader:
    """The native reader: opens each SourceSpec's file once, then fills rows with pread."""

    cdef pcg_reader _reader
    cdef readonly tuple specs
    cdef readonly Py_ssize_t ncolumns
    cdef dict _open_errors

    def __cinit__(self, specs, Py_ssize_t ncolumns):
        self.specs = tuple(specs)
        self.ncolumns = ncolumns
        self._open_errors = {}
        if ncolumns < 0:
            raise ValueError("ncolumns must be >= 0")
        if pcg_reader_init(&self._reader, len(self.specs), ncolumns) != 0:
            raise MemoryError()
        for i, spec in enumerate(self.specs):
            keep_alive = []
            specs_c = field_specs(spec.fields, keep_alive)
            path = os.fsencode(spec.path)
            format_c = int(spec.format)
            rc = pcg_reader_open(&self._reader, i, path, <pcg_format>format_c, specs_c,
                                 len(spec.fields))
            free(specs_c)
            if rc == -EINVAL:
                raise ValueError(f"{spec.path}: cannot read fields {list(spec.fields)} "
                                 f"as {Format(spec.format).name}")
            if rc == -ENOMEM:
                raise MemoryError()
            if rc != 0:
                self._open_errors[i] = OSError(-rc, os.strerror(-rc), spec.path)

    def __dealloc__(self):
        pcg_reader_close(&self._reader)

    def open_errors(self):
        """Returns {source index: OSError} for the files that could not be opened."""
        return dict(self._open_errors)

    cdef size_t read_row(self, int64_t *row) noexcept nogil:
        """Returns how many sources failed, growing buffers that content outgrew."""
        cdef size_t i, failed = pcg_reader_read(&self._reader, row)
        cdef bint grew = True
        while failed and grew:
            grew = False
            for i in range(self._reader.nsources):
                if (self._reader.sources[i].error == -EOVERFLOW
                        and pcg_source_grow(&self._reader.sources[i]) == 0):
                    grew = True
            if grew:
                failed = pcg_reader_read(&self._reader, row)
        return failed

    def read_into(self, int64_t[::1] row):
        """Fills row (int64, at least ncolumns long); returns how many sources failed."""
        if row.shape[0] < self.ncolumns:
            raise ValueError(f"row has {row.shape[0]} slots, the reader fills {self.ncolumns}")
        if self.ncolumns == 0:
            return pcg_reader_read(&self._reader, NULL)
        with nogil:
            failed = self.read_row(&row[0])
        return failed

    def read(self):
        """Returns one row as a list of ints; raises the first source's error, if any."""
        cdef int64_t *row = <int64_t *>malloc((self.ncolumns or 1) * sizeof(int64_t))
        if row == NULL:
            raise MemoryError()
        try:
            if self.read_row(row):
                raise self.errors()[0][1]
            return [row[i] for i in range(self.ncolumns)]
        finally:
            free(row)

    def errors(self):
        """Returns [(source index, exception)] for the open sources the last read failed on."""
        cdef pcg_source *s
        out = []
        for i in range(self._reader.nsources):
            s = &self._reader.sources[i]
            if s.fd >= 0 and s.error != 0:
                spec = self.specs[i]
                out.append((i, error_for(s.error, spec.path, s.error_line, spec.format)))
        return out

    def fill(self):
        """Reads every file into its buffer without parsing (the cost floor); returns failures."""
        with nogil:
            failed = pcg_reader_fill(&self._reader)
        return failed

    def close(self):
        """Closes every file; the reader then fills rows with MISSING."""
        pcg_reader_close(&self._reader)
        pcg_reader_init(&self._reader, 0, self.ncolumns)


def parse(fmt, bytes data, keys):
    """Returns the raw value of each key in data (int, "max" or None); raises ParseError."""
    cdef pcg_source s
    cdef pcg_value v
    keep_alive = []
    fields = [Field(key, 0) for key in keys]
    cdef pcg_field_spec *specs = field_specs(fields, keep_alive)
    cdef int format_c = int(fmt)
    rc = pcg_source_init(&s, <pcg_format>format_c, specs, len(fields))
    free(specs)
    if rc == -EINVAL:
        raise ValueError(f"cannot read keys {list(keys)} as {Format(fmt).name}")
    if rc != 0:
        raise MemoryError()
    try:
        if pcg_source_set_content(&s, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) != 0:
            raise MemoryError()
        rc = pcg_source_parse(&s)
        if rc != 0:
            raise error_for(rc, None, s.error_line, fmt)
        out = []
        for i in range(len(fields)):
            v = s.values[i]
            out.append(None if v.kind == PCG_VAL_MISSING else "max" if v.kind == PCG_VAL_MAX
                       else v.number)
        return out
    finally:
        pcg_source_close(&s)

