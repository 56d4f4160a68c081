from libc.stdint cimport int64_t
from pycgroup._core.source cimport pcg_field_spec, pcg_format, pcg_source

cdef extern from "reader.h" nogil:
    ctypedef struct pcg_reader:
        pcg_source *sources
        size_t nsources
        size_t ncolumns
    int pcg_reader_init(pcg_reader *r, size_t nsources, size_t ncolumns)
    int pcg_reader_open(pcg_reader *r, size_t i, const char *path, pcg_format format,
                        const pcg_field_spec *specs, size_t nfields)
    size_t pcg_reader_read(pcg_reader *r, int64_t *row)
    size_t pcg_reader_fill(pcg_reader *r)
    void pcg_reader_close(pcg_reader *r)
    void pcg_reader_destroy(pcg_reader *r)
