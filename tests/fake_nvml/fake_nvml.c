/* A fake libnvidia-ml.so.1 for tests on machines without a GPU. It implements the NVML
 * entry points pycgroup and nvidia-ml-py use, with values scripted by a file named in
 * FAKE_NVML_SCRIPT (read by nvmlInit*) and changed later with fake_nvml_set().
 *
 * Script lines: "count N", "gpuI.uuid GPU-...", "gpuI.<metric> VALUE" (memory.used,
 * memory.total, util.gpu, util.memory, power_mw, energy_mj, temp_c, clock.sm_mhz,
 * clock.mem_mhz, clock_event_reasons, violation.<i>_ns for i in 0..5), "gpuI.proc PID BYTES",
 * "gpuI.unsupported METRIC", "gpuI.lost 1", "field_values 0".
 * Built with -DFAKE_OLD_DRIVER it has only the old entry points (no field values, no _v2/_v3
 * process lists, ThrottleReasons instead of ClocksEventReasons, no samples); with
 * -DFAKE_NO_INIT_V2 it lacks nvmlInit_v2. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvml_abi.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_GPUS 8
#define MAX_PROCS 8

enum { MEM_USED, MEM_TOTAL, UTIL_GPU, UTIL_MEM, POWER, ENERGY, TEMP, CLK_SM, CLK_MEM, REASONS,
       VIOL0, VIOL1, VIOL2, VIOL3, VIOL4, VIOL5, NVALUES };
static const char *const NAMES[NVALUES] = {
    "memory.used", "memory.total", "util.gpu", "util.memory", "power_mw", "energy_mj",
    "temp_c", "clock.sm_mhz", "clock.mem_mhz", "clock_event_reasons", "violation.0_ns",
    "violation.1_ns", "violation.2_ns", "violation.3_ns", "violation.4_ns", "violation.5_ns"};

struct gpu {
    char uuid[96];
    unsigned long long value[NVALUES];
    int unsupported[NVALUES];
    unsigned int proc_pid[MAX_PROCS];
    unsigned long long proc_mem[MAX_PROCS];
    int nprocs;
    int lost;
};

static struct gpu gpus[MAX_GPUS];
static int gpu_count, field_values_ok = 1, init_count;
static unsigned long long calls;

static int metric_index(const char *name)
{
    for (int i = 0; i < NVALUES; i++)
        if (strcmp(NAMES[i], name) == 0)
            return i;
    return -1;
}

/* Applies one "key value..." setting; returns 0, or -1 when it is not understood. */
EXPORT int fake_nvml_set(const char *key, const char *value)
{
    int g;
    char rest[64];
    if (strcmp(key, "count") == 0) {
        gpu_count = atoi(value);
        return 0;
    }
    if (strcmp(key, "field_values") == 0) {
        field_values_ok = atoi(value);
        return 0;
    }
    if (sscanf(key, "gpu%d.%63s", &g, rest) != 2 || g < 0 || g >= MAX_GPUS)
        return -1;
    struct gpu *d = &gpus[g];
    if (strcmp(rest, "uuid") == 0) {
        snprintf(d->uuid, sizeof d->uuid, "%s", value);
    } else if (strcmp(rest, "lost") == 0) {
        d->lost = atoi(value);
    } else if (strcmp(rest, "proc") == 0) {
        if (d->nprocs < MAX_PROCS &&
            sscanf(value, "%u %llu", &d->proc_pid[d->nprocs], &d->proc_mem[d->nprocs]) == 2)
            d->nprocs++;
    } else if (strcmp(rest, "unsupported") == 0) {
        int m = metric_index(value);
        if (m < 0)
            return -1;
        d->unsupported[m] = 1;
    } else {
        int m = metric_index(rest);
        if (m < 0)
            return -1;
        d->value[m] = strtoull(value, NULL, 10);
    }
    return 0;
}

/* Returns how many NVML calls were made since the library was loaded. */
EXPORT unsigned long long fake_nvml_calls(void)
{
    return calls;
}

