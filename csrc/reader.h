/* A reader: the sources that together fill one row of int64 columns. */
#ifndef PCG_READER_H
#define PCG_READER_H

#include "source.h"

typedef struct pcg_reader {
    pcg_source *sources; /* a source that failed to open keeps fd -1 and its open error */
    size_t nsources;
    size_t ncolumns;
} pcg_reader;

/* Returns 0 after allocating nsources unopened sources for rows of ncolumns, or -ENOMEM. */
int pcg_reader_init(pcg_reader *r, size_t nsources, size_t ncolumns);

/* Returns 0 after opening source i, or -errno (also kept in sources[i].error);
 * -EINVAL when a field's column is outside the row. */
int pcg_reader_open(pcg_reader *r, size_t i, const char *path, enum pcg_format format,
                    const pcg_field_spec *specs, size_t nfields);

/* Returns how many open sources failed; every column not read is PCG_MISSING.
 * Allocates nothing and takes no lock: one thread reads a reader at a time. */
size_t pcg_reader_read(pcg_reader *r, int64_t *row);

/* Returns how many open sources failed to be read into their buffers, parsing nothing:
 * the cost floor of a read. */
size_t pcg_reader_fill(pcg_reader *r);

/* Returns how many buffers were resized to fit sources whose last read found the content
 * larger than the buffer (-EOVERFLOW). Allocates: not for the read path. */
int pcg_reader_grow_outgrown(pcg_reader *r);

/* Closes every source and frees the reader; safe to call twice. */
void pcg_reader_close(pcg_reader *r);

#endif
