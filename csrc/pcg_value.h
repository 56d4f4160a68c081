/* Values as parsed from kernel files, and how they are stored in a row. */
#ifndef PCG_VALUE_H
#define PCG_VALUE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A row slot holds an int64. Two values are reserved as sentinels. */
#define PCG_MISSING INT64_MIN   /* the file or key is absent, or the read failed */
#define PCG_UNLIMITED INT64_MAX /* the kernel wrote "max" (or "-1" for a v1 quota) */
#define PCG_VALUE_CEIL (INT64_MAX - 1) /* larger values saturate here */

/* Content that does not parse is reported as -PCG_EPARSE with a line number. */
#define PCG_EPARSE EBADMSG

enum pcg_value_kind { PCG_VAL_MISSING = 0, PCG_VAL_NUMBER = 1, PCG_VAL_MAX = 2 };

/* One parsed field: a full-range unsigned counter, "max", or nothing. */
typedef struct pcg_value {
    uint64_t number;
    uint8_t kind; /* enum pcg_value_kind */
} pcg_value;

/* Returns a pointer past the decimal digits at [p, end) and stores them in *out,
 * or NULL if there are no digits or the number exceeds 2^64-1. Nineteen digits cannot
 * overflow: only the digits after them are checked. */
static inline const char *pcg_scan_u64(const char *p, const char *end, uint64_t *out)
{
    const char *start = p;
    const char *fast_end = end - p > 19 ? p + 19 : end;
    uint64_t v = 0;
    while (p < fast_end && (unsigned char)(*p - '0') < 10)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == start)
        return NULL;
    while (p < end && (unsigned char)(*p - '0') < 10) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return NULL;
        v = v * 10 + digit;
        p++;
    }
    *out = v;
    return p;
}

/* Returns the end of the line starting at p: the '\n' or end. */
static inline const char *pcg_line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl != NULL ? nl : end;
}

#endif
