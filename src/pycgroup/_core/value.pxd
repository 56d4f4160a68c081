from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "pcg_value.h":
    int64_t PCG_MISSING
    int64_t PCG_UNLIMITED
    int64_t PCG_VALUE_CEIL
    int PCG_EPARSE
    enum:
        PCG_VAL_MISSING
        PCG_VAL_NUMBER
        PCG_VAL_MAX
    ctypedef struct pcg_value:
        uint64_t number
        uint8_t kind
