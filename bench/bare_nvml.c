/* The floor of a GPU sample group: the same NVML calls pycgroup's GPU group makes, in
 * a C loop, with nothing done to the results. Built and loaded by bench/test_bench_gpu.py. */
#include <dlfcn.h>
#include <stddef.h>

#include "nvml_abi.h"

static nvmlReturn_t (*memory_info)(nvmlDevice_t, nvmlMemory_t *);
static nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t *);
static nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned int *);
static nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int *);
static nvmlReturn_t (*clock_info)(nvmlDevice_t, int, unsigned int *);
static nvmlReturn_t (*event_reasons)(nvmlDevice_t, unsigned long long *);
static nvmlReturn_t (*field_values)(nvmlDevice_t, int, nvmlFieldValue_t *);
static nvmlReturn_t (*processes)(nvmlDevice_t, unsigned int *, void *);
static nvmlReturn_t (*samples)(nvmlDevice_t, int, unsigned long long, int *, unsigned int *,
                               nvmlSample_t *);
static nvmlDevice_t device;

/* Returns 0 after resolving the calls in library path and taking device index's handle. */
int bare_open(const char *path, unsigned int index)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    nvmlReturn_t (*init)(void), (*handle)(unsigned int, nvmlDevice_t *);
    if (lib == NULL)
        return -1;
    *(void **)&init = dlsym(lib, "nvmlInit_v2");
    *(void **)&handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&memory_info = dlsym(lib, "nvmlDeviceGetMemoryInfo");
    *(void **)&utilization = dlsym(lib, "nvmlDeviceGetUtilizationRates");
    *(void **)&power_usage = dlsym(lib, "nvmlDeviceGetPowerUsage");
    *(void **)&temperature = dlsym(lib, "nvmlDeviceGetTemperature");
    *(void **)&clock_info = dlsym(lib, "nvmlDeviceGetClockInfo");
    *(void **)&event_reasons = dlsym(lib, "nvmlDeviceGetCurrentClocksEventReasons");
    *(void **)&field_values = dlsym(lib, "nvmlDeviceGetFieldValues");
    *(void **)&processes = dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3");
    *(void **)&samples = dlsym(lib, "nvmlDeviceGetSamples");
    if (!init || !handle || init() != NVML_SUCCESS || handle(index, &device) != NVML_SUCCESS)
        return -1;
    return 0;
}

/* Returns 0 after making every call of one GPU sample group, iterations times. */
int bare_run(int iterations)
{
    static nvmlProcessInfo_v2_t procs[256];
    nvmlSample_t buf[128];
    for (int i = 0; i < iterations; i++) {
        nvmlMemory_t m;
        nvmlUtilization_t u;
        unsigned int v, count = 256;
        unsigned long long r;
        int type;
        nvmlFieldValue_t f[7] = {{83, 0, 0, 0, 0, 0, {0}}, {74, 0, 0, 0, 0, 0, {0}},
                                 {75, 0, 0, 0, 0, 0, {0}}, {76, 0, 0, 0, 0, 0, {0}},
                                 {77, 0, 0, 0, 0, 0, {0}}, {78, 0, 0, 0, 0, 0, {0}},
                                 {79, 0, 0, 0, 0, 0, {0}}};
        memory_info(device, &m);
        utilization(device, &u);
        power_usage(device, &v);
        temperature(device, NVML_TEMPERATURE_GPU, &v);
        clock_info(device, NVML_CLOCK_SM, &v);
        clock_info(device, NVML_CLOCK_MEM, &v);
        event_reasons(device, &r);
        field_values(device, 7, f);
        processes(device, &count, procs);
        for (int t = 0; t < 2; t++) {
            unsigned int n = 128;
            samples(device, t, 0, &type, &n, buf);
        }
    }
    return 0;
}
