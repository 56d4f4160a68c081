/* The sampler: a background thread that reads a reader's sources on absolute
 * CLOCK_MONOTONIC deadlines and pushes timestamped rows into a ring. */
#ifndef PCG_SAMPLER_H
#define PCG_SAMPLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "nvml.h"
#include "reader.h"
#include "ring.h"

/* Lateness histogram: one bucket per microsecond up to this, then one overflow bucket. */
#define PCG_LATENESS_BUCKETS 10000

typedef struct pcg_sampler {
    pcg_reader *reader; /* not owned; row column c lands in ring column c + 1 */
    pcg_ring *ring;     /* not owned */
    uint32_t *every;    /* per source: read on every Nth tick (1 = every tick) */
    pcg_gpu **gpus;     /* not owned: GPU groups, read on every gpu_every-th tick */
    size_t ngpus;
    uint32_t gpu_every;
    int64_t *row;       /* the row being built: timestamp, then the reader's columns */
    uint64_t period_ns;
    uint64_t tick;      /* ticks taken by the thread */
    pthread_mutex_t lock; /* one writer at a time: the thread or sample_now */
    pthread_t thread;
    _Atomic bool running;
    _Atomic bool stop_requested;
    _Atomic uint64_t samples;     /* rows pushed */
    _Atomic uint64_t overruns;    /* deadlines missed because a tick took too long */
    _Atomic uint64_t read_errors; /* source reads that failed */
    _Atomic int last_error;       /* -errno of the last failed read, or 0 */
    _Atomic int last_error_source;
    _Atomic uint64_t lateness_max_ns;
    _Atomic uint32_t *lateness_us; /* PCG_LATENESS_BUCKETS + 1 counters */
    struct pcg_sampler *next_registered; /* the list fork handlers walk */
} pcg_sampler;

/* Returns 0 after setting up a sampler over reader and ring (ring width must be
 * reader->ncolumns + 1), or -EINVAL / -ENOMEM. every may be NULL (all 1). */
int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                     const uint32_t *every);

/* Returns 0 after giving the sampler GPU groups read on every Nth tick (not while running;
 * gpus must outlive the sampler), or -EBUSY. */
int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every);

/* Returns 0 after starting the thread, -EALREADY if running, or -errno from pthread. */
int pcg_sampler_start(pcg_sampler *s);

/* Returns 0 after asking the thread to stop and joining it (within about one period),
 * or -EALREADY when it was not running. */
int pcg_sampler_stop(pcg_sampler *s);

/* Returns the timestamp of a row read now, in the calling thread, from every source. */
int64_t pcg_sampler_sample_now(pcg_sampler *s);

/* Returns the timestamp of a row read now, in the calling thread, from every source, after
 * copying that row (ring width int64s) into out and its ring position into *pos. */
int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos);

/* Returns how many buffers were resized to fit sources whose content outgrew them. */
int pcg_sampler_grow_outgrown(pcg_sampler *s);

/* Returns the lateness in ns below which a fraction q of the thread's wake-ups fell. */
uint64_t pcg_sampler_lateness_quantile(pcg_sampler *s, double q);

/* Stops the thread if running and frees what init allocated; safe to call twice. */
void pcg_sampler_destroy(pcg_sampler *s);

#endif
