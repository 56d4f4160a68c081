# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Binding over the C core in ``csrc/``: converts types and errors, nothing else."""

import os

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
cimport cython
from libc.errno cimport EALREADY, EBUSY, EINVAL, EIO, ENODEV, ENOMEM, ESHUTDOWN
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from pycgroup._core.nvml cimport (
    PCG_GPU_HISTORY_KINDS, PCG_GPU_NMETRICS, PCG_GPU_NO_COLUMN, pcg_gpu, pcg_gpu_destroy,
    pcg_gpu_history_copy, pcg_gpu_init, pcg_gpu_read,
    pcg_nvml, pcg_nvml_device_count, pcg_nvml_device_uuid, pcg_nvml_load, pcg_nvml_load_error,
    pcg_nvml_unload,
)
from pycgroup._core.process_clock cimport (
    PCG_CLOCK_NO_COLUMN, pcg_process_clock, pcg_process_clock_read,
)
from pycgroup._core.reader cimport (
    pcg_reader, pcg_reader_close, pcg_reader_destroy, pcg_reader_fill, pcg_reader_init,
    pcg_reader_open, pcg_reader_read,
)
from pycgroup._core.ring cimport (
    pcg_ring, pcg_ring_copy, pcg_ring_copy_newest, pcg_ring_free, pcg_ring_init,
    pcg_ring_peaks, pcg_ring_position_at,
)
from pycgroup._core.sampler cimport (
    PCG_PERIOD_MAX_NS, PCG_PERIOD_MIN_NS, pcg_sampler, pcg_sampler_close, pcg_sampler_destroy, pcg_sampler_init, pcg_sampler_running,
    pcg_sampler_set_gpus, pcg_sampler_set_reader,
    pcg_sampler_fill, pcg_sampler_lateness_quantile, pcg_sampler_sample_into,
    pcg_sampler_refresh_cpu_clock, pcg_sampler_sample_now, pcg_sampler_thread_cpu_ns,
    pcg_sampler_set_process_clock, pcg_sampler_span_closed, pcg_sampler_span_opened,
    pcg_sampler_start, pcg_sampler_stop,
)
from pycgroup._core.source cimport (
    PCG_ENOTREG, PCG_MAX_CONTENT, PCG_FMT_COLON_KEYED, PCG_FMT_CPU_MAX, PCG_FMT_FLAT_KEYED, PCG_FMT_PID_STAT, PCG_FMT_PSI,
    PCG_FMT_QUOTA_V1, PCG_FMT_VALUE, pcg_field_spec, pcg_format, pcg_source, pcg_source_close, pcg_source_init,
    pcg_source_parse, pcg_source_set_content,
)
from pycgroup._core.value cimport (
    PCG_EPARSE, PCG_MISSING, PCG_UNLIMITED, PCG_VAL_MAX, PCG_VAL_MISSING, PCG_VALUE_CEIL,
    pcg_value,
)

from pycgroup.errors import CLOSED as _CLOSED, NotRegularFile, ParseError, SamplerClosed
from pycgroup.formats import Field, Format

MISSING = PCG_MISSING
UNLIMITED = PCG_UNLIMITED
VALUE_CEIL = PCG_VALUE_CEIL
#: Longer files read as EFBIG (the pure twin has the same bound).
MAX_FILE_BYTES = PCG_MAX_CONTENT
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
    if rc == -PCG_ENOTREG:
        return NotRegularFile(path)
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
        cdef const char *path_c
        cdef pcg_field_spec *specs_c
        cdef int format_c, rc
        cdef size_t nfields
        cdef Py_ssize_t i
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
            path_c = path
            nfields = len(spec.fields)
            with nogil:  # the open cannot block (O_NONBLOCK), but it is I/O all the same
                rc = pcg_reader_open(&self._reader, i, path_c, <pcg_format>format_c, specs_c,
                                     nfields)
            free(specs_c)
            if rc == -EINVAL:
                raise ValueError(f"{spec.path}: cannot read fields {list(spec.fields)} "
                                 f"as {Format(spec.format).name}")
            if rc == -ENOMEM:
                raise MemoryError()
            if rc != 0:
                self._open_errors[i] = error_for(rc, spec.path, 0, spec.format)

    def __dealloc__(self):
        pcg_reader_destroy(&self._reader)

    def open_errors(self):
        """Returns {source index: OSError} for the files that could not be opened."""
        return dict(self._open_errors)

    cdef size_t read_row(self, int64_t *row) noexcept nogil:
        """Returns how many sources failed (the core regrows buffers content outgrew)."""
        return pcg_reader_read(&self._reader, row)

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
        cdef size_t failed
        try:
            with nogil:
                failed = self.read_row(row)
            if failed:
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
        """Closes every file, after any read in flight in another thread; the reader then
        fills rows with MISSING."""
        with nogil:
            pcg_reader_close(&self._reader)


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



