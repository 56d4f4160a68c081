/* The part of NVIDIA's NVML ABI that pycgroup uses, declared here so that nothing is
 * linked at build time: libnvidia-ml.so.1 is opened with dlopen at run time.
 * Layouts and numbers follow nvml.h (NVML API reference, "Device Queries"). */
#ifndef PCG_NVML_ABI_H
#define PCG_NVML_ABI_H

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
};

enum { NVML_TEMPERATURE_GPU = 0 };
enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };
enum { NVML_TOTAL_POWER_SAMPLES = 0, NVML_GPU_UTILIZATION_SAMPLES = 1 };
enum {
    NVML_VALUE_TYPE_DOUBLE = 0,
    NVML_VALUE_TYPE_UNSIGNED_INT = 1,
    NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
    NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
};
/* nvmlPerfPolicyType_t for nvmlDeviceGetViolationStatus, and the matching field IDs. */
enum { NVML_PERF_POLICY_POWER = 0, NVML_PERF_POLICY_COUNT_USED = 6 };
#define NVML_FI_DEV_PERF_POLICY_POWER 74 /* ..._THERMAL 75 ... _RELIABILITY 79 */
#define NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION 83

typedef struct nvmlMemory_st {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct nvmlViolationTime_st {
    unsigned long long referenceTime; /* µs */
    unsigned long long violationTime; /* ns */
} nvmlViolationTime_t;

typedef union nvmlValue_st {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
} nvmlValue_t;

typedef struct nvmlFieldValue_st {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct nvmlSample_st {
    unsigned long long timeStamp; /* CPU time, µs since the epoch */
    nvmlValue_t sampleValue;
} nvmlSample_t;

/* nvmlDeviceGetComputeRunningProcesses (v1) fills these; _v2 and _v3 the second kind. */
typedef struct nvmlProcessInfo_v1_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct nvmlProcessInfo_v2_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_v2_t;

#endif
