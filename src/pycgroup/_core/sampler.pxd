from libc.stdint cimport int64_t, uint32_t, uint64_t
from pycgroup._core.nvml cimport pcg_gpu
from pycgroup._core.reader cimport pcg_reader
from pycgroup._core.ring cimport pcg_ring

cdef extern from "sampler.h" nogil:
    ctypedef struct pcg_sampler:
        pcg_reader *reader
        uint64_t samples
        uint64_t overruns
        uint64_t read_errors
        int last_error
        int last_error_source
        uint64_t lateness_max_ns
        bint running
    int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                         const uint32_t *every)
    int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every)
    int pcg_sampler_start(pcg_sampler *s)
    int pcg_sampler_stop(pcg_sampler *s)
    int64_t pcg_sampler_sample_now(pcg_sampler *s)
    int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos)
    int pcg_sampler_grow_outgrown(pcg_sampler *s)
    uint64_t pcg_sampler_lateness_quantile(pcg_sampler *s, double q)
    void pcg_sampler_destroy(pcg_sampler *s)