/* Like NVML, initialisation is counted: the script is read by the first nvmlInit only. */
static nvmlReturn_t load_script(void)
{
    if (init_count++ > 0)
        return NVML_SUCCESS;
    const char *path = getenv("FAKE_NVML_SCRIPT");
    char line[256], key[64], value[160];
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f == NULL)
        return path ? 999 /* NVML_ERROR_UNKNOWN */ : NVML_SUCCESS;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %159[^\n]", key, value) == 2)
            fake_nvml_set(key, value);
    fclose(f);
    return NVML_SUCCESS;
}

static struct gpu *dev(nvmlDevice_t d)
{
    calls++;
    return (struct gpu *)d;
}

/* Returns the error a metric read gets, or success. */
static nvmlReturn_t check(struct gpu *d, int m)
{
    if (d->lost)
        return NVML_ERROR_GPU_IS_LOST;
    return d->unsupported[m] ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

#ifndef FAKE_NO_INIT_V2
EXPORT nvmlReturn_t nvmlInit_v2(void) { calls++; return load_script(); }
#endif
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; calls++; return load_script(); }
EXPORT nvmlReturn_t nvmlShutdown(void)
{
    calls++;
    init_count = init_count > 0 ? init_count - 1 : 0;
    return NVML_SUCCESS;
}
EXPORT const char *nvmlErrorString(nvmlReturn_t rc)
{
    return rc == NVML_ERROR_NOT_SUPPORTED ? "Not Supported" : rc == NVML_ERROR_GPU_IS_LOST ? "GPU is lost" : "Unknown Error";
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    calls++;
    *count = (unsigned int)gpu_count;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    calls++;
    if (index >= (unsigned int)gpu_count)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *device = (nvmlDevice_t)&gpus[index];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    snprintf(uuid, length, "%s", dev(device)->uuid);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    struct gpu *d = dev(device);
    nvmlReturn_t rc = check(d, MEM_USED);
    if (rc == NVML_SUCCESS) {
        memory->used = d->value[MEM_USED];
        memory->total = d->value[MEM_TOTAL];
        memory->free = memory->total - memory->used;
    }
    return rc;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *u)
{
    struct gpu *d = dev(device);
    nvmlReturn_t rc = check(d, UTIL_GPU);
    if (rc == NVML_SUCCESS) {
        u->gpu = (unsigned int)d->value[UTIL_GPU];
        u->memory = (unsigned int)d->value[UTIL_MEM];
    }
    return rc;
}

#define SIMPLE_GETTER(name, index, type)                                 \
    EXPORT nvmlReturn_t name(nvmlDevice_t device, type *out)            \
    {                                                                    \
        struct gpu *d = dev(device);                                     \
        nvmlReturn_t rc = check(d, index);                               \
        if (rc == NVML_SUCCESS)                                          \
            *out = (type)d->value[index];                                \
        return rc;                                                       \
    }

SIMPLE_GETTER(nvmlDeviceGetPowerUsage, POWER, unsigned int)
SIMPLE_GETTER(nvmlDeviceGetTotalEnergyConsumption, ENERGY, unsigned long long)
#ifdef FAKE_OLD_DRIVER
SIMPLE_GETTER(nvmlDeviceGetCurrentClocksThrottleReasons, REASONS, unsigned long long)
#else
SIMPLE_GETTER(nvmlDeviceGetCurrentClocksEventReasons, REASONS, unsigned long long)
SIMPLE_GETTER(nvmlDeviceGetCurrentClocksThrottleReasons, REASONS, unsigned long long)
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *t)
{
    struct gpu *d = dev(device);
    nvmlReturn_t rc = sensor == NVML_TEMPERATURE_GPU ? check(d, TEMP) : 2;
    if (rc == NVML_SUCCESS)
        *t = (unsigned int)d->value[TEMP];
    return rc;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *mhz)
{
    struct gpu *d = dev(device);
    int m = type == NVML_CLOCK_SM ? CLK_SM : type == NVML_CLOCK_MEM ? CLK_MEM : -1;
    nvmlReturn_t rc = m < 0 ? 2 : check(d, m);
    if (rc == NVML_SUCCESS)
        *mhz = (unsigned int)d->value[m];
    return rc;
}

