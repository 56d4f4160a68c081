#define _GNU_SOURCE /* dlopen flags, clock_gettime */
#include "nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pcg_value.h"

static char load_error[256];

/* Returns the symbol name from the library, or NULL. */
static void *symbol(pcg_nvml *n, const char *name)
{
    return dlsym(n->library, name);
}

/* Returns 0 after opening the library and calling nvmlInit_v2, or -errno. */
int pcg_nvml_load(pcg_nvml *n, const char *path)
{
    memset(n, 0, sizeof *n);
    load_error[0] = '\0';
    n->library = dlopen(path != NULL ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (n->library == NULL) {
        const char *why = dlerror();
        strncpy(load_error, why != NULL ? why : "dlopen failed", sizeof load_error - 1);
        return -ENOENT;
    }
    /* The versioned entry points: the unversioned names are the old ABI. */
    *(void **)&n->init_v2 = symbol(n, "nvmlInit_v2");
    *(void **)&n->shutdown = symbol(n, "nvmlShutdown");
    *(void **)&n->device_count_v2 = symbol(n, "nvmlDeviceGetCount_v2");
    *(void **)&n->handle_by_index_v2 = symbol(n, "nvmlDeviceGetHandleByIndex_v2");
    if (!n->init_v2 || !n->shutdown || !n->device_count_v2 || !n->handle_by_index_v2) {
        strncpy(load_error, "a required NVML entry point (nvmlInit_v2, nvmlShutdown, "
                            "nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2) is missing",
                sizeof load_error - 1);
        dlclose(n->library);
        n->library = NULL;
        return -ENOSYS;
    }
    *(void **)&n->uuid = symbol(n, "nvmlDeviceGetUUID");
    *(void **)&n->memory_info = symbol(n, "nvmlDeviceGetMemoryInfo");
    *(void **)&n->utilization = symbol(n, "nvmlDeviceGetUtilizationRates");
    *(void **)&n->power_usage = symbol(n, "nvmlDeviceGetPowerUsage");
    *(void **)&n->total_energy = symbol(n, "nvmlDeviceGetTotalEnergyConsumption");
    *(void **)&n->temperature = symbol(n, "nvmlDeviceGetTemperature");
    *(void **)&n->clock_info = symbol(n, "nvmlDeviceGetClockInfo");
    /* Renamed in CUDA 12.2 drivers; the old name stays for older ones. */
    *(void **)&n->clocks_event_reasons = symbol(n, "nvmlDeviceGetCurrentClocksEventReasons");
    if (n->clocks_event_reasons == NULL)
        *(void **)&n->clocks_event_reasons =
            symbol(n, "nvmlDeviceGetCurrentClocksThrottleReasons");
    *(void **)&n->violation_status = symbol(n, "nvmlDeviceGetViolationStatus");
    *(void **)&n->field_values = symbol(n, "nvmlDeviceGetFieldValues");
    *(void **)&n->samples = symbol(n, "nvmlDeviceGetSamples");
    *(void **)&n->processes[0] = symbol(n, "nvmlDeviceGetComputeRunningProcesses_v3");
    *(void **)&n->processes[1] = symbol(n, "nvmlDeviceGetComputeRunningProcesses_v2");
    *(void **)&n->processes[2] = symbol(n, "nvmlDeviceGetComputeRunningProcesses");
    nvmlReturn_t rc = n->init_v2();
    if (rc != NVML_SUCCESS) {
        n->last_nvml_error = rc;
        strncpy(load_error, "nvmlInit_v2 failed", sizeof load_error - 1);
        dlclose(n->library);
        n->library = NULL;
        return -EIO;
    }
    return 0;
}

/* Returns the text of the last failed load, or "". */
const char *pcg_nvml_load_error(void)
{
    return load_error;
}

/* Calls nvmlShutdown and closes the library; safe to call twice. */
void pcg_nvml_unload(pcg_nvml *n)
{
    if (n->library == NULL)
        return;
    n->shutdown();
    dlclose(n->library);
    n->library = NULL;
}

/* Returns the number of devices NVML sees, or -EIO. */
int pcg_nvml_device_count(pcg_nvml *n)
{
    unsigned int count = 0;
    nvmlReturn_t rc = n->device_count_v2(&count);
    if (rc != NVML_SUCCESS) {
        n->last_nvml_error = rc;
        return -EIO;
    }
    return (int)count;
}

/* Returns 0 after copying device index's UUID into out, or -EIO. */
int pcg_nvml_device_uuid(pcg_nvml *n, unsigned int index, char *out, unsigned int size)
{
    nvmlDevice_t device;
    nvmlReturn_t rc = n->handle_by_index_v2(index, &device);
    if (rc == NVML_SUCCESS)
        rc = n->uuid != NULL ? n->uuid(device, out, size) : NVML_ERROR_NOT_SUPPORTED;
    if (rc != NVML_SUCCESS) {
        n->last_nvml_error = rc;
        return -EIO;
    }
    return 0;
}

/* Returns 0 after binding device index to the metrics' columns, or -errno. */
int pcg_gpu_init(pcg_gpu *g, pcg_nvml *n, unsigned int index, const uint32_t *columns,
                 unsigned int pid, uint64_t history_capacity)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->history_lock, NULL);
    g->nvml = n;
    g->pid = pid;
    g->process_version = -1;
    g->use_field_values = n->field_values != NULL;
    memcpy(g->column, columns, sizeof g->column);
    nvmlReturn_t rc = n->handle_by_index_v2(index, &g->device);
    if (rc != NVML_SUCCESS) {
        g->last_nvml_error = rc;
        pcg_gpu_destroy(g);
        return -ENODEV;
    }
    for (int h = 0; h < 2 && history_capacity > 0; h++) {
        g->history[h].rows = calloc(history_capacity, sizeof *g->history[h].rows);
        if (g->history[h].rows == NULL) {
            pcg_gpu_destroy(g);
            return -ENOMEM;
        }
        g->history[h].capacity = history_capacity;
    }
    return 0;
}