cdef pcg_process_clock clock_of(columns):
    cdef pcg_process_clock clock
    clock.cpu_usec = columns.get("cpu_usec", PCG_CLOCK_NO_COLUMN)
    clock.utime_usec = columns.get("utime_usec", PCG_CLOCK_NO_COLUMN)
    clock.stime_usec = columns.get("stime_usec", PCG_CLOCK_NO_COLUMN)
    clock.max_rss_bytes = columns.get("max_rss_bytes", PCG_CLOCK_NO_COLUMN)
    return clock


def read_process_clock(columns, int64_t[::1] row):
    """Writes this process's CPU clocks into row at columns (as Engine.set_process_clock);
    raises OSError when a call fails."""
    cdef pcg_process_clock clock = clock_of(columns)
    rc = pcg_process_clock_read(&clock, &row[0])
    if rc != 0:
        raise OSError(-rc, os.strerror(-rc), "process CPU clocks")


cdef class Engine:
    """The native sampling engine: a ring of int64 rows and a thread that fills it.

    Row layout: column 0 is the CLOCK_MONOTONIC timestamp in ns, then the reader's
    columns. The thread never takes the GIL."""

    cdef pcg_ring _ring
    cdef pcg_sampler _sampler
    cdef Reader _reader
    cdef bint _ready
    cdef list _gpu_groups
    cdef pcg_gpu **_gpu_pointers
    cdef bint _forked  # in a fork's child, until replace_reader()
    #: Called (a weakref.WeakMethod: it returns the callable, or None) by the first
    #: sample() in a fork's child, to reopen the files through replace_reader().
    cdef public object on_fork

    def __cinit__(self, Reader reader not None, uint64_t capacity, uint64_t period_ns, every=None):
        cdef uint32_t *every_c = NULL
        n = reader._reader.nsources
        if every is not None and len(every) != n:
            raise ValueError(f"every has {len(every)} divisors, the reader {n} sources")
        rc = pcg_ring_init(&self._ring, capacity, reader.ncolumns + 1)
        if rc == -EINVAL:
            raise ValueError(f"capacity must be a power of two >= 2 that fits in memory, "
                             f"not {capacity}")
        if rc != 0:
            raise MemoryError()
        every_c = <uint32_t *>malloc((n or 1) * sizeof(uint32_t))
        if every_c == NULL:
            pcg_ring_free(&self._ring)
            raise MemoryError()
        try:
            for i in range(n):
                every_c[i] = every[i] if every is not None else 1
        except BaseException:  # a divisor that is no uint32
            free(every_c)
            pcg_ring_free(&self._ring)
            raise
        rc = pcg_sampler_init(&self._sampler, &reader._reader, &self._ring, period_ns, every_c)
        free(every_c)
        if rc != 0:
            pcg_ring_free(&self._ring)
            if rc == -ENOMEM:
                raise MemoryError()
            raise ValueError(f"period_ns must be between {PCG_PERIOD_MIN_NS} and "
                             f"{PCG_PERIOD_MAX_NS}, not {period_ns}") if rc == -EINVAL else \
                OSError(-rc, os.strerror(-rc))
        self._reader = reader
        self._ready = True

    def __dealloc__(self):
        if self._ready:
            with nogil:
                pcg_sampler_destroy(&self._sampler)
            pcg_ring_free(&self._ring)
        free(self._gpu_pointers)

    def set_gpus(self, groups, uint32_t every):
        """Reads these GpuGroups (whose columns index this engine's row, less the
        timestamp) on every `every`-th tick; not while running."""
        cdef GpuGroup group
        cdef pcg_gpu **pointers = <pcg_gpu **>malloc((len(groups) or 1) * sizeof(pcg_gpu *))
        if pointers == NULL:
            raise MemoryError()
        for i, group in enumerate(groups):
            if group.row_length > self._reader.ncolumns:
                free(pointers)
                raise ValueError(f"GPU group {group.label} fills {group.row_length} columns, "
                                 f"the row has {self._reader.ncolumns}")
            pointers[i] = &group._gpu
        rc = pcg_sampler_set_gpus(&self._sampler, pointers, len(groups), every)
        if rc != 0:
            free(pointers)
            if rc == -ESHUTDOWN:
                raise SamplerClosed(_CLOSED)
            raise RuntimeError("cannot change the GPUs of a running sampler")
        free(self._gpu_pointers)
        self._gpu_pointers = pointers
        self._gpu_groups = list(groups)

    def set_process_clock(self, columns, uint32_t cpu_every=1, uint32_t rusage_every=1):
        """Reads this process's CPU clocks into row columns (less the timestamp): columns
        maps "cpu_usec", "utime_usec", "stime_usec", "max_rss_bytes" to a column;
        cpu_usec on every cpu_every-th tick, the getrusage ones on every rusage_every-th;
        not while running."""
        cdef pcg_process_clock clock = clock_of(columns)
        if pcg_sampler_set_process_clock(&self._sampler, &clock, cpu_every, rusage_every) != 0:
            raise RuntimeError("cannot change the clocks of a running sampler")

    @property
    def capacity(self):
        return self._ring.capacity

    @property
    def width(self):
        return self._ring.width

    @property
    def running(self):
        return pcg_sampler_running(&self._sampler)

    def start(self):
        """Starts the thread (nothing if it runs); SamplerClosed after close()."""
        cdef int rc
        with nogil:  # waits for a stop in flight in another thread
            rc = pcg_sampler_start(&self._sampler)
        if rc == -ESHUTDOWN:
            raise SamplerClosed(_CLOSED)
        if rc != 0 and rc != -EALREADY:
            raise OSError(-rc, os.strerror(-rc))

    def stop(self):
        """Stops and joins the thread (at once, whatever the period); safe from any thread."""
        with nogil:
            pcg_sampler_stop(&self._sampler)

    def close(self):
        """Stops the thread and waits for rows in flight; then start() and sample() raise
        SamplerClosed. The reader is not closed here: its owner closes it."""
        with nogil:
            pcg_sampler_close(&self._sampler)

    def sample(self):
        """Takes one row now in this thread; returns its timestamp. The first call in a
        fork's child has on_fork reopen the files first."""
        cdef int64_t t
        if self._forked and self.on_fork is not None:
            reopen = self.on_fork()
            if reopen is not None:
                reopen()
        with nogil:
            t = pcg_sampler_sample_now(&self._sampler)
        if t < 0:
            raise SamplerClosed(_CLOSED)
        return t

    def fill(self):
        """Reads every file into its buffer and this process's clocks, parsing and
        recording nothing; returns how many reads failed. The cost floor of sample()."""
        cdef size_t failed
        with nogil:
            failed = pcg_sampler_fill(&self._sampler)
        return failed

    def thread_cpu_ns(self):
        """Returns the CPU time (ns) the running thread has used since it started, or None
        when no thread runs."""
        cdef int64_t ns = pcg_sampler_thread_cpu_ns(&self._sampler)
        return None if ns < 0 else ns

    def boundary(self, bint exact):
        """Returns a span boundary as bytes of int64 [position, t_ns, columns...]: a copy
        of the newest row, or (exact, or no thread running) of a row read now."""
        return self._boundary(exact)

    cdef bytes _boundary(self, bint exact):
        cdef uint32_t width = self._ring.width
        cdef bytes out = PyBytes_FromStringAndSize(NULL, (width + 1) * sizeof(int64_t))
        cdef int64_t *buf = <int64_t *>PyBytes_AS_STRING(out)
        buf[0] = <int64_t>self._boundary_into(exact, buf + 1)
        return out

    cdef uint64_t _boundary_into(self, bint exact, int64_t *row) except? 0:
        """Copies the newest row into row (with the process CPU clock read now when that
        row did not read it), or, exact or with no thread running, reads a row now;
        returns its position."""
        cdef uint64_t pos = 0
        cdef int64_t t = 0
        if exact or not pcg_sampler_running(&self._sampler) or pcg_ring_copy_newest(
                &self._ring, row, &pos) != 0:
            with nogil:
                t = pcg_sampler_sample_into(&self._sampler, row, &pos)
            if t < 0:
                raise SamplerClosed(_CLOSED)
        else:
            pcg_sampler_refresh_cpu_clock(&self._sampler, row, pos)
        return pos

    def span_opened(self):
        """Counts a non-exact span opened: while one is, the thread reads the process
        CPU clock on every tick (see pcg_sampler_span_opened)."""
        pcg_sampler_span_opened(&self._sampler)

    def span_closed(self):
        """Counts a span that span_opened() counted as ended."""
        pcg_sampler_span_closed(&self._sampler)

    def span_end(self, bytes start not None, bint exact, int64_t t_min, int64_t max_gap_ns,
                 int ws_current, int ws_inactive):
        """Returns a span's end as bytes of int64: [position, t_ns, columns...] (as
        boundary()), then [rows, working-set peak, gaps], then each column's peak over
        the rows from start's position to the end's (see pcg_ring_peaks). start is a
        boundary() of this engine; ws_current and ws_inactive are row columns (0: none)."""
        cdef uint32_t width = self._ring.width
        if <size_t>PyBytes_GET_SIZE(start) != (width + 1) * sizeof(int64_t):
            raise ValueError(f"start holds {len(start)} bytes, not a boundary of this engine "
                             f"({(width + 1) * sizeof(int64_t)})")
        self._check_working_set_columns(ws_current, ws_inactive)
        return self._span_end(start, exact, t_min, max_gap_ns, ws_current, ws_inactive)

    cdef _check_working_set_columns(self, int ws_current, int ws_inactive):
        cdef uint32_t width = self._ring.width
        if not (0 <= ws_current < <int>width and 0 <= ws_inactive < <int>width):
            raise ValueError(f"working-set columns {ws_current} and {ws_inactive} are not in "
                             f"a row of {width}")

    cdef bytes _span_end(self, bytes start, bint exact, int64_t t_min, int64_t max_gap_ns,
                         int ws_current, int ws_inactive):
        cdef uint32_t width = self._ring.width
        cdef bytes out = PyBytes_FromStringAndSize(NULL, (2 * width + 3) * sizeof(int64_t))
        cdef int64_t *buf = <int64_t *>PyBytes_AS_STRING(out)
        cdef uint64_t gaps = 0, first = (<const int64_t *>PyBytes_AS_STRING(start))[0]
        cdef uint64_t pos = self._boundary_into(exact, buf + 1)
        buf[0] = <int64_t>pos
        buf[width + 2] = PCG_MISSING
        if pos - first > 256:  # a long span: scan its rows without holding the GIL
            with nogil:
                buf[width + 1] = pcg_ring_peaks(&self._ring, first, pos, t_min, max_gap_ns,
                                                buf + width + 4, ws_current, ws_inactive,
                                                buf + width + 2, &gaps)
        else:
            buf[width + 1] = pcg_ring_peaks(&self._ring, first, pos, t_min, max_gap_ns,
                                            buf + width + 4, ws_current, ws_inactive,
                                            buf + width + 2, &gaps)
        buf[width + 3] = <int64_t>gaps
        return out

    def after_fork_in_child(self):
        """Notes the fork: the thread is gone (sampler.c's pthread_atfork handler marked
        it), and the reader's files describe the parent until replace_reader()."""
        self._forked = True

    def replace_reader(self, Reader reader not None):
        """Reads through another reader of the same shape (after fork); not while running.
        A row being read meanwhile in another thread is finished with the old reader,
        which is kept until then."""
        cdef int rc
        with nogil:  # waits for a row in flight
            rc = pcg_sampler_set_reader(&self._sampler, &reader._reader)
        if rc == -EINVAL:
            raise ValueError(f"the new reader has {reader.ncolumns} columns, the sampler's "
                             f"rows {self._reader.ncolumns}")
        if rc == -ESHUTDOWN:
            raise SamplerClosed(_CLOSED)
        if rc != 0:
            raise RuntimeError("cannot replace the reader of a running sampler")
        self._reader = reader  # only now may the old one be closed
        self._forked = False

    def copy(self, uint64_t start=0, since_ns=None, last=None):
        """Returns (rows, position of the first): a copy of the held rows, oldest first,
        from position start (and timestamp since_ns), at most the last `last` rows."""
        cdef uint64_t first = 0, n, max_rows = self._ring.capacity
        if since_ns is not None:
            start = max(start, pcg_ring_position_at(&self._ring, since_ns))
        if last is not None:
            max_rows = min(max_rows, last)
        out = np.empty((max_rows, self._ring.width), dtype=np.int64)
        cdef int64_t[:, ::1] view = out
        if max_rows == 0:
            return out, self._ring.committed
        with nogil:
            n = pcg_ring_copy(&self._ring, start, &view[0, 0], max_rows, &first)
        return out[:n], first

    def stats(self):
        """Returns the counters of the sampler and its ring."""
        error = None
        source = self._sampler.last_error_source
        if self._sampler.last_error and source < 0:
            error = OSError(-self._sampler.last_error, os.strerror(-self._sampler.last_error),
                            "process CPU clocks")
        elif self._sampler.last_error and source < len(self._reader.specs):
            spec = self._reader.specs[source]
            error = error_for(self._sampler.last_error, spec.path, 0, spec.format)
        elif self._sampler.last_error:
            group = self._gpu_groups[source - len(self._reader.specs)]
            error = group.error()
        return {
            "samples": self._sampler.samples,
            "dropped": self._ring.dropped,
            "overruns": self._sampler.overruns,
            "read_errors": self._sampler.read_errors,
            "last_error": error,
            "lateness_p50_us": pcg_sampler_lateness_quantile(&self._sampler, 0.50) / 1000.0,
            "lateness_p99_us": pcg_sampler_lateness_quantile(&self._sampler, 0.99) / 1000.0,
            "lateness_max_us": self._sampler.lateness_max_ns / 1000.0,
            "position": self._ring.committed,
        }


