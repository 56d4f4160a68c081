/* Parser for /proc/<pid>/stat. */
#ifndef PCG_PARSE_PID_STAT_H
#define PCG_PARSE_PID_STAT_H

#include "pcg_value.h"

/* Returns 0 and fills out[i] with field fields[i] (numbered from 1 as in proc(5), each > 3)
 * as an unsigned number (PCG_VAL_MISSING past the last field), or -PCG_EPARSE. */
int pcg_parse_pid_stat(const char *buf, size_t len, const uint32_t *fields, size_t nfields,
                       pcg_value *out, int *err_line);

#endif