/* Returns true when metric m is wanted and not known to be unsupported. */
static bool wanted(const pcg_gpu *g, enum pcg_gpu_metric m)
{
    return g->column[m] != PCG_GPU_NO_COLUMN && !g->unsupported[m];
}

/* Stores value for metric m (if bound), or PCG_MISSING when rc is not success;
 * remembers NOT_SUPPORTED. Returns rc. */
static nvmlReturn_t put(pcg_gpu *g, int64_t *row, enum pcg_gpu_metric m, nvmlReturn_t rc,
                        unsigned long long value)
{
    if (g->column[m] == PCG_GPU_NO_COLUMN)
        return rc;
    if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_FUNCTION_NOT_FOUND)
        g->unsupported[m] = true;
    row[g->column[m]] = rc == NVML_SUCCESS
                            ? (value > (unsigned long long)PCG_VALUE_CEIL ? PCG_VALUE_CEIL
                                                                          : (int64_t)value)
                            : PCG_MISSING;
    return rc;
}

/* Returns a field value's integer, whatever its declared type. */
static unsigned long long field_number(const nvmlFieldValue_t *f)
{
    switch (f->valueType) {
    case NVML_VALUE_TYPE_DOUBLE:
        return f->value.dVal > 0 ? (unsigned long long)f->value.dVal : 0;
    case NVML_VALUE_TYPE_UNSIGNED_INT:
        return f->value.uiVal;
    case NVML_VALUE_TYPE_UNSIGNED_LONG:
        return f->value.ulVal;
    case NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return f->value.sllVal > 0 ? (unsigned long long)f->value.sllVal : 0;
    default:
        return f->value.ullVal;
    }
}

/* Reads energy and the six violation counters: in one nvmlDeviceGetFieldValues call where
 * the driver has it, else (or for a field it fails) through their own calls. */
