#include "ring.h"

#include <errno.h>
#include <stdlib.h>

#define MAX_RING_BYTES (1ull << 40)

/* Returns 0 after allocating capacity rows of width int64s, or -EINVAL or -ENOMEM. */
int pcg_ring_init(pcg_ring *r, uint64_t capacity, uint32_t width)
{
    r->slots = NULL;
    if (capacity < 2 || (capacity & (capacity - 1)) != 0 || width == 0 ||
        capacity > MAX_RING_BYTES / 8 / width)
        return -EINVAL;
    r->slots = calloc(capacity * width, sizeof *r->slots);
    if (r->slots == NULL)
        return -ENOMEM;
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->width = width;
    atomic_init(&r->begun, 0);
    atomic_init(&r->committed, 0);
    atomic_init(&r->read_end, 0);
    atomic_init(&r->dropped, 0);
    return 0;
}

/* Appends one row. Only one thread may push at a time.
 *
 * The protocol is a seqlock per slot (Boehm, "Can seqlocks get along with programming
 * language memory models?", 2012): `begun` is published before the slot is overwritten,
 * with a release fence that pairs with the acquire fence in pcg_ring_copy, so a reader
 * that saw any of the new values also sees the new `begun` and discards the old row. */
void pcg_ring_push(pcg_ring *r, const int64_t *row)
{
    uint64_t pos = atomic_load_explicit(&r->committed, memory_order_relaxed);
    if (pos >= r->capacity &&
        pos - r->capacity >= atomic_load_explicit(&r->read_end, memory_order_relaxed))
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
    atomic_store_explicit(&r->begun, pos + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* pairs with the fence in pcg_ring_copy */
    _Atomic int64_t *slot = r->slots + (pos & r->mask) * r->width;
    for (uint32_t c = 0; c < r->width; c++)
        atomic_store_explicit(&slot[c], row[c], memory_order_relaxed);
    /* Pairs with the acquire load of `committed` in pcg_ring_copy: the row is complete. */
    atomic_store_explicit(&r->committed, pos + 1, memory_order_release);
}

/* Returns the position of the oldest row that a reader may still find intact, given
 * how many rows the writer has begun. */
static uint64_t oldest_intact(const pcg_ring *r, uint64_t begun)
{
    return begun > r->capacity ? begun - r->capacity : 0;
}

/* Returns how many rows were copied into out, oldest first, from position from. */
uint64_t pcg_ring_copy(pcg_ring *r, uint64_t from, int64_t *out, uint64_t max_rows,
                       uint64_t *first)
{
    /* Pairs with the release store in pcg_ring_push: rows before `end` are complete. */
    uint64_t end = atomic_load_explicit(&r->committed, memory_order_acquire);
    uint64_t start = oldest_intact(r, end);
    if (from > start)
        start = from > end ? end : from;
    if (end - start > max_rows)
        start = end - max_rows; /* the newest rows that fit */
    for (uint64_t p = start; p < end; p++) {
        const _Atomic int64_t *slot = r->slots + (p & r->mask) * r->width;
        int64_t *dst = out + (p - start) * r->width;
        for (uint32_t c = 0; c < r->width; c++)
            dst[c] = atomic_load_explicit(&slot[c], memory_order_relaxed);
    }
    /* Pairs with the release fence in pcg_ring_push: if a copied value was written for a
     * newer row, this load sees that row begun, and the rows it overwrote are dropped. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t valid = oldest_intact(r, atomic_load_explicit(&r->begun, memory_order_relaxed));
    uint64_t skip = valid > start ? (valid < end ? valid : end) - start : 0;
    uint64_t n = end - start - skip;
    if (skip > 0)
        for (uint64_t i = 0; i < n * r->width; i++)
            out[i] = out[i + skip * r->width];
    *first = start + skip;
    uint64_t seen = atomic_load_explicit(&r->read_end, memory_order_relaxed);
    while (seen < end && !atomic_compare_exchange_weak_explicit(
                             &r->read_end, &seen, end, memory_order_relaxed, memory_order_relaxed))
        ;
    return n;
}

/* Returns the position of the first held row whose timestamp is >= t. */
uint64_t pcg_ring_position_at(pcg_ring *r, int64_t t)
{
    uint64_t hi = atomic_load_explicit(&r->committed, memory_order_acquire);
    uint64_t lo = oldest_intact(r, atomic_load_explicit(&r->begun, memory_order_relaxed) + 1);
    /* Binary search; a row overwritten meanwhile only makes the answer older, which
     * pcg_ring_copy then clamps to what is intact. */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t tm = atomic_load_explicit(&r->slots[(mid & r->mask) * r->width],
                                          memory_order_relaxed);
        if (tm < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Returns 0 after copying the newest complete row into out, or -ENODATA. */
int pcg_ring_copy_newest(pcg_ring *r, int64_t *out, uint64_t *pos)
{
    for (;;) {
        /* Pairs with the release store in pcg_ring_push: the row before `end` is complete. */
        uint64_t end = atomic_load_explicit(&r->committed, memory_order_acquire);
        if (end == 0)
            return -ENODATA;
        uint64_t p = end - 1;
        const _Atomic int64_t *slot = r->slots + (p & r->mask) * r->width;
        for (uint32_t c = 0; c < r->width; c++)
            out[c] = atomic_load_explicit(&slot[c], memory_order_relaxed);
        /* As in pcg_ring_copy: a value from a newer row implies that row is seen begun. */
        atomic_thread_fence(memory_order_acquire);
        if (p >= oldest_intact(r, atomic_load_explicit(&r->begun, memory_order_relaxed))) {
            *pos = p;
            return 0;
        }
    }
}

/* Returns whether v is a present value: neither missing nor unlimited. */
static int present(int64_t v)
{
    return v != INT64_MIN && v != INT64_MAX;
}

/* Returns how many rows [from, to] with t >= t_min were folded into peaks, or -1. */
int64_t pcg_ring_peaks(pcg_ring *r, uint64_t from, uint64_t to, int64_t t_min,
                       int64_t max_gap_ns, int64_t *peaks, int ws_current, int ws_inactive,
                       int64_t *ws_peak, uint64_t *gaps)
{
    uint32_t ncols = r->width - 1;
    int64_t used = 0, ws = INT64_MIN, previous = INT64_MIN;
    uint64_t gapped = 0;
    for (uint32_t c = 0; c < ncols; c++)
        peaks[c] = INT64_MIN;
    uint64_t end = atomic_load_explicit(&r->committed, memory_order_acquire);
    if (to >= end || from > to)
        return -1;
    for (uint64_t p = from; p <= to; p++) {
        const _Atomic int64_t *slot = r->slots + (p & r->mask) * r->width;
        int64_t t = atomic_load_explicit(&slot[0], memory_order_relaxed);
        if (previous != INT64_MIN && t - previous > max_gap_ns)
            gapped++;
        previous = t;
        if (t < t_min)
            continue;
        used++;
        for (uint32_t c = 0; c < ncols; c++) {
            int64_t v = atomic_load_explicit(&slot[c + 1], memory_order_relaxed);
            if (present(v) && (peaks[c] == INT64_MIN || v > peaks[c]))
                peaks[c] = v;
        }
        if (ws_current > 0 && ws_inactive > 0) {
            int64_t cur = atomic_load_explicit(&slot[ws_current], memory_order_relaxed);
            int64_t ina = atomic_load_explicit(&slot[ws_inactive], memory_order_relaxed);
            if (present(cur) && present(ina)) {
                int64_t w = cur > ina ? cur - ina : 0;
                if (w > ws)
                    ws = w;
            }
        }
    }
    /* As in pcg_ring_copy: any value read from a newer row shows that row begun. */
    atomic_thread_fence(memory_order_acquire);
    if (from < oldest_intact(r, atomic_load_explicit(&r->begun, memory_order_relaxed)))
        return -1;
    if (ws_peak != NULL)
        *ws_peak = ws;
    *gaps = gapped;
    /* Everything up to `from` was read: the watermark may move past these rows too. */
    uint64_t seen = atomic_load_explicit(&r->read_end, memory_order_relaxed);
    while (seen >= from && seen <= to &&
           !atomic_compare_exchange_weak_explicit(&r->read_end, &seen, to + 1,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    return used;
}

/* Frees the rows; safe to call twice. */
void pcg_ring_free(pcg_ring *r)
{
    free((void *)r->slots);
    r->slots = NULL;
}
