/* Parser for keyed files: flat "key value" (memory.stat, cpu.stat, memory.events,
 * cpuacct.stat) and colon "Key:   value kB" (/proc/meminfo, /proc/self/status). */
#ifndef PCG_PARSE_KEYED_H
#define PCG_PARSE_KEYED_H

#include "pcg_value.h"

enum pcg_keyed_style {
    PCG_KEYED_FLAT = 0,  /* every line is "key u64" */
    PCG_KEYED_COLON = 1, /* every line is "Key:" then text; wanted values are "u64" or "u64 kB" */
};

/* A wanted key. The same name may be wanted twice (in two conversions): each is filled. */
typedef struct pcg_key {
    const char *name;
    size_t len;
    uint32_t slot; /* index of this key's value in the output array */
} pcg_key;

/* Returns 0 and fills out[keys[i].slot] for each wanted key (PCG_VAL_MISSING when absent),
 * or -PCG_EPARSE with *err_line (1-based): one pass over buf, whatever the layout. */
int pcg_parse_keyed(const char *buf, size_t len, enum pcg_keyed_style style,
                    const pcg_key *keys, size_t nkeys, pcg_value *out, int *err_line);

#endif