static void read_counters(pcg_gpu *g, int64_t *row)
{
    nvmlFieldValue_t fields[1 + NVML_PERF_POLICY_COUNT_USED];
    bool done[1 + NVML_PERF_POLICY_COUNT_USED] = {false};
    bool any = wanted(g, PCG_GPU_ENERGY_MJ);
    int n = 0;
    for (int p = 0; p < NVML_PERF_POLICY_COUNT_USED; p++)
        any |= wanted(g, (enum pcg_gpu_metric)(PCG_GPU_VIOLATION_POWER_NS + p));
    if (!any)
        return; /* no call at all when neither energy nor a violation counter is wanted */
    if (g->use_field_values) {
        memset(fields, 0, sizeof fields);
        fields[n++].fieldId = NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION;
        for (int p = 0; p < NVML_PERF_POLICY_COUNT_USED; p++)
            fields[n++].fieldId = NVML_FI_DEV_PERF_POLICY_POWER + (unsigned)p;
        nvmlReturn_t rc = g->nvml->field_values(g->device, n, fields);
        if (rc == NVML_SUCCESS) {
            for (int i = 0; i < n; i++) {
                if (fields[i].nvmlReturn != NVML_SUCCESS)
                    continue;
                enum pcg_gpu_metric m =
                    i == 0 ? PCG_GPU_ENERGY_MJ
                           : (enum pcg_gpu_metric)(PCG_GPU_VIOLATION_POWER_NS + i - 1);
                put(g, row, m, NVML_SUCCESS, field_number(&fields[i]));
                done[i] = true;
            }
        } else if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_FUNCTION_NOT_FOUND) {
            g->use_field_values = false; /* this driver or device has no field values */
        }
    }
    if (!done[0] && wanted(g, PCG_GPU_ENERGY_MJ)) {
        unsigned long long mj = 0;
        nvmlReturn_t rc = g->nvml->total_energy ? g->nvml->total_energy(g->device, &mj)
                                                : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, PCG_GPU_ENERGY_MJ, rc, mj);
    }
    for (int p = 0; p < NVML_PERF_POLICY_COUNT_USED; p++) {
        enum pcg_gpu_metric m = (enum pcg_gpu_metric)(PCG_GPU_VIOLATION_POWER_NS + p);
        if (done[1 + p] || !wanted(g, m))
            continue;
        nvmlViolationTime_t v = {0, 0};
        nvmlReturn_t rc = g->nvml->violation_status ? g->nvml->violation_status(g->device, p, &v)
                                                    : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, m, rc, v.violationTime);
    }
}

/* Reads this process's GPU memory from the compute process list, detecting which of the
 * _v3, _v2 and v1 entry points (and so which struct) the driver has. The driver reports
 * PIDs as the host sees them; g->pid is this process's outermost visible PID. */
static void read_process_memory(pcg_gpu *g, int64_t *row)
{
    static _Thread_local nvmlProcessInfo_v2_t wide[PCG_GPU_MAX_PROCESSES];
    nvmlProcessInfo_v1_t *narrow = (nvmlProcessInfo_v1_t *)wide; /* v1 entries are smaller */
    nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    unsigned int count = 0;
    int first = g->process_version >= 0 ? g->process_version : 0;
    int last = g->process_version >= 0 ? g->process_version : 2;
    for (int v = first; v <= last; v++) {
        if (g->nvml->processes[v] == NULL)
            continue;
        count = PCG_GPU_MAX_PROCESSES;
        rc = g->nvml->processes[v](g->device, &count, wide);
        if (rc == NVML_ERROR_FUNCTION_NOT_FOUND)
            continue;
        g->process_version = v;
        break;
    }
    if (rc != NVML_SUCCESS) {
        put(g, row, PCG_GPU_PROC_MEMORY_USED, rc, 0);
        return;
    }
    if (g->pid == 0) { /* our PID as the driver sees it is unknown: report nothing */
        put(g, row, PCG_GPU_PROC_MEMORY_USED, NVML_ERROR_NOT_FOUND, 0);
        return;
    }
    /* A process missing from the list has no context on this GPU: it uses 0 bytes. */
    unsigned long long used = 0;
    for (unsigned int i = 0; i < count && i < PCG_GPU_MAX_PROCESSES; i++) {
        unsigned int pid = g->process_version == 2 ? narrow[i].pid : wide[i].pid;
        if (pid == g->pid)
            used += g->process_version == 2 ? narrow[i].usedGpuMemory : wide[i].usedGpuMemory;
    }
    put(g, row, PCG_GPU_PROC_MEMORY_USED, NVML_SUCCESS, used);
}

