/* NVML loaded at run time, and a GPU group: one device's metrics read into row columns. */
#ifndef PCG_NVML_H
#define PCG_NVML_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvml_abi.h"

/* The metrics of one GPU, in the order of their names in pycgroup/gpu.py. */
enum pcg_gpu_metric {
    PCG_GPU_MEMORY_USED, PCG_GPU_MEMORY_TOTAL, PCG_GPU_UTIL_GPU, PCG_GPU_UTIL_MEMORY,
    PCG_GPU_POWER_MW, PCG_GPU_ENERGY_MJ, PCG_GPU_TEMP_C, PCG_GPU_CLOCK_SM_MHZ,
    PCG_GPU_CLOCK_MEM_MHZ, PCG_GPU_CLOCK_EVENT_REASONS,
    PCG_GPU_VIOLATION_POWER_NS, PCG_GPU_VIOLATION_THERMAL_NS, PCG_GPU_VIOLATION_SYNC_BOOST_NS,
    PCG_GPU_VIOLATION_BOARD_LIMIT_NS, PCG_GPU_VIOLATION_LOW_UTIL_NS,
    PCG_GPU_VIOLATION_RELIABILITY_NS, PCG_GPU_PROC_MEMORY_USED,
    PCG_GPU_NMETRICS
};

#define PCG_GPU_NO_COLUMN UINT32_MAX
#define PCG_GPU_MAX_PROCESSES 256
#define PCG_GPU_MAX_SAMPLES 128 /* per drain and sample type */

/* The entry points used; optional ones are NULL when the library lacks them. */
typedef struct pcg_nvml {
    void *library;
    nvmlReturn_t (*init_v2)(void);
    nvmlReturn_t (*shutdown)(void);
    nvmlReturn_t (*device_count_v2)(unsigned int *);
    nvmlReturn_t (*handle_by_index_v2)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*memory_info)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*total_energy)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*clock_info)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*clocks_event_reasons)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*violation_status)(nvmlDevice_t, int, nvmlViolationTime_t *);
    nvmlReturn_t (*field_values)(nvmlDevice_t, int, nvmlFieldValue_t *);
    nvmlReturn_t (*samples)(nvmlDevice_t, int, unsigned long long, int *, unsigned int *,
                            nvmlSample_t *);
    nvmlReturn_t (*processes[3])(nvmlDevice_t, unsigned int *, void *); /* _v3, _v2, v1 */
    int last_nvml_error;
} pcg_nvml;

/* Returns 0 after opening the library at path (NULL: "libnvidia-ml.so.1") and calling
 * nvmlInit_v2; -ENOENT when it cannot be opened, -ENOSYS when a required symbol is
 * missing, -EIO when nvmlInit_v2 fails (its return code is in last_nvml_error). */
int pcg_nvml_load(pcg_nvml *n, const char *path);

/* Returns the dlerror() text of the last failed load, or "" (not thread-safe). */
const char *pcg_nvml_load_error(void);

/* Calls nvmlShutdown and closes the library; safe to call twice. */
void pcg_nvml_unload(pcg_nvml *n);

/* Returns the number of devices NVML sees, or -EIO. */
int pcg_nvml_device_count(pcg_nvml *n);

/* Returns 0 after copying device index's UUID ("GPU-...") into out, or -EIO. */
int pcg_nvml_device_uuid(pcg_nvml *n, unsigned int index, char *out, unsigned int size);

/* The driver's own samples, drained into a small ring of (t_ns, value) per type. */
typedef struct pcg_gpu_history {
    int64_t (*rows)[2]; /* capacity rows: CLOCK_MONOTONIC ns, value */
    uint64_t capacity, written;
    unsigned long long last_seen_us; /* driver timestamp of the newest sample drained */
    int64_t last_t_ns; /* its CLOCK_MONOTONIC time: rows never go back in time */
} pcg_gpu_history;

typedef struct pcg_gpu {
    pcg_nvml *nvml;
    nvmlDevice_t device;
    uint32_t column[PCG_GPU_NMETRICS]; /* row column of each metric, or PCG_GPU_NO_COLUMN */
    bool unsupported[PCG_GPU_NMETRICS]; /* the driver said NOT_SUPPORTED: do not ask again */
    bool use_field_values;   /* energy and violations in one nvmlDeviceGetFieldValues call */
    int process_version;     /* index into nvml->processes that works, or -1 until known */
    unsigned int pid;        /* this process's PID as the driver reports it; 0: unknown */
    pcg_gpu_history history[2]; /* [0] power (mW), [1] GPU utilisation (%) */
    pthread_mutex_t history_lock; /* held by a drain and by a copy: never a torn history */
    int64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed now and then */
    uint32_t drains;         /* history drains since the offset was measured */
    uint64_t lost_reads;     /* reads that found the GPU lost */
    int last_nvml_error;
} pcg_gpu;

/* Returns 0 after binding device index to the metrics' columns (columns[m] or
 * PCG_GPU_NO_COLUMN), with histories of history_capacity rows (0: none), or -errno. */
int pcg_gpu_init(pcg_gpu *g, pcg_nvml *n, unsigned int index, const uint32_t *columns,
                 unsigned int pid, uint64_t history_capacity);

/* Returns 0 after reading the bound metrics into row (unsupported ones PCG_MISSING);
 * -ENODEV when the GPU is lost, -EIO for another NVML error (all its columns missing). */
int pcg_gpu_read(pcg_gpu *g, int64_t *row);

#define PCG_GPU_HISTORY_KINDS 2

/* Returns how many (t_ns, value) rows of history kind (0 power, 1 utilisation) were
 * copied into out, oldest first (at most max, the newest ones), consistent with the
 * drains of a thread reading the GPU concurrently; or -EINVAL for another kind. */
int64_t pcg_gpu_history_copy(pcg_gpu *g, int kind, int64_t (*out)[2], uint64_t max);

/* Frees the histories; safe to call twice. */
void pcg_gpu_destroy(pcg_gpu *g);

#endif
