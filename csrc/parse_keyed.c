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
                sort_keys_by_line(keys, nkeys); /* the next parse relies on the order */
                return -PCG_EPARSE;
            }
            keys[k].line = line;
        }
        p = eol + 1;
    }
    sort_keys_by_line(keys, nkeys);
    return 0;
}

/* Returns a mask with bit (length % 64) set for each wanted key's length: a cheap first
 * test of whether a line's key can be a wanted one. */
static uint64_t length_mask(const pcg_key *keys, size_t nkeys)
{
    uint64_t mask = 0;
    for (size_t k = 0; k < nkeys; k++)
        mask |= 1ull << (keys[k].len % 64);
    return mask;
}

/* Returns true when the line's key is a wanted key bound to another line (or to none):
 * the layout changed, or the key is repeated. */
static bool stray_wanted_key(const pcg_key *keys, size_t nkeys, uint64_t mask,
                             const keyed_line *kl, uint32_t line)
{
    if (!(mask & (1ull << ((size_t)(kl->key_end - kl->key) % 64))))
        return false;
    for (size_t k = 0; k < nkeys; k++)
        if (keys[k].line != line && key_is(&keys[k], kl))
            return true;
    return false;
}

/* Returns the result of a fresh parse: every key's remembered line forgotten. */
static int parse_fresh(const char *buf, size_t len, enum pcg_keyed_style style, pcg_key *keys,
                       size_t nkeys, pcg_value *out, int *err_line)
{
    for (size_t k = 0; k < nkeys; k++)
        keys[k].line = PCG_NO_LINE;
    return pcg_parse_keyed(buf, len, style, keys, nkeys, out, err_line);
}

/* Returns 0 and fills out[keys[i].slot] for each wanted key (PCG_VAL_MISSING when absent),
 * or -PCG_EPARSE with *err_line (1-based). May reorder keys[] and update their lines.
 *
 * One rule, whatever the parser remembers: a key's value is the one on its FIRST line.
 * The kernel prints each key of these files once (seq_printf over a fixed table), so a
 * repeated key is not its output; the first line is what a reader scanning from the top,
 * the pure-Python twin included, takes. The warm path (each wanted key where the last
 * parse saw it) is taken only when every wanted key is found on its remembered line and on
 * no other line; anything else is parsed fresh, so warm and fresh always agree (the fuzz
 * in tests/fuzz checks it). */
int pcg_parse_keyed(const char *buf, size_t len, enum pcg_keyed_style style, pcg_key *keys,
                    size_t nkeys, pcg_value *out, int *err_line)
{
    const char *p = buf, *end = buf + len;
    size_t next = 0, found = 0;
    bool warm = nkeys > 0 && keys[0].line != PCG_NO_LINE; /* sorted: bound keys first */
    uint64_t mask = warm ? length_mask(keys, nkeys) : 0;

    for (size_t k = 0; k < nkeys; k++)
        out[keys[k].slot].kind = PCG_VAL_MISSING;

    for (uint32_t line = 0; p < end; line++) {
        const char *eol = pcg_line_end(p, end);
        keyed_line kl;
        pcg_value scratch;
        if (!split_line(p, eol, style, &kl)) {
            if (warm) /* report the first bad line as a fresh parse does */
                return parse_fresh(buf, len, style, keys, nkeys, out, err_line);
            /* A wanted value above this line may be bad too: report the first bad line. */
            if (rescan(buf, (size_t)(p - buf), style, keys, nkeys, out, err_line) == 0)
                *err_line = (int)line + 1;
            return -PCG_EPARSE;
        }
        while (next < nkeys && keys[next].line < line)
            next++; /* a key expected earlier was not there; rescan finds it */
        if (next < nkeys && keys[next].line == line && key_is(&keys[next], &kl)) {
            /* The same key may be wanted twice (in two conversions): fill each. */
            for (; next < nkeys && keys[next].line == line && key_is(&keys[next], &kl); next++) {
                if (!scan_line_value(&kl, style, &out[keys[next].slot])) {
                    *err_line = (int)line + 1;
                    return -PCG_EPARSE;
                }
                found++;
            }
        } else if (warm && stray_wanted_key(keys, nkeys, mask, &kl, line)) {
            return parse_fresh(buf, len, style, keys, nkeys, out, err_line);
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
