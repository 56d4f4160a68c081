/* Parser for keyed files: flat "key value" (memory.stat, cpu.stat, memory.events,
 * cpuacct.stat) and colon "Key:   value kB" (/proc/meminfo, /proc/self/status). */
#ifndef PCG_PARSE_KEYED_H
#define PCG_PARSE_KEYED_H

#include "pcg_value.h"

#define PCG_NO_LINE UINT32_MAX

enum pcg_keyed_style {
    PCG_KEYED_FLAT = 0,  /* every line is "key u64" */
    PCG_KEYED_COLON = 1, /* every line is "Key:" then text; wanted values are "u64" or "u64 kB" */
};

/* A wanted key. The parser keeps an array of these sorted by line, so a file whose
 * layout is unchanged is parsed in one positional pass that still compares each key. */
typedef struct pcg_key {
    const char *name;
    size_t len;
    uint32_t slot; /* index of this key's value in the output array */
    uint32_t line; /* 0-based line where the key was last seen, or PCG_NO_LINE */
} pcg_key;

/* Returns 0 and fills out[keys[i].slot] for each wanted key (PCG_VAL_MISSING when absent),
 * or -PCG_EPARSE with *err_line (1-based). May reorder keys[] and update their lines. */
int pcg_parse_keyed(const char *buf, size_t len, enum pcg_keyed_style style, pcg_key *keys,
                    size_t nkeys, pcg_value *out, int *err_line);

#endif
