#define _POSIX_C_SOURCE 200809L /* pread, strdup */
#include "source.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <string.h>
#include <unistd.h>

#include "parse_pid_stat.h"
#include "parse_psi.h"
#include "parse_value.h"

/* statfs(2) f_type of the file systems whose files the kernel prints on each read. */
#define PROC_MAGIC 0x9fa0
#define SYSFS_MAGIC 0x62656572
#define CGROUP_MAGIC 0x27e0eb
#define CGROUP2_MAGIC 0x63677270

#define INITIAL_CAPACITY 4096
#define MAX_CAPACITY (2 * PCG_MAX_CONTENT) /* fit keeps twice the content */

/* Returns the sub-output index a fixed-shape format gives key, or -1 if it has none. */
static long fixed_key_index(enum pcg_format format, const char *key)
{
    switch (format) {
    case PCG_FMT_VALUE:
    case PCG_FMT_QUOTA_V1:
        return key[0] == '\0' ? 0 : -1;
    case PCG_FMT_CPU_MAX:
        return strcmp(key, "quota") == 0 ? 0 : strcmp(key, "period") == 0 ? 1 : -1;
    case PCG_FMT_PSI:
        return strcmp(key, "some") == 0 ? 0 : strcmp(key, "full") == 0 ? 1 : -1;
    case PCG_FMT_PID_STAT: {
        char *end;
        long field = strtol(key, &end, 10);
        return (*key >= '0' && *key <= '9' && *end == '\0' && field > 3 && field < 1000) ? field
                                                                                         : -1;
    }
    default:
        return -1;
    }
}

/* Returns the line style of a keyed format. */
static enum pcg_keyed_style keyed_style(enum pcg_format format)
{
    return format == PCG_FMT_FLAT_KEYED ? PCG_KEYED_FLAT : PCG_KEYED_COLON;
}

/* Returns true when key can name a line of a keyed file of this style. */
static bool valid_keyed_key(enum pcg_format format, const char *key)
{
    char sep = format == PCG_FMT_FLAT_KEYED ? ' ' : ':';
    return key[0] != '\0' && strchr(key, '\n') == NULL && strchr(key, sep) == NULL;
}

/* Returns 0 after allocating and filling the per-field tables, or -errno. */
static int bind_fields(pcg_source *s, const pcg_field_spec *specs, size_t nfields)
{
    bool keyed = s->format == PCG_FMT_FLAT_KEYED || s->format == PCG_FMT_COLON_KEYED;
    s->fields = calloc(nfields ? nfields : 1, sizeof *s->fields);
    s->values = calloc(nfields ? nfields : 1, sizeof *s->values);
    s->stat_fields = calloc(nfields ? nfields : 1, sizeof *s->stat_fields);
    s->keys = calloc(nfields ? nfields : 1, sizeof *s->keys);
    if (!s->fields || !s->values || !s->stat_fields || !s->keys)
        return -ENOMEM;
    s->nfields = nfields;
    for (size_t i = 0; i < nfields; i++) {
        const pcg_field_spec *spec = &specs[i];
        long sub = 0;
        if (spec->key == NULL || spec->mul < 1 || spec->div < 1 || spec->unlimited_at < 0)
            return -EINVAL;
        if (keyed) {
            if (!valid_keyed_key(s->format, spec->key))
                return -EINVAL;
            s->keys[i].name = strdup(spec->key);
            if (s->keys[i].name == NULL)
                return -ENOMEM;
            s->keys[i].len = strlen(spec->key);
            s->keys[i].slot = (uint32_t)i;
        } else if ((sub = fixed_key_index(s->format, spec->key)) < 0) {
            return -EINVAL;
        }
        s->stat_fields[i] = (uint32_t)sub;
        s->fields[i] = (pcg_field){spec->mul, spec->div, spec->unlimited_at, spec->column,
                                   (uint32_t)sub};
    }
    return 0;
}

/* Returns true when fd is on cgroupfs (v1 or v2), procfs or sysfs: a file there is
 * printed by the kernel on each read, so a short read is its end (PCG_WHOLE_READ_MAX). */
