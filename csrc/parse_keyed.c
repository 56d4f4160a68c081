#include "parse_keyed.h"

#include <string.h>

/* Returns a mask with bit (length % 64) set for each wanted key's length: the first test
 * of whether a line's key can be a wanted one, before any byte of it is compared. */
static uint64_t length_mask(const pcg_key *keys, size_t nkeys)
{
    uint64_t mask = 0;
    for (size_t k = 0; k < nkeys; k++)
        mask |= 1ull << (keys[k].len % 64);
    return mask;
}

/* Returns true when [key, key + klen) is the wanted key w: same length, same first byte,
 * then the same bytes. */
static inline bool is_key(const pcg_key *w, const char *key, size_t klen)
{
    return w->len == klen && w->name[0] == key[0] && memcmp(w->name, key, klen) == 0;
}

/* Returns a pointer to the first sep or '\n' at or after p, or end. Eight bytes at a time
 * where the byte order allows it: keys are 5 to 30 bytes long. */
static inline const char *find_sep(const char *p, const char *end, char sep)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t seps = ones * (unsigned char)sep, newlines = ones * (unsigned char)'\n';
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t a = w ^ seps, b = w ^ newlines;
        /* flags each zero byte of a or b; the lowest flag is exact (borrows go upwards) */
        uint64_t hit = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (hit != 0)
            return p + __builtin_ctzll(hit) / 8;
        p += 8;
    }
#endif
    while (p < end && *p != sep && *p != '\n')
        p++;
    return p;
}

/* Returns 0 after one pass over "key u64" lines, filling the wanted keys' first lines, or
 * -PCG_EPARSE with *err_line: every line is checked, in order, so the first bad line is
 * the one reported. */
static int parse_flat(const char *buf, size_t len, const pcg_key *keys, size_t nkeys,
                      pcg_value *out, int *err_line)
{
    const char *p = buf, *end = buf + len;
    uint64_t mask = length_mask(keys, nkeys);
    size_t left = nkeys; /* wanted keys not found yet */
    for (int line = 1; p < end; line++) {
        const char *q = find_sep(p, end, ' ');
        uint64_t number;
        const char *eol = (q > p && q < end && *q == ' ') ? pcg_scan_u64(q + 1, end, &number)
                                                           : NULL;
        if (eol == NULL || (eol < end && *eol != '\n')) {
            *err_line = line;
            return -PCG_EPARSE;
        }
        size_t klen = (size_t)(q - p);
        if (left > 0 && (mask & (1ull << (klen % 64))))
            for (size_t k = 0; k < nkeys; k++)
                if (out[keys[k].slot].kind == PCG_VAL_MISSING && is_key(&keys[k], p, klen)) {
                    out[keys[k].slot] = (pcg_value){number, PCG_VAL_NUMBER};
                    left--;
                }
        p = eol < end ? eol + 1 : end;
    }
    return 0;
}

/* Returns true after scanning a "Key:" line's value [p, eol) into *v: blanks, a u64,
 * optionally " kB" (times 1024, which must not overflow), and nothing else. */
static bool scan_colon_value(const char *p, const char *eol, pcg_value *v)
{
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    p = pcg_scan_u64(p, eol, &v->number);
    if (p == NULL)
        return false;
    if (eol - p == 3 && memcmp(p, " kB", 3) == 0) {
        if (v->number > UINT64_MAX / 1024)
            return false;
        v->number *= 1024;
        p += 3;
    }
    v->kind = PCG_VAL_NUMBER;
    return p == eol;
}

/* Returns 0 after one pass over "Key: text" lines, filling the wanted keys' first lines,
 * or -PCG_EPARSE with *err_line: a line without a key and ':' (any line), or a wanted
 * key's first line whose value is not a u64 (other values are free text). */
static int parse_colon(const char *buf, size_t len, const pcg_key *keys, size_t nkeys,
                       pcg_value *out, int *err_line)
{
    const char *p = buf, *end = buf + len;
    uint64_t mask = length_mask(keys, nkeys);
    for (int line = 1; p < end; line++) {
        const char *q = find_sep(p, end, ':');
        if (q == p || q == end || *q != ':') {
            *err_line = line;
            return -PCG_EPARSE;
        }
        const char *eol = pcg_line_end(q, end);
        size_t klen = (size_t)(q - p);
        pcg_value v = {0, PCG_VAL_MISSING}; /* scanned at the first wanted key that matches */
        if (mask & (1ull << (klen % 64)))
            for (size_t k = 0; k < nkeys; k++) {
                if (out[keys[k].slot].kind != PCG_VAL_MISSING || !is_key(&keys[k], p, klen))
                    continue;
                if (v.kind == PCG_VAL_MISSING && !scan_colon_value(q + 1, eol, &v)) {
                    *err_line = line;
                    return -PCG_EPARSE;
                }
                out[keys[k].slot] = v;
            }
        p = eol < end ? eol + 1 : end;
    }
    return 0;
}

/* Returns 0 and fills out[keys[i].slot] for each wanted key (PCG_VAL_MISSING when absent),
 * or -PCG_EPARSE with *err_line (1-based).
 *
 * A key's value is the one on its FIRST line. The kernel prints each key of these files
 * once (seq_printf over a fixed table), so a repeated key is not its output; the first
 * line is what a reader scanning from the top, the pure-Python twin included, takes. The
 * parse keeps no state between calls: one pass over the buffer for all wanted keys, where
 * a line's key is compared only when its length is a wanted one (a bit in a mask), then
 * by its first byte, then whole. */
int pcg_parse_keyed(const char *buf, size_t len, enum pcg_keyed_style style,
                    const pcg_key *keys, size_t nkeys, pcg_value *out, int *err_line)
{
    for (size_t k = 0; k < nkeys; k++)
        out[keys[k].slot].kind = PCG_VAL_MISSING;
    return style == PCG_KEYED_FLAT ? parse_flat(buf, len, keys, nkeys, out, err_line)
                                   : parse_colon(buf, len, keys, nkeys, out, err_line);
}
