#include "parse_psi.h"

#include <string.h>

/* Returns a pointer past the n-byte label at p, or NULL. */
static const char *expect_n(const char *p, const char *end, const char *label, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, label, n) != 0)
        return NULL;
    return p + n;
}

#define expect(p, end, literal) expect_n((p), (end), (literal), sizeof(literal) - 1)

/* Returns a pointer past a "<digits>.<digits>" average at p, or NULL. */
static const char *scan_average(const char *p, const char *end)
{
    uint64_t ignored;
    p = pcg_scan_u64(p, end, &ignored);
    if (p == NULL || p == end || *p != '.')
        return NULL;
    return pcg_scan_u64(p + 1, end, &ignored);
}

/* Returns true when [p, eol) is "avg10=A avg60=A avg300=A total=N", storing N. */
static bool scan_fields(const char *p, const char *eol, pcg_value *total)
{
    if ((p = expect(p, eol, "avg10=")) == NULL || (p = scan_average(p, eol)) == NULL ||
        (p = expect(p, eol, " avg60=")) == NULL || (p = scan_average(p, eol)) == NULL ||
        (p = expect(p, eol, " avg300=")) == NULL || (p = scan_average(p, eol)) == NULL)
        return false;
    if ((p = expect(p, eol, " total=")) == NULL)
        return false;
    if (pcg_scan_u64(p, eol, &total->number) != eol)
        return false;
    total->kind = PCG_VAL_NUMBER;
    return true;
}

/* Returns 0 and fills the "total=" stall times in microseconds of the "some" and "full"
 * lines (a line that is absent is PCG_VAL_MISSING), or -PCG_EPARSE with *err_line.
 * Format: Documentation/accounting/psi.rst; "full" for cpu since Linux 5.13. */
int pcg_parse_psi(const char *buf, size_t len, pcg_value *some_total, pcg_value *full_total,
                  int *err_line)
{
    const char *p = buf, *end = buf + len;
    some_total->kind = full_total->kind = PCG_VAL_MISSING;
    for (int line = 1; p < end; line++) {
        const char *eol = pcg_line_end(p, end), *fields;
        pcg_value *target;
        if ((fields = expect(p, eol, "some ")) != NULL)
            target = some_total;
        else if ((fields = expect(p, eol, "full ")) != NULL)
            target = full_total;
        else
            fields = NULL, target = NULL;
        if (target == NULL || target->kind != PCG_VAL_MISSING || !scan_fields(fields, eol, target)) {
            some_total->kind = full_total->kind = PCG_VAL_MISSING;
            *err_line = line;
            return -PCG_EPARSE;
        }
        p = eol + 1;
    }
    return 0;
}
