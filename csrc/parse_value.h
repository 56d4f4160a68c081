/* Parsers for single-value files ("123", "max") and cpu.max ("max 100000"). */
#ifndef PCG_PARSE_VALUE_H
#define PCG_PARSE_VALUE_H

#include "pcg_value.h"

/* Accept "-1" as unlimited, as v1's cpu.cfs_quota_us writes it. */
#define PCG_VALUE_MINUS_ONE_IS_MAX 1u

/* Returns 0 and fills *out from "<u64>\n" or "max\n"; -PCG_EPARSE (line 1) otherwise. */
int pcg_parse_value(const char *buf, size_t len, unsigned flags, pcg_value *out, int *err_line);

/* Returns 0 and fills quota ("max" or u64) and period from cgroup v2 cpu.max; -PCG_EPARSE otherwise. */
int pcg_parse_cpu_max(const char *buf, size_t len, pcg_value *quota, pcg_value *period, int *err_line);

#endif
