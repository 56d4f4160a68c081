#define _GNU_SOURCE /* memrchr */
#include "parse_pid_stat.h"

#include <string.h>

/* Returns 0 and fills out[i] with field fields[i] (numbered from 1 as in proc(5), each > 3)
 * as an unsigned number (PCG_VAL_MISSING past the last field), or -PCG_EPARSE.
 * Format: "pid (comm) state ppid ..." — proc(5), fs/proc/array.c do_task_stat(). */
int pcg_parse_pid_stat(const char *buf, size_t len, const uint32_t *fields, size_t nfields,
                       pcg_value *out, int *err_line)
{
    const char *end = buf + len;
    uint64_t pid;
    *err_line = 1;
    for (size_t i = 0; i < nfields; i++)
        out[i].kind = PCG_VAL_MISSING;
    if (len > 0 && end[-1] == '\n')
        end--;
    if (memchr(buf, '\n', (size_t)(end - buf)) != NULL)
        return -PCG_EPARSE;
    const char *p = pcg_scan_u64(buf, end, &pid);
    /* comm (field 2) may itself hold spaces and parentheses: it ends at the last ')'. */
    const char *paren = memrchr(buf, ')', (size_t)(end - buf));
    if (p == NULL || end - p < 2 || memcmp(p, " (", 2) != 0 || paren == NULL || paren < p + 2)
        return -PCG_EPARSE;

    uint32_t last_wanted = 0;
    for (size_t i = 0; i < nfields; i++)
        last_wanted = fields[i] > last_wanted ? fields[i] : last_wanted;

    /* Fields from 3 on are single tokens separated by one space; those after the last
     * wanted one are not looked at. */
    p = paren + 1;
    for (uint32_t field = 3; p < end && field <= last_wanted; field++) {
        if (*p != ' ')
            return -PCG_EPARSE;
        const char *token = ++p;
        while (p < end && *p != ' ')
            p++;
        if (p == token)
            return -PCG_EPARSE;
        for (size_t i = 0; i < nfields; i++) {
            if (fields[i] != field)
                continue;
            if (pcg_scan_u64(token, p, &out[i].number) != p)
                return -PCG_EPARSE;
            out[i].kind = PCG_VAL_NUMBER;
        }
    }
    *err_line = 0;
    return 0;
}