cdef int64_t _monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class SpanContext:
    """What the spans of one native sampler share: its engine, how far apart rows may
    be before they count as a gap, where the working set's inputs sit in a row, the
    list finished spans are appended to (a SpanStore's pending list), with the callable
    that empties it once it holds flush_at spans, and the basis of their figures
    (pycgroup.spans.SpanBasis)."""

    cdef Engine engine
    cdef int64_t max_gap_ns
    cdef int ws_current, ws_inactive
    cdef list pending
    cdef Py_ssize_t flush_at
    cdef object flush
    cdef object basis

    def __cinit__(self, Engine engine not None, int64_t max_gap_ns, int ws_current,
                  int ws_inactive, list pending not None, Py_ssize_t flush_at, flush not None,
                  basis not None):
        engine._check_working_set_columns(ws_current, ws_inactive)
        self.basis = basis
        self.engine = engine
        self.max_gap_ns = max_gap_ns
        self.ws_current = ws_current
        self.ws_inactive = ws_inactive
        self.pending = pending
        self.flush_at = flush_at
        self.flush = flush


cdef extern from "Python.h":
    int PyObject_IS_GC(object op)
    void PyObject_GC_UnTrack(void *op)


@cython.no_gc
cdef class SpanCore:
    """A span's boundaries, taken in C: enter and exit each copy the newest row the
    thread published (or, exact or with no thread running, read one), so that neither
    runs a line of Python. pycgroup.spans.Span computes the figures from them.

    Spans are kept by the thousand and live long: they stay out of the garbage
    collector (no_gc), which in a large process (torch) re-examined every kept span in
    each full collection, about 10 µs a span. That is safe because a span leads to
    nothing that leads back to it: its basis holds no sampler, and it lets go of its
    context (which reaches the store) when it ends, and of ``after`` when it starts."""

    cdef readonly object label
    cdef readonly bint exact
    cdef readonly object _basis
    cdef readonly bytes _start
    cdef readonly bytes _end
    cdef public object _cache
    cdef SpanContext _context  # until the span ends
    cdef SpanCore _after  # the span whose end row this one starts at, until entered
    cdef bint _sync
    cdef bint _counted  # counted open by the engine (see pcg_sampler_span_opened)
    cdef int64_t _start_ns, _end_ns
    cdef object __weakref__

    def __cinit__(self, sampler, label, bint exact=False, SpanCore after=None):
        # A Python subclass (pycgroup.spans' NativeSpan) is a collected type whatever
        # its base: untracked here, it is never examined (see the class's note).
        if PyObject_IS_GC(self):
            PyObject_GC_UnTrack(<void *>self)
        self._context = <SpanContext?>sampler._span_context
        self._basis = self._context.basis
        self.label = label
        self.exact = exact
        if after is not None and (after._end is None or after._basis is not self._basis):
            raise ValueError(f"after= takes a finished span of the same sampler, not "
                             f"{after!r}")
        self._after = after

    def __dealloc__(self):
        if self._counted:  # entered and never exited: the context is still held
            pcg_sampler_span_closed(&self._context.engine._sampler)

    @property
    def start_ns(self):
        """When the block began (CLOCK_MONOTONIC ns), None before enter."""
        return self._start_ns if self._start is not None else None

    @property
    def end_ns(self):
        """When the block ended (CLOCK_MONOTONIC ns), None before exit."""
        return self._end_ns if self._end is not None else None

    def __enter__(self):
        if self._context is None:
            raise RuntimeError(f"span {self.label!r} has ended: a span is entered once")
        cdef Engine engine = self._context.engine
        # Without a running thread the newest row may be old: read one now instead.
        self._sync = self.exact or not pcg_sampler_running(&engine._sampler)
        if not self._sync and not self._counted:
            pcg_sampler_span_opened(&engine._sampler)
            self._counted = True
        if self._after is not None:  # its end row is this span's start: no read
            self._start = self._after._end[:(engine._ring.width + 1) * sizeof(int64_t)]
            self._start_ns = self._after._end_ns
            self._after = None  # windows chained this way must not keep each other
            return self
        self._start_ns = _monotonic_ns()
        self._start = engine._boundary(self._sync)
        if self._sync:  # the row read at enter is the boundary
            self._start_ns = (<const int64_t *>PyBytes_AS_STRING(self._start))[1]
        return self

    def __exit__(self, exc_type, exc, traceback):
        cdef SpanContext context = self._context
        if context is None or self._start is None:
            raise RuntimeError(f"span {self.label!r} was never entered")
        try:
            self._end = context.engine._span_end(self._start, self._sync, self._start_ns,
                                                 context.max_gap_ns, context.ws_current,
                                                 context.ws_inactive)
        finally:
            if self._counted:
                pcg_sampler_span_closed(&context.engine._sampler)
                self._counted = False
        self._end_ns = _monotonic_ns()
        if self._sync:
            self._end_ns = (<const int64_t *>PyBytes_AS_STRING(self._end))[1]
        self._context = None  # the store it goes to must not lead back to it
        context.pending.append(self)
        if len(context.pending) >= context.flush_at:
            context.flush()