/* Returns CLOCK_REALTIME - CLOCK_MONOTONIC in ns: maps the driver's timestamps. The realtime
 * read is bracketed by two monotonic reads and the tightest of three brackets is kept, so a
 * preemption between the reads does not shift the offset (and the mapped history) by a slice. */
static int64_t realtime_offset_ns(void)
{
    int64_t best_offset = 0, best_width = INT64_MAX;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct timespec m0, r, m1;
        clock_gettime(CLOCK_MONOTONIC, &m0);
        clock_gettime(CLOCK_REALTIME, &r);
        clock_gettime(CLOCK_MONOTONIC, &m1);
        int64_t mono0 = (int64_t)m0.tv_sec * 1000000000 + m0.tv_nsec;
        int64_t mono1 = (int64_t)m1.tv_sec * 1000000000 + m1.tv_nsec;
        int64_t real = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec;
        if (mono1 - mono0 < best_width) {
            best_width = mono1 - mono0;
            best_offset = real - (mono0 + (mono1 - mono0) / 2);
        }
    }
    return best_offset;
}

/* Drains the driver's sample buffers of power and utilisation into the histories. The
 * realtime-to-monotonic offset only moves when the clock is stepped or slewed, so it is
 * measured again every 256 drains rather than on each (two clock reads each time). */
static void drain_history(pcg_gpu *g)
{
    static const int types[2] = {NVML_TOTAL_POWER_SAMPLES, NVML_GPU_UTILIZATION_SAMPLES};
    nvmlSample_t samples[PCG_GPU_MAX_SAMPLES];
    if (g->nvml->samples == NULL || (g->history[0].rows == NULL && g->history[1].rows == NULL))
        return;
    if (g->drains++ % 256 == 0)
        g->realtime_offset_ns = realtime_offset_ns();
    int64_t offset = g->realtime_offset_ns;
    pthread_mutex_lock(&g->history_lock); /* a copy in another thread sees whole drains */
    for (int h = 0; h < 2; h++) {
        pcg_gpu_history *hist = &g->history[h];
        if (hist->rows == NULL)
            continue;
        unsigned int count = PCG_GPU_MAX_SAMPLES;
        int value_type = 0;
        if (g->nvml->samples(g->device, types[h], hist->last_seen_us, &value_type, &count,
                             samples) != NVML_SUCCESS)
            continue;
        for (unsigned int i = 0; i < count && i < PCG_GPU_MAX_SAMPLES; i++) {
            if (samples[i].timeStamp <= hist->last_seen_us)
                continue;
            nvmlFieldValue_t as_field = {.valueType = value_type, .value = samples[i].sampleValue};
            int64_t *row = hist->rows[hist->written % hist->capacity];
            /* The driver's timestamps increase; a re-measured offset (the realtime clock
             * stepped or slewed) must not put a row before the one drained ahead of it. */
            int64_t t_ns = (int64_t)samples[i].timeStamp * 1000 - offset;
            row[0] = t_ns > hist->last_t_ns ? t_ns : hist->last_t_ns;
            hist->last_t_ns = row[0];
            row[1] = (int64_t)field_number(&as_field);
            hist->written++;
            hist->last_seen_us = samples[i].timeStamp;
        }
    }
    pthread_mutex_unlock(&g->history_lock);
}

/* Returns how many rows of history kind were copied into out, oldest first, or -EINVAL. */
int64_t pcg_gpu_history_copy(pcg_gpu *g, int kind, int64_t (*out)[2], uint64_t max)
{
    if (kind < 0 || kind >= PCG_GPU_HISTORY_KINDS)
        return -EINVAL;
    pthread_mutex_lock(&g->history_lock);
    pcg_gpu_history *hist = &g->history[kind];
    uint64_t n = hist->written < hist->capacity ? hist->written : hist->capacity;
    if (n > max)
        n = max;
    uint64_t start = hist->written - n;
    for (uint64_t i = 0; i < n; i++) {
        out[i][0] = hist->rows[(start + i) % hist->capacity][0];
        out[i][1] = hist->rows[(start + i) % hist->capacity][1];
    }
    pthread_mutex_unlock(&g->history_lock);
    return (int64_t)n;
}

