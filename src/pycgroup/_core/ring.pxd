from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "ring.h" nogil:
    ctypedef struct pcg_ring:
        uint64_t capacity
        uint32_t width
        uint64_t committed
        uint64_t dropped
    int pcg_ring_init(pcg_ring *r, uint64_t capacity, uint32_t width)
    uint64_t pcg_ring_copy(pcg_ring *r, uint64_t start, int64_t *out, uint64_t max_rows,
                           uint64_t *first)
    uint64_t pcg_ring_position_at(pcg_ring *r, int64_t t)
    int pcg_ring_copy_newest(pcg_ring *r, int64_t *out, uint64_t *pos)
    int64_t pcg_ring_peaks(pcg_ring *r, uint64_t start, uint64_t end, int64_t t_min,
                           int64_t max_gap_ns, int64_t *peaks, int ws_current,
                           int ws_inactive, int64_t *ws_peak, uint64_t *gaps)
    void pcg_ring_free(pcg_ring *r)
