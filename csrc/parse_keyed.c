#include "parse_keyed.h"

#include <string.h>

/* One line split into key and value. */
typedef struct keyed_line {
    const char *key, *key_end;
    const char *value, *end;
} keyed_line;

/* Returns true when [p, eol) has the style's "key<sep>value" shape, filling *kl. */
static bool split_line(const char *p, const char *eol, enum pcg_keyed_style style, keyed_line *kl)
{
    const char *sep = memchr(p, style == PCG_KEYED_FLAT ? ' ' : ':', (size_t)(eol - p));
    if (sep == NULL || sep == p)
        return false;
    kl->key = p;
    kl->key_end = sep;
    kl->value = sep + 1;
    kl->end = eol;
    if (style == PCG_KEYED_COLON)
        while (kl->value < eol && (*kl->value == ' ' || *kl->value == '\t'))
            kl->value++;
    return true;
}

/* Returns true when the line's value is a whole u64 (COLON: optionally followed by " kB"). */
static bool scan_line_value(const keyed_line *kl, enum pcg_keyed_style style, pcg_value *out)
{
    const char *p = pcg_scan_u64(kl->value, kl->end, &out->number);
    if (p == NULL)
        return false;
    if (style == PCG_KEYED_COLON && kl->end - p == 3 && memcmp(p, " kB", 3) == 0) {
        if (out->number > UINT64_MAX / 1024)
            return false;
        out->number *= 1024;
        p += 3;
    }
    if (p != kl->end)
        return false;
    out->kind = PCG_VAL_NUMBER;
    return true;
}

static bool key_is(const pcg_key *k, const keyed_line *kl)
{
    return (size_t)(kl->key_end - kl->key) == k->len && memcmp(kl->key, k->name, k->len) == 0;
}

/* Keeps keys sorted by the line they were seen on; absent keys go last. */
static void sort_keys_by_line(pcg_key *keys, size_t nkeys)
{
    for (size_t i = 1; i < nkeys; i++) {
        pcg_key k = keys[i];
        size_t j = i;
        while (j > 0 && keys[j - 1].line > k.line) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = k;
    }
}

/* Returns 0 after finding keys that were not where the last parse saw them: an exact key
 * comparison against every line, first occurrence wins. The content was validated already. */
static int rescan(const char *buf, size_t len, enum pcg_keyed_style style, pcg_key *keys,
                  size_t nkeys, pcg_value *out, int *err_line)
{
    const char *p = buf, *end = buf + len;
    for (size_t k = 0; k < nkeys; k++)
        if (out[keys[k].slot].kind == PCG_VAL_MISSING)
            keys[k].line = PCG_NO_LINE;
    for (uint32_t line = 0; p < end; line++) {
        const char *eol = pcg_line_end(p, end);
        keyed_line kl;
        bool has_key = split_line(p, eol, style, &kl);
        for (size_t k = 0; has_key && k < nkeys; k++) {
            if (keys[k].line != PCG_NO_LINE || !key_is(&keys[k], &kl))
                continue;
            if (!scan_line_value(&kl, style, &out[keys[k].slot])) {
                *err_line = (int)line + 1;
                return -PCG_EPARSE;
            }
            keys[k].line = line;
        }
        p = eol + 1;
    }
    sort_keys_by_line(keys, nkeys);
    return 0;
}

/* Returns 0 and fills out[keys[i].slot] for each wanted key (PCG_VAL_MISSING when absent),
 * or -PCG_EPARSE with *err_line (1-based). May reorder keys[] and update their lines. */
int pcg_parse_keyed(const char *buf, size_t len, enum pcg_keyed_style style, pcg_key *keys,
                    size_t nkeys, pcg_value *out, int *err_line)
{
    const char *p = buf, *end = buf + len;
    size_t next = 0, found = 0;

    for (size_t k = 0; k < nkeys; k++)
        out[keys[k].slot].kind = PCG_VAL_MISSING;

    for (uint32_t line = 0; p < end; line++) {
        const char *eol = pcg_line_end(p, end);
        keyed_line kl;
        pcg_value scratch;
        if (!split_line(p, eol, style, &kl)) {
            /* A wanted value above this line may be bad too: report the first bad line. */
            if (rescan(buf, (size_t)(p - buf), style, keys, nkeys, out, err_line) == 0)
                *err_line = (int)line + 1;
            return -PCG_EPARSE;
        }
        while (next < nkeys && keys[next].line < line)
            next++; /* a key expected earlier was not there; rescan finds it */
        if (next < nkeys && keys[next].line == line && key_is(&keys[next], &kl)) {
            if (!scan_line_value(&kl, style, &out[keys[next].slot])) {
                *err_line = (int)line + 1;
                return -PCG_EPARSE;
            }
            next++;
            found++;
        } else if (style == PCG_KEYED_FLAT && !scan_line_value(&kl, style, &scratch)) {
            *err_line = (int)line + 1;
            return -PCG_EPARSE;
        }
        p = eol + 1;
    }
    if (found == nkeys)
        return 0;
    return rescan(buf, len, style, keys, nkeys, out, err_line);
}
