/* The calling process's own CPU time and peak RSS, from clock_gettime and getrusage:
 * ns-precise where /proc/self/stat counts clock ticks, and no file to read or parse. */
#ifndef PCG_PROCESS_CLOCK_H
#define PCG_PROCESS_CLOCK_H

#include <stdint.h>

#define PCG_CLOCK_NO_COLUMN UINT32_MAX

/* Row columns to fill (PCG_CLOCK_NO_COLUMN: not read). */
typedef struct pcg_process_clock {
    uint32_t cpu_usec;     /* CLOCK_PROCESS_CPUTIME_ID: every thread, user + system */
    uint32_t utime_usec;   /* getrusage(RUSAGE_SELF).ru_utime */
    uint32_t stime_usec;   /* getrusage(RUSAGE_SELF).ru_stime */
    uint32_t max_rss_bytes; /* getrusage(RUSAGE_SELF).ru_maxrss (kB on Linux) */
} pcg_process_clock;

/* Returns 0 after writing the bound values into row, or -errno of the failed call (its
 * columns then hold PCG_MISSING). */
int pcg_process_clock_read(const pcg_process_clock *c, int64_t *row);

#endif
