from libc.stdint cimport int64_t, uint32_t

cdef extern from "process_clock.h" nogil:
    uint32_t PCG_CLOCK_NO_COLUMN
    ctypedef struct pcg_process_clock:
        uint32_t cpu_usec
        uint32_t utime_usec
        uint32_t stime_usec
        uint32_t max_rss_bytes
    int pcg_process_clock_read(const pcg_process_clock *c, int64_t *row)
