from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "nvml.h" nogil:
    int PCG_GPU_NMETRICS
    uint32_t PCG_GPU_NO_COLUMN
    ctypedef struct pcg_nvml:
        int last_nvml_error
    ctypedef struct pcg_gpu_history:
        int64_t (*rows)[2]
        uint64_t capacity
        uint64_t written
    ctypedef struct pcg_gpu:
        pcg_gpu_history history[2]
        uint64_t lost_reads
        int last_nvml_error
        bint use_field_values
        int process_version
    int pcg_nvml_load(pcg_nvml *n, const char *path)
    const char *pcg_nvml_load_error()
    void pcg_nvml_unload(pcg_nvml *n)
    int pcg_nvml_device_count(pcg_nvml *n)
    int pcg_nvml_device_uuid(pcg_nvml *n, unsigned int index, char *out, unsigned int size)
    int pcg_gpu_init(pcg_gpu *g, pcg_nvml *n, unsigned int index, const uint32_t *columns,
                     unsigned int pid, uint64_t history_capacity)
    int pcg_gpu_read(pcg_gpu *g, int64_t *row)
    int PCG_GPU_HISTORY_KINDS
    int64_t pcg_gpu_history_copy(pcg_gpu *g, int kind, int64_t (*out)[2], uint64_t max)
    void pcg_gpu_destroy(pcg_gpu *g)