cdef class Nvml:
    """libnvidia-ml opened with dlopen and initialised; unloaded when collected."""

    cdef pcg_nvml _nvml
    cdef bint _loaded
    cdef readonly str path

    def __cinit__(self, path=None):
        cdef bytes encoded = os.fsencode(path) if path is not None else None
        cdef const char *path_c = NULL
        if encoded is not None:
            path_c = encoded
        self.path = path or "libnvidia-ml.so.1"
        rc = pcg_nvml_load(&self._nvml, path_c)
        if rc != 0:
            reason = pcg_nvml_load_error().decode(errors="replace")
            if rc == -EIO:
                reason += f" (NVML error {self._nvml.last_nvml_error})"
            raise OSError(-rc, reason, self.path)
        self._loaded = True

    def __dealloc__(self):
        if self._loaded:
            pcg_nvml_unload(&self._nvml)

    def device_count(self):
        n = pcg_nvml_device_count(&self._nvml)
        if n < 0:
            raise OSError(EIO, f"nvmlDeviceGetCount_v2 failed: NVML error {self._nvml.last_nvml_error}")
        return n

    def uuid(self, unsigned int index):
        cdef char buf[96]
        if pcg_nvml_device_uuid(&self._nvml, index, buf, sizeof(buf)) != 0:
            raise OSError(EIO, f"no UUID for GPU {index}: NVML error {self._nvml.last_nvml_error}")
        return buf.decode()


