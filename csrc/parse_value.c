#include "parse_value.h"

#include <string.h>

/* Returns the end of the content before an optional final '\n', or NULL when that leaves
 * nothing. Callers accept the content only when their tokens span [buf, end) exactly, and
 * no token holds a '\n': content of more than one line never parses. */
static const char *single_line_end(const char *buf, size_t len)
{
    const char *end = buf + len;
    if (len > 0 && end[-1] == '\n')
        end--;
    return end == buf ? NULL : end;
}

/* Returns a pointer past a "max" or u64 token at p, filling *out, or NULL. */
static const char *scan_max_or_u64(const char *p, const char *end, pcg_value *out)
{
    if (end - p >= 3 && memcmp(p, "max", 3) == 0) {
        out->kind = PCG_VAL_MAX;
        out->number = 0;
        return p + 3;
    }
    const char *q = pcg_scan_u64(p, end, &out->number);
    if (q != NULL)
        out->kind = PCG_VAL_NUMBER;
    return q;
}

/* Returns 0 and fills *out from "<u64>\n" or "max\n"; -PCG_EPARSE (line 1) otherwise. */
int pcg_parse_value(const char *buf, size_t len, unsigned flags, pcg_value *out, int *err_line)
{
    const char *end = single_line_end(buf, len);
    if (end != NULL) {
        if ((flags & PCG_VALUE_MINUS_ONE_IS_MAX) && end - buf == 2 && memcmp(buf, "-1", 2) == 0) {
            out->kind = PCG_VAL_MAX;
            out->number = 0;
            return 0;
        }
        if (scan_max_or_u64(buf, end, out) == end)
            return 0;
    }
    out->kind = PCG_VAL_MISSING;
    *err_line = 1;
    return -PCG_EPARSE;
}

/* Returns 0 and fills quota ("max" or u64) and period from cgroup v2 cpu.max; -PCG_EPARSE otherwise.
 * Format: "$MAX $PERIOD" (Documentation/admin-guide/cgroup-v2.rst, "cpu.max"). */
int pcg_parse_cpu_max(const char *buf, size_t len, pcg_value *quota, pcg_value *period, int *err_line)
{
    const char *end = single_line_end(buf, len);
    if (end != NULL) {
        const char *p = scan_max_or_u64(buf, end, quota);
        if (p != NULL && p < end && *p == ' ') {
            p = pcg_scan_u64(p + 1, end, &period->number);
            if (p == end) {
                period->kind = PCG_VAL_NUMBER;
                return 0;
            }
        }
    }
    quota->kind = period->kind = PCG_VAL_MISSING;
    *err_line = 1;
    return -PCG_EPARSE;
}