/* Returns 0 after reading the bound metrics into row; -ENODEV when the GPU is lost. */
int pcg_gpu_read(pcg_gpu *g, int64_t *row)
{
    pcg_nvml *n = g->nvml;
    nvmlReturn_t rc = NVML_SUCCESS;
    if (wanted(g, PCG_GPU_MEMORY_USED) || wanted(g, PCG_GPU_MEMORY_TOTAL)) {
        nvmlMemory_t mem = {0, 0, 0};
        rc = n->memory_info ? n->memory_info(g->device, &mem) : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, PCG_GPU_MEMORY_USED, rc, mem.used);
        put(g, row, PCG_GPU_MEMORY_TOTAL, rc, mem.total);
        if (rc == NVML_ERROR_GPU_IS_LOST)
            goto lost;
    }
    if (wanted(g, PCG_GPU_UTIL_GPU) || wanted(g, PCG_GPU_UTIL_MEMORY)) {
        nvmlUtilization_t u = {0, 0};
        rc = n->utilization ? n->utilization(g->device, &u) : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, PCG_GPU_UTIL_GPU, rc, u.gpu);
        put(g, row, PCG_GPU_UTIL_MEMORY, rc, u.memory);
        if (rc == NVML_ERROR_GPU_IS_LOST)
            goto lost;
    }
    /* Each call is made before put() reads its output: argument order is unspecified. */
    if (wanted(g, PCG_GPU_POWER_MW)) {
        unsigned int mw = 0;
        rc = n->power_usage ? n->power_usage(g->device, &mw) : NVML_ERROR_FUNCTION_NOT_FOUND;
        if (put(g, row, PCG_GPU_POWER_MW, rc, mw) == NVML_ERROR_GPU_IS_LOST)
            goto lost;
    }
    if (wanted(g, PCG_GPU_TEMP_C)) {
        unsigned int c = 0;
        rc = n->temperature ? n->temperature(g->device, NVML_TEMPERATURE_GPU, &c)
                            : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, PCG_GPU_TEMP_C, rc, c);
    }
    static const int clocks[2] = {NVML_CLOCK_SM, NVML_CLOCK_MEM};
    for (int k = 0; k < 2; k++) {
        enum pcg_gpu_metric m = k == 0 ? PCG_GPU_CLOCK_SM_MHZ : PCG_GPU_CLOCK_MEM_MHZ;
        unsigned int mhz = 0;
        if (!wanted(g, m))
            continue;
        rc = n->clock_info ? n->clock_info(g->device, clocks[k], &mhz)
                           : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, m, rc, mhz);
    }
    if (wanted(g, PCG_GPU_CLOCK_EVENT_REASONS)) {
        unsigned long long reasons = 0;
        rc = n->clocks_event_reasons ? n->clocks_event_reasons(g->device, &reasons)
                                     : NVML_ERROR_FUNCTION_NOT_FOUND;
        put(g, row, PCG_GPU_CLOCK_EVENT_REASONS, rc, reasons);
    }
    read_counters(g, row);
    if (wanted(g, PCG_GPU_PROC_MEMORY_USED))
        read_process_memory(g, row);
    drain_history(g);
    return 0;
lost:
    g->lost_reads++;
    g->last_nvml_error = rc;
    for (int m = 0; m < PCG_GPU_NMETRICS; m++)
        if (g->column[m] != PCG_GPU_NO_COLUMN)
            row[g->column[m]] = PCG_MISSING;
    return -ENODEV;
}

/* Frees the histories; safe to call twice. */
void pcg_gpu_destroy(pcg_gpu *g)
{
    pthread_mutex_lock(&g->history_lock);
    for (int h = 0; h < 2; h++) {
        free(g->history[h].rows);
        g->history[h].rows = NULL;
        g->history[h].capacity = g->history[h].written = 0;
    }
    pthread_mutex_unlock(&g->history_lock);
}