cdef class GpuGroup:
    """One GPU's metrics, read into given row columns (PCG_GPU_NO_COLUMN: not read)."""

    cdef pcg_gpu _gpu
    cdef Nvml _nvml
    cdef bint _ready
    cdef readonly str label
    cdef readonly tuple columns
    cdef readonly Py_ssize_t row_length  # the shortest row the bound columns fit in

    def __cinit__(self, Nvml nvml not None, unsigned int index, columns, unsigned int pid,
                  uint64_t history_capacity=4096, label=""):
        cdef uint32_t columns_c[64]
        if len(columns) != PCG_GPU_NMETRICS:
            raise ValueError(f"need {PCG_GPU_NMETRICS} columns, got {len(columns)}")
        for i, c in enumerate(columns):
            if c is not None and not 0 <= c < PCG_GPU_NO_COLUMN:
                raise ValueError(f"column {c} of metric {i} is out of range")
            columns_c[i] = PCG_GPU_NO_COLUMN if c is None else c
        rc = pcg_gpu_init(&self._gpu, &nvml._nvml, index, columns_c, pid, history_capacity)
        if rc == -ENOMEM:
            raise MemoryError()
        if rc != 0:
            raise OSError(ENODEV, f"no NVML device {index}: NVML error {self._gpu.last_nvml_error}")
        self._nvml = nvml
        self._ready = True
        self.label = label
        self.columns = tuple(columns)
        self.row_length = max([c + 1 for c in columns if c is not None], default=0)

    def __dealloc__(self):
        if self._ready:
            pcg_gpu_destroy(&self._gpu)

    def read_into(self, int64_t[::1] row):
        """Reads the bound metrics into row; returns 0 or -errno (-ENODEV: GPU lost)."""
        self._check_row(row.shape[0])
        with nogil:
            rc = pcg_gpu_read(&self._gpu, &row[0])
        return rc

    def read_many(self, row_array, int times):
        """Reads the group `times` times in a C loop (for benchmarks); returns the last rc."""
        cdef int64_t[::1] row = row_array
        cdef int rc = 0
        self._check_row(row.shape[0])
        with nogil:
            for _ in range(times):
                rc = pcg_gpu_read(&self._gpu, &row[0])
        return rc

    def _check_row(self, Py_ssize_t length):
        if length < self.row_length or length == 0:
            raise ValueError(f"row has {length} slots, the GPU group fills {self.row_length}")

    def error(self):
        """Returns the exception describing the last failed read."""
        return OSError(ENODEV if self._gpu.lost_reads else EIO,
                       f"NVML error {self._gpu.last_nvml_error}", self.label)

    @property
    def lost_reads(self):
        return self._gpu.lost_reads

    @property
    def uses_field_values(self):
        return bool(self._gpu.use_field_values)

    @property
    def process_struct(self):
        """Which compute-process entry point the driver answered: "v3", "v2", "v1" or None."""
        return {0: "v3", 1: "v2", 2: "v1"}.get(self._gpu.process_version)

    def history(self, int kind):
        """Returns (t_ns, values) of the driver's samples drained so far, oldest first:
        kind 0 is power in mW, 1 GPU utilisation in %. A consistent copy while a thread
        reads the GPU."""
        if not 0 <= kind < PCG_GPU_HISTORY_KINDS:
            raise ValueError(f"history kind must be 0 (power) or 1 (utilisation), not {kind}")
        cdef uint64_t cap = self._gpu.history[kind].capacity
        out = np.empty((max(cap, 1), 2), dtype=np.int64)
        cdef int64_t[:, ::1] view = out
        cdef int64_t n
        with nogil:
            n = pcg_gpu_history_copy(&self._gpu, kind, <int64_t (*)[2]>&view[0, 0], cap)
        return out[:n, 0].copy(), out[:n, 1].copy()
