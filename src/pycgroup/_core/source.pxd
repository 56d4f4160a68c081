from libc.stdint cimport int64_t, uint32_t
from pycgroup._core.value cimport pcg_value

cdef extern from "source.h" nogil:
    unsigned int PCG_MAX_CONTENT
    int PCG_ENOTREG
    enum pcg_format:
        PCG_FMT_FLAT_KEYED
        PCG_FMT_COLON_KEYED
        PCG_FMT_VALUE
        PCG_FMT_QUOTA_V1
        PCG_FMT_CPU_MAX
        PCG_FMT_PSI
        PCG_FMT_PID_STAT
        PCG_FMT_COUNT
    ctypedef struct pcg_field_spec:
        const char *key
        int64_t mul
        int64_t div
        int64_t unlimited_at
        uint32_t column
    ctypedef struct pcg_source:
        int fd
        size_t len
        pcg_value *values
        int error
        int error_line
    int pcg_source_init(pcg_source *s, pcg_format format, const pcg_field_spec *specs,
                        size_t nfields)
    int pcg_source_set_content(pcg_source *s, const char *content, size_t len)
    int pcg_source_parse(pcg_source *s)
    void pcg_source_close(pcg_source *s)