static bool on_kernel_fs(int fd)
{
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0)
        return false;
    switch ((unsigned long)fs.f_type) {
    case PROC_MAGIC:
    case SYSFS_MAGIC:
    case CGROUP_MAGIC:
    case CGROUP2_MAGIC:
        return true;
    default:
        return false;
    }
}

/* Returns 0 after allocating the buffer and binding the fields' keys, with no file open,
 * or -errno (-EINVAL for a key the format cannot have). */
int pcg_source_init(pcg_source *s, enum pcg_format format, const pcg_field_spec *specs,
                    size_t nfields)
{
    int rc;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if ((unsigned)format >= PCG_FMT_COUNT)
        return -EINVAL;
    s->format = format;
    if ((rc = bind_fields(s, specs, nfields)) != 0)
        goto fail;
    if ((s->buf = malloc(INITIAL_CAPACITY)) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    s->cap = INITIAL_CAPACITY;
    return 0;
fail:
    pcg_source_close(s);
    return rc;
}

/* Returns 0 after opening path and binding the fields' keys, or -errno (-EINVAL for a key
 * the format cannot have). Allocates; the first read sizes the buffer to the content. */
int pcg_source_open(pcg_source *s, const char *path, enum pcg_format format,
                    const pcg_field_spec *specs, size_t nfields)
{
    int rc = pcg_source_init(s, format, specs, nfields);
    if (rc != 0)
        return rc;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; regular files
     * ignore the flag. What is not a regular file is refused before it is ever read. */
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (s->fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -PCG_ENOTREG;
        goto fail;
    }
    s->short_read_is_eof = on_kernel_fs(s->fd);
    if ((rc = pcg_source_fit(s)) != 0)
        goto fail;
    return 0;
fail:
    pcg_source_close(s);
    return rc;
}

/* Returns 0 after reading the file into a buffer twice the size of its content, so that
 * growth between reads is rare; or -errno. Allocates: at open, and after -EOVERFLOW. */
int pcg_source_fit(pcg_source *s)
{
    int rc;
    while ((rc = pcg_source_fill(s)) == -EOVERFLOW || (rc == 0 && s->len > s->cap / 2))
        if ((rc = pcg_source_grow(s)) != 0)
            return rc;
    return rc;
}

/* Returns 0 after copying content into the buffer as if it had been read, or -errno.
 * Allocates: for tests and fuzzing, which parse buffers with no file behind them. */
int pcg_source_set_content(pcg_source *s, const char *content, size_t len)
{
    int rc;
    while (s->cap < len)
        if ((rc = pcg_source_grow(s)) != 0)
            return rc;
    memcpy(s->buf, content, len);
    s->len = len;
    return 0;
}

/* Returns 0 after reading the whole file into s->buf, or -errno; -EOVERFLOW when the
 * content no longer fits the buffer (call pcg_source_fit, then read again).
 * Reads from offset 0 until pread returns 0: a short read is not EOF in general. On the
 * kernel's pseudo file systems (s->short_read_is_eof) a first read shorter than the
 * buffer and than PCG_WHOLE_READ_MAX is the whole file: one pread instead of two, the
 * second of which only sees EOF (a third of a small file's cost). */
int pcg_source_fill(pcg_source *s)
{
    size_t off = 0;
    for (;;) {
        ssize_t n;
        if (off == s->cap) {
            char probe;
            n = pread(s->fd, &probe, 1, (off_t)off);
            if (n > 0)
                return off >= PCG_MAX_CONTENT ? -EFBIG : -EOVERFLOW;
        } else {
            n = pread(s->fd, s->buf + off, s->cap - off, (off_t)off);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        off += (size_t)n;
        if (off == (size_t)n && s->short_read_is_eof && off < s->cap && off <= PCG_WHOLE_READ_MAX)
            break;
    }
    s->len = off;
    return off > PCG_MAX_CONTENT ? -EFBIG : 0;
}

/* Returns 0 after doubling the buffer, or -ENOMEM (-EFBIG past MAX_CAPACITY). */
int pcg_source_grow(pcg_source *s)
{
    if (s->cap >= MAX_CAPACITY)
        return -EFBIG;
    char *bigger = realloc(s->buf, s->cap * 2);
    if (bigger == NULL)
        return -ENOMEM;
    s->buf = bigger;
    s->cap *= 2;
    return 0;
}

/* Returns the row value of one parsed field under a field's conversion. */
int64_t pcg_convert(const pcg_value *v, const pcg_field *f)
{
    if (v->kind == PCG_VAL_MISSING)
        return PCG_MISSING;
    if (v->kind == PCG_VAL_MAX)
        return PCG_UNLIMITED;
    if (f->mul == 1 && f->div == 1 && f->unlimited_at == 0) /* most fields: no conversion */
        return v->number > PCG_VALUE_CEIL ? PCG_VALUE_CEIL : (int64_t)v->number;
    __extension__ typedef unsigned __int128 u128; /* the product of two u64 fits */
    u128 scaled = (u128)v->number * (uint64_t)f->mul / (uint64_t)f->div;
    int64_t value = scaled > PCG_VALUE_CEIL ? PCG_VALUE_CEIL : (int64_t)scaled;
    if (f->unlimited_at > 0 && value >= f->unlimited_at)
        return PCG_UNLIMITED;
    return value;
}

/* Returns 0 after parsing s->buf into s->values, or -PCG_EPARSE with s->error_line. */
int pcg_source_parse(pcg_source *s)
{
    int line = 0, rc;
    pcg_value fixed[2];
    switch (s->format) {
    case PCG_FMT_FLAT_KEYED:
    case PCG_FMT_COLON_KEYED:
        return pcg_parse_keyed(s->buf, s->len, keyed_style(s->format), s->keys, s->nfields,
                               s->values, &s->error_line);
    case PCG_FMT_PID_STAT:
        return pcg_parse_pid_stat(s->buf, s->len, s->stat_fields, s->nfields, s->values,
                                  &s->error_line);
    case PCG_FMT_VALUE:
    case PCG_FMT_QUOTA_V1:
        rc = pcg_parse_value(s->buf, s->len,
                             s->format == PCG_FMT_QUOTA_V1 ? PCG_VALUE_MINUS_ONE_IS_MAX : 0,
                             &fixed[0], &line);
        break;
    case PCG_FMT_CPU_MAX:
        rc = pcg_parse_cpu_max(s->buf, s->len, &fixed[0], &fixed[1], &line);
        break;
    case PCG_FMT_PSI:
        rc = pcg_parse_psi(s->buf, s->len, &fixed[0], &fixed[1], &line);
        break;
    default:
        return -EINVAL;
    }
    s->error_line = line;
    for (size_t i = 0; i < s->nfields; i++)
        s->values[i] = fixed[s->fields[i].sub];
    return rc;
}

/* Returns 0 after filling and parsing the file into row[field.column], or -errno; on error
 * the source's columns are PCG_MISSING and s->error/s->error_line say why. */
int pcg_source_read(pcg_source *s, int64_t *row)
{
    s->error_line = 0;
    int rc = s->fd < 0 ? -EBADF : pcg_source_fill(s);
    if (rc == 0)
        rc = pcg_source_parse(s);
    s->error = rc;
    for (size_t i = 0; i < s->nfields; i++)
        row[s->fields[i].column] = rc == 0 ? pcg_convert(&s->values[i], &s->fields[i])
                                           : PCG_MISSING;
    return rc;
}

/* Closes the file and frees what pcg_source_open allocated; safe to call twice. */
void pcg_source_close(pcg_source *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->keys != NULL)
        for (size_t i = 0; i < s->nfields; i++)
            free((void *)s->keys[i].name);
    free(s->keys);
    free(s->fields);
    free(s->values);
    free(s->stat_fields);
    free(s->buf);
    s->keys = NULL;
    s->fields = NULL;
    s->values = NULL;
    s->stat_fields = NULL;
    s->buf = NULL;
    s->nfields = 0;
}
