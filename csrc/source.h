/* A source: one kernel file opened once and re-read with pread(2), parsed into row columns. */
#ifndef PCG_SOURCE_H
#define PCG_SOURCE_H

#include "parse_keyed.h"
#include "pcg_value.h"

/* The largest content a source accepts: a longer file reads as -EFBIG. No cgroup or proc
 * file comes near this; a file that does is not one of them (or never ends). */
#define PCG_MAX_CONTENT (8u << 20)

/* An open that found something other than a regular file (a FIFO, a device, a
 * directory), which could block or never end. cgroupfs, procfs and sysfs files are
 * regular files. */
#define PCG_ENOTREG EMEDIUMTYPE

/* The longest short read taken as the whole file on the kernel's pseudo file systems. A
 * seq_file prints records into a buffer of at least a page and ends a read early only
 * when its next record does not fit there; a file printed in one go (every cgroup file
 * pycgroup reads, /proc/<pid>/stat and status, /proc/meminfo, PSI) ends it only at EOF.
 * A read that stops before half a page is at EOF either way, unless a multi-record file
 * has a record longer than half a page. */
#define PCG_WHOLE_READ_MAX 2048u

enum pcg_format {
    PCG_FMT_FLAT_KEYED = 0,  /* keys are the file's keys */
    PCG_FMT_COLON_KEYED = 1, /* keys are the file's keys, without ':' */
    PCG_FMT_VALUE = 2,       /* key "" */
    PCG_FMT_QUOTA_V1 = 3,    /* key ""; "-1" means unlimited */
    PCG_FMT_CPU_MAX = 4,     /* keys "quota", "period" */
    PCG_FMT_PSI = 5,         /* keys "some", "full" (their total= in µs) */
    PCG_FMT_PID_STAT = 6,    /* keys are field numbers from proc(5), e.g. "14" */
    PCG_FMT_COUNT
};

/* How one parsed field becomes one int64 row column: value * mul / div, saturated at
 * PCG_VALUE_CEIL; values >= unlimited_at (when > 0) become PCG_UNLIMITED. */
typedef struct pcg_field_spec {
    const char *key;
    int64_t mul, div, unlimited_at;
    uint32_t column;
} pcg_field_spec;

typedef struct pcg_field {
    int64_t mul, div, unlimited_at;
    uint32_t column;
    uint32_t sub; /* which output of a fixed-shape parser (PSI: 0 some, 1 full; pid stat: field) */
} pcg_field;

typedef struct pcg_source {
    int fd;
    enum pcg_format format;
    char *buf;
    size_t cap, len;
    size_t nfields;
    pcg_field *fields;
    pcg_key *keys;     /* keyed formats: one per field, slot = field index */
    uint32_t *stat_fields; /* PCG_FMT_PID_STAT: proc(5) field numbers */
    pcg_value *values; /* parser output, one per field */
    /* A read shorter than asked (and than PCG_WHOLE_READ_MAX) returned the whole file, so
     * no second pread is needed to see EOF. Set at open for files of cgroupfs, procfs and
     * sysfs (see pcg_source_open); false for files of other file systems. */
    bool short_read_is_eof;
    int error;      /* last read's result: 0 or -errno (-PCG_EPARSE for bad content) */
    int error_line; /* with -PCG_EPARSE: the 1-based line */
} pcg_source;

/* Returns 0 after allocating the buffer and binding the fields' keys, with no file open,
 * or -errno (-EINVAL for a key the format cannot have). */
int pcg_source_init(pcg_source *s, enum pcg_format format, const pcg_field_spec *specs,
                    size_t nfields);

/* Returns 0 after opening path and binding the fields' keys, or -errno (-EINVAL for a key
 * the format cannot have, -PCG_ENOTREG for a path that is not a regular file). The open
 * cannot block (O_NONBLOCK). Allocates; the first read sizes the buffer to the content. */
int pcg_source_open(pcg_source *s, const char *path, enum pcg_format format,
                    const pcg_field_spec *specs, size_t nfields);

/* Returns 0 after reading the whole file into s->buf, or -errno; -EOVERFLOW when the
 * content no longer fits the buffer (call pcg_source_fit, then read again); -EFBIG when
 * it is longer than PCG_MAX_CONTENT. */
int pcg_source_fill(pcg_source *s);

/* Returns 0 after copying content into the buffer as if it had been read, or -errno.
 * Allocates: for tests and fuzzing, which parse buffers with no file behind them. */
int pcg_source_set_content(pcg_source *s, const char *content, size_t len);

/* Returns 0 after parsing the buffer into s->values (one per field, unconverted), or
 * -PCG_EPARSE with s->error_line. */
int pcg_source_parse(pcg_source *s);

/* Returns 0 after filling and parsing the file into row[field.column], or -errno; on error
 * the source's columns are PCG_MISSING and s->error/s->error_line say why. */
int pcg_source_read(pcg_source *s, int64_t *row);

/* Returns 0 after reading the file into a buffer twice the size of its content, so that
 * growth between reads is rare; or -errno. Allocates: at open, and after -EOVERFLOW. */
int pcg_source_fit(pcg_source *s);

/* Returns 0 after doubling the buffer, or -ENOMEM (-EFBIG past 2 × PCG_MAX_CONTENT). Not
 * for the read path. */
int pcg_source_grow(pcg_source *s);

/* Closes the file and frees what pcg_source_open allocated; safe to call twice. */
void pcg_source_close(pcg_source *s);

/* Returns the row value of one parsed field under a field's conversion. */
int64_t pcg_convert(const pcg_value *v, const pcg_field *f);

#endif
