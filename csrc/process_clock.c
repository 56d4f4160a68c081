#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_PROCESS_CPUTIME_ID */
#include "process_clock.h"

#include <errno.h>
#include <sys/resource.h>
#include <time.h>

#define MISSING INT64_MIN

/* Returns 0 after writing the bound values into row, or -errno of the failed call. */
int pcg_process_clock_read(const pcg_process_clock *c, int64_t *row)
{
    int rc = 0;
    if (c->cpu_usec != PCG_CLOCK_NO_COLUMN) {
        struct timespec ts;
        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
            row[c->cpu_usec] = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        } else {
            row[c->cpu_usec] = MISSING;
            rc = -errno;
        }
    }
    if (c->utime_usec == PCG_CLOCK_NO_COLUMN && c->stime_usec == PCG_CLOCK_NO_COLUMN &&
        c->max_rss_bytes == PCG_CLOCK_NO_COLUMN)
        return rc;
    struct rusage ru;
    int ok = getrusage(RUSAGE_SELF, &ru) == 0;
    if (!ok)
        rc = -errno;
    if (c->utime_usec != PCG_CLOCK_NO_COLUMN)
        row[c->utime_usec] = ok ? (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec
                                : MISSING;
    if (c->stime_usec != PCG_CLOCK_NO_COLUMN)
        row[c->stime_usec] = ok ? (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec
                                : MISSING;
    if (c->max_rss_bytes != PCG_CLOCK_NO_COLUMN)
        row[c->max_rss_bytes] = ok ? (int64_t)ru.ru_maxrss * 1024 : MISSING;
    return rc;
}
