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

/* Returns how many open sources failed; every column not read is PCG_MISSING. */
size_t pcg_reader_read(pcg_reader *r, int64_t *row)
{
    size_t failed = 0;
    for (size_t c = 0; c < r->ncolumns; c++)
        row[c] = PCG_MISSING;
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].fd >= 0 && pcg_source_read(&r->sources[i], row) != 0)
            failed++;
    return failed;
}

/* Returns how many open sources failed to be read into their buffers, parsing nothing. */
size_t pcg_reader_fill(pcg_reader *r)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].fd >= 0 && pcg_source_fill(&r->sources[i]) != 0)
            failed++;
    return failed;
}

/* Returns how many buffers were resized for sources whose content outgrew them. */
int pcg_reader_grow_outgrown(pcg_reader *r)
{
    int grown = 0;
    for (size_t i = 0; i < r->nsources; i++) {
        pcg_source *src = &r->sources[i];
        if (src->error == -EOVERFLOW && pcg_source_fit(src) == 0) {
            src->error = 0;
            grown++;
        }
    }
    return grown;
}

/* Closes every source and frees the reader; safe to call twice. */
void pcg_reader_close(pcg_reader *r)
{
    for (size_t i = 0; r->sources != NULL && i < r->nsources; i++)
        pcg_source_close(&r->sources[i]);
    free(r->sources);
    r->sources = NULL;
    r->nsources = 0;
}
