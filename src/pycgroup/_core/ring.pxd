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
    void pcg_ring_free(pcg_ring *r)
