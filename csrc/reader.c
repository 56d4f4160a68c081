#include "reader.h"

#include <stdlib.h>

/* Returns 0 after allocating nsources unopened sources for rows of ncolumns, or -ENOMEM. */
int pcg_reader_init(pcg_reader *r, size_t nsources, size_t ncolumns)
{
    r->sources = calloc(nsources ? nsources : 1, sizeof *r->sources);
    if (r->sources == NULL)
        return -ENOMEM;
    r->nsources = nsources;
    r->ncolumns = ncolumns;
    for (size_t i = 0; i < nsources; i++) {
        r->sources[i].fd = -1;
        r->sources[i].error = -EBADF;
    }
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

/* Returns 0 after opening source i, or -errno (also kept in sources[i].error);
 * -EINVAL when a field's column is outside the row. */
int pcg_reader_open(pcg_reader *r, size_t i, const char *path, enum pcg_format format,
                    const pcg_field_spec *specs, size_t nfields)
{
    if (i >= r->nsources)
        return -EINVAL;
    for (size_t f = 0; f < nfields; f++)
        if (specs[f].column >= r->ncolumns)
            return -EINVAL;
    pcg_source_close(&r->sources[i]);
    int rc = pcg_source_open(&r->sources[i], path, format, specs, nfields);
    r->sources[i].error = rc;
    return rc;
}

/* Returns 0 after reading source i into row, or -errno, regrowing an outgrown buffer. */
int pcg_reader_read_source(pcg_reader *r, size_t i, int64_t *row)
{
    pcg_source *src = &r->sources[i];
    int rc = pcg_source_read(src, row);
    /* The file grew past its buffer since the last fit (rare: a cgroup gained keys). The
     * reading thread regrows it itself, here, so that no row is missing for want of a
     * call from elsewhere: the only allocation on the read path, and only on this path. */
    if (rc == -EOVERFLOW) {
        rc = pcg_source_fit(src);
        if (rc == 0)
            rc = pcg_source_read(src, row);
        else
            src->error = rc; /* e.g. -EFBIG; its columns stay PCG_MISSING */
    }
    return rc;
}

/* Returns how many open sources failed; every column not read is PCG_MISSING. */
size_t pcg_reader_read(pcg_reader *r, int64_t *row)
{
    size_t failed = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t c = 0; c < r->ncolumns; c++)
        row[c] = PCG_MISSING;
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].fd >= 0 && pcg_reader_read_source(r, i, row) != 0)
            failed++;
    pthread_mutex_unlock(&r->lock);
    return failed;
}

/* Returns how many open sources failed to be read into their buffers, parsing nothing. */
size_t pcg_reader_fill(pcg_reader *r)
{
    size_t failed = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].fd >= 0 && pcg_source_fill(&r->sources[i]) != 0)
            failed++;
    pthread_mutex_unlock(&r->lock);
    return failed;
}

/* Closes every source once no read is in flight; safe to call twice. */
void pcg_reader_close(pcg_reader *r)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; r->sources != NULL && i < r->nsources; i++)
        pcg_source_close(&r->sources[i]);
    r->nsources = 0; /* the sources array stays until destroy: readers index it */
    pthread_mutex_unlock(&r->lock);
}

/* Closes the reader and frees what init allocated; no read may be in flight. */
void pcg_reader_destroy(pcg_reader *r)
{
    if (r->sources == NULL)
        return;
    pcg_reader_close(r);
    free(r->sources);
    r->sources = NULL;
    pthread_mutex_destroy(&r->lock);
}
