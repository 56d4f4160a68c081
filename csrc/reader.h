/* A reader: the sources that together fill one row of int64 columns. */
#ifndef PCG_READER_H
#define PCG_READER_H

#include <pthread.h>

#include "source.h"

typedef struct pcg_reader {
    pcg_source *sources; /* a source that failed to open keeps fd -1 and its open error */
    size_t nsources;
    size_t ncolumns;
    /* Held by every read and by close: close waits for a read in flight (which may be in
     * another thread, without the GIL) instead of freeing its buffers under it. */
    pthread_mutex_t lock;
} pcg_reader;

/* Returns 0 after allocating nsources unopened sources for rows of ncolumns, or -ENOMEM. */
int pcg_reader_init(pcg_reader *r, size_t nsources, size_t ncolumns);

/* Returns 0 after opening source i, or -errno (also kept in sources[i].error);
 * -EINVAL when a field's column is outside the row. Not concurrently with reads. */
int pcg_reader_open(pcg_reader *r, size_t i, const char *path, enum pcg_format format,
                    const pcg_field_spec *specs, size_t nfields);

/* Returns how many open sources failed; every column not read is PCG_MISSING. Takes the
 * reader's lock; allocates only to regrow a buffer a file outgrew. */
size_t pcg_reader_read(pcg_reader *r, int64_t *row);

/* Returns 0 after reading source i into row, or -errno. A file whose content outgrew its
 * buffer is read again into a buffer that fits (that rare case allocates). Called with the
 * reader's lock held. */
int pcg_reader_read_source(pcg_reader *r, size_t i, int64_t *row);

/* Returns how many open sources failed to be read into their buffers, parsing nothing:
 * the cost floor of a read. */
size_t pcg_reader_fill(pcg_reader *r);

/* Closes every source, once no read is in flight; the reader then has no sources and
 * reads fill rows with PCG_MISSING. Safe to call twice and concurrently with reads. */
void pcg_reader_close(pcg_reader *r);

/* Closes the reader and frees what init allocated; no read may be in flight. */
void pcg_reader_destroy(pcg_reader *r);

#endif
