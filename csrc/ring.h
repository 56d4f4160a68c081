/* A single-writer ring of int64 rows (timestamp + columns) that readers copy out safely. */
#ifndef PCG_RING_H
#define PCG_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pcg_ring {
    _Atomic int64_t *slots; /* capacity rows of width int64s */
    uint64_t capacity;      /* a power of two */
    uint64_t mask;          /* capacity - 1: row p lives in slot p & mask */
    uint32_t width;         /* int64s per row: the timestamp, then one per column */
    /* Positions only increase. Row p is in slot p & mask until row p + capacity is begun. */
    _Atomic uint64_t begun;     /* rows whose writing has started */
    _Atomic uint64_t committed; /* rows completely written */
    _Atomic uint64_t read_end;  /* one past the newest row ever copied out */
    _Atomic uint64_t dropped;   /* rows overwritten before any reader copied them */
} pcg_ring;

/* Returns 0 after allocating capacity rows of width int64s, or -EINVAL (capacity not a
 * power of two >= 2, width 0, or too large to allocate) or -ENOMEM. */
int pcg_ring_init(pcg_ring *r, uint64_t capacity, uint32_t width);

/* Appends one row. Only one thread may push at a time. */
void pcg_ring_push(pcg_ring *r, const int64_t *row);

/* Returns how many rows were copied into out (room for max_rows rows), oldest first, from
 * position from (or the oldest row still held, if later); *first is the first row's
 * position. Rows being overwritten while copying are never returned. Any thread. */
uint64_t pcg_ring_copy(pcg_ring *r, uint64_t from, int64_t *out, uint64_t max_rows,
                       uint64_t *first);

/* Returns the position of the first held row whose timestamp (column 0) is >= t, or the
 * committed position when there is none. Timestamps must not decrease. Any thread. */
uint64_t pcg_ring_position_at(pcg_ring *r, int64_t t);

/* Returns 0 after copying the newest complete row into out (width int64s) and its
 * position into *pos, or -ENODATA when no row was pushed yet. Seqlock-consistent: a row
 * overwritten while it was being copied is copied again. O(width); any thread. */
int pcg_ring_copy_newest(pcg_ring *r, int64_t *out, uint64_t *pos);

/* Returns how many rows of positions [from, to] with timestamp >= t_min were folded into
 * peaks (width - 1 int64s: each column's largest value that is neither missing nor
 * unlimited, PCG_MISSING-style INT64_MIN where none), or -1 when some of those rows
 * were overwritten before they were read (peaks then mean nothing). When ws_current and
 * ws_inactive are column indices (1-based, as in a row), *ws_peak receives the largest
 * max(0, current - inactive) over the same rows. Advances the read watermark over the
 * rows when everything before them was read already. *gaps receives how many pairs of
 * consecutive rows among them lie more than max_gap_ns apart. Any thread. */
int64_t pcg_ring_peaks(pcg_ring *r, uint64_t from, uint64_t to, int64_t t_min,
                       int64_t max_gap_ns, int64_t *peaks, int ws_current, int ws_inactive,
                       int64_t *ws_peak, uint64_t *gaps);

/* Frees the rows; safe to call twice. */
void pcg_ring_free(pcg_ring *r);

#endif
