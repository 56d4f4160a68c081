from libc.stdint cimport int64_t, uint32_t, uint64_t
from pycgroup._core.nvml cimport pcg_gpu
from pycgroup._core.process_clock cimport pcg_process_clock
from pycgroup._core.reader cimport pcg_reader
from pycgroup._core.ring cimport pcg_ring

cdef extern from "sampler.h" nogil:
    unsigned long long PCG_PERIOD_MIN_NS
    unsigned long long PCG_PERIOD_MAX_NS
    ctypedef struct pcg_sampler:
        pcg_reader *reader
        uint64_t samples
        uint64_t overruns
        uint64_t read_errors
        int last_error
        int last_error_source
        uint64_t lateness_max_ns
    int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                         const uint32_t *every)
    int pcg_sampler_set_reader(pcg_sampler *s, pcg_reader *reader)
    int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every)
    int pcg_sampler_set_process_clock(pcg_sampler *s, const pcg_process_clock *clock,
                                      uint32_t cpu_every, uint32_t rusage_every)
    int pcg_sampler_start(pcg_sampler *s)
    int pcg_sampler_stop(pcg_sampler *s)
    int64_t pcg_sampler_sample_now(pcg_sampler *s)
    int pcg_sampler_close(pcg_sampler *s)
    bint pcg_sampler_running(pcg_sampler *s)
    int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos)
    size_t pcg_sampler_fill(pcg_sampler *s)
    int64_t pcg_sampler_thread_cpu_ns(pcg_sampler *s)
    int pcg_sampler_refresh_cpu_clock(const pcg_sampler *s, int64_t *row, uint64_t pos)
    void pcg_sampler_span_opened(pcg_sampler *s)
    void pcg_sampler_span_closed(pcg_sampler *s)
    uint64_t pcg_sampler_lateness_quantile(pcg_sampler *s, double q)
    void pcg_sampler_destroy(pcg_sampler *s)