EXPORT nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t device, int policy,
                                                 nvmlViolationTime_t *v)
{
    struct gpu *d = dev(device);
    if (policy < 0 || policy > 5)
        return 2;
    nvmlReturn_t rc = check(d, VIOL0 + policy);
    if (rc == NVML_SUCCESS) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        v->referenceTime = (unsigned long long)now.tv_sec * 1000000 + (unsigned long long)now.tv_nsec / 1000;
        v->violationTime = d->value[VIOL0 + policy];
    }
    return rc;
}

static nvmlReturn_t processes(nvmlDevice_t device, unsigned int *count, void *infos, size_t size)
{
    struct gpu *d = dev(device);
    if (d->lost)
        return NVML_ERROR_GPU_IS_LOST;
    if (*count < (unsigned int)d->nprocs || (infos == NULL && d->nprocs > 0)) {
        *count = (unsigned int)d->nprocs;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (int i = 0; i < d->nprocs; i++) {
        char *at = (char *)infos + (size_t)i * size;
        memset(at, 0xff, size); /* MIG instance IDs: 0xFFFFFFFF when MIG is off */
        if (size == sizeof(nvmlProcessInfo_v1_t)) {
            nvmlProcessInfo_v1_t *p = (nvmlProcessInfo_v1_t *)at;
            p->pid = d->proc_pid[i];
            p->usedGpuMemory = d->proc_mem[i];
        } else {
            nvmlProcessInfo_v2_t *p = (nvmlProcessInfo_v2_t *)at;
            p->pid = d->proc_pid[i];
            p->usedGpuMemory = d->proc_mem[i];
        }
    }
    *count = (unsigned int)d->nprocs;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int *c, void *p)
{
    return processes(d, c, p, sizeof(nvmlProcessInfo_v1_t));
}

#ifndef FAKE_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int *c, void *p)
{
    return processes(d, c, p, sizeof(nvmlProcessInfo_v2_t));
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *c, void *p)
{
    return processes(d, c, p, sizeof(nvmlProcessInfo_v2_t));
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int n, nvmlFieldValue_t *values)
{
    struct gpu *d = dev(device);
    if (!field_values_ok)
        return NVML_ERROR_NOT_SUPPORTED;
    for (int i = 0; i < n; i++) {
        unsigned int id = values[i].fieldId;
        int m = id == NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION ? ENERGY
                : (id >= 74 && id <= 79) ? VIOL0 + (int)(id - 74) : -1;
        values[i].nvmlReturn = m < 0 ? NVML_ERROR_NOT_SUPPORTED : check(d, m);
        values[i].valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
        if (values[i].nvmlReturn == NVML_SUCCESS)
            values[i].value.ullVal = d->value[m];
    }
    return NVML_SUCCESS;
}

/* One new sample per call, of the current power or utilisation, stamped now. */
EXPORT nvmlReturn_t nvmlDeviceGetSamples(nvmlDevice_t device, int type, unsigned long long last_seen,
                                         int *value_type, unsigned int *count, nvmlSample_t *samples)
{
    struct gpu *d = dev(device);
    struct timespec now;
    (void)last_seen;
    if (d->lost)
        return NVML_ERROR_GPU_IS_LOST;
    if (type != NVML_TOTAL_POWER_SAMPLES && type != NVML_GPU_UTILIZATION_SAMPLES)
        return NVML_ERROR_NOT_SUPPORTED;
    clock_gettime(CLOCK_REALTIME, &now);
    *value_type = NVML_VALUE_TYPE_UNSIGNED_INT;
    if (samples == NULL || *count < 1) {
        *count = 1;
        return NVML_SUCCESS;
    }
    samples[0].timeStamp = (unsigned long long)now.tv_sec * 1000000 + (unsigned long long)now.tv_nsec / 1000;
    samples[0].sampleValue.uiVal = (unsigned int)d->value[type == NVML_TOTAL_POWER_SAMPLES ? POWER : UTIL_GPU];
    *count = 1;
    return NVML_SUCCESS;
}
#endif
