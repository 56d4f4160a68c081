/* The sampler: a background thread that reads a reader's sources on absolute
 * CLOCK_MONOTONIC deadlines and pushes timestamped rows into a ring. */
#ifndef PCG_SAMPLER_H
#define PCG_SAMPLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "nvml.h"
#include "process_clock.h"
#include "reader.h"
#include "ring.h"

/* Lateness histogram: one bucket per microsecond up to this, then one overflow bucket. */
#define PCG_LATENESS_BUCKETS 10000

/* The period's bounds: 10 µs (100 kHz) to one hour. Shorter periods leave no time to read
 * a file; longer ones are not sampling, and past ~292 years the ns count overflows. */
#define PCG_PERIOD_MIN_NS 10000ull
#define PCG_PERIOD_MAX_NS 3600000000000ull

/* The lifecycle. Every transition happens under state_lock and is broadcast on
 * state_changed: IDLE -> RUNNING (start), RUNNING -> STOPPING -> IDLE (stop: the one
 * caller that moved it to STOPPING joins the thread; others wait for IDLE), and any state
 * -> CLOSED (close, after stopping), which is final. */
enum pcg_sampler_state {
    PCG_SAMPLER_IDLE = 0,
    PCG_SAMPLER_RUNNING = 1,
    PCG_SAMPLER_STOPPING = 2,
    PCG_SAMPLER_CLOSED = 3,
};

typedef struct pcg_sampler {
    pcg_reader *reader; /* not owned; row column c lands in ring column c + 1 */
    pcg_ring *ring;     /* not owned */
    uint32_t *every;    /* per source: read on every Nth tick (1 = every tick) */
    uint32_t *until;    /* per source: ticks left before its next read (no division a tick) */
    pcg_gpu **gpus;     /* not owned: GPU groups, read on every gpu_every-th tick */
    size_t ngpus;
    uint32_t gpu_every, gpu_until;
    /* This process's clocks, in two groups each read on every Nth tick: the CPU clock
     * (clock_gettime) and the getrusage fields (one call fills them all). */
    pcg_process_clock clock_cpu;    /* only cpu_usec bound */
    pcg_process_clock clock_rusage; /* only utime_usec, stime_usec, max_rss_bytes bound */
    uint32_t clock_cpu_every, clock_rusage_every, clock_cpu_until, clock_rusage_until;
    bool has_clock_cpu, has_clock_rusage;
    /* Non-exact spans open now: while any is, the thread reads the CPU clock on every
     * tick, so that the rows a span copies at its boundaries carry it fresh. */
    _Atomic uint32_t open_spans;
    /* The ring position of the newest row that read the CPU clock (UINT64_MAX: none). */
    _Atomic uint64_t clock_cpu_pos;
    int64_t *row;       /* the row being built: timestamp, then the reader's columns */
    uint64_t period_ns;
    uint64_t tick;      /* ticks taken by the thread */
    pthread_mutex_t lock; /* one writer at a time: the thread or sample_now */
    pthread_mutex_t state_lock;    /* guards state transitions */
    pthread_cond_t state_changed;  /* wakes callers waiting for a transition */
    pthread_t thread;
    /* enum pcg_sampler_state, written under state_lock; also the futex word the thread
     * sleeps on between ticks, woken by every transition */
    _Atomic int state;
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
 * reader->ncolumns + 1, period within the bounds above), or -EINVAL / -ENOMEM / -errno
 * from pthread. every may be NULL (all 1). */
int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                     const uint32_t *every);

/* Returns 0 after making the sampler read through reader (after fork, where the parent's
 * files describe the parent), or -EINVAL (another column count) / -EBUSY (running) /
 * -ESHUTDOWN (closed). A sample_now in flight finishes with the old reader first. */
int pcg_sampler_set_reader(pcg_sampler *s, pcg_reader *reader);

/* Returns 0 after giving the sampler GPU groups read on every Nth tick (not while running;
 * gpus must outlive the sampler), or -EBUSY (running) / -ESHUTDOWN (closed). */
int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every);

/* Returns 0 after binding this process's CPU clocks to row columns (see
 * process_clock.h): cpu_usec read on every cpu_every-th tick, the getrusage fields on
 * every rusage_every-th (0 means 1); or -EBUSY while running / -ESHUTDOWN once closed. */
int pcg_sampler_set_process_clock(pcg_sampler *s, const pcg_process_clock *clock,
                                  uint32_t cpu_every, uint32_t rusage_every);

/* Returns 0 after starting the thread, -EALREADY if running, -ESHUTDOWN once closed, or
 * -errno from pthread. Safe from any thread, concurrently with every other call. */
int pcg_sampler_start(pcg_sampler *s);

/* Returns 0 once the thread has stopped (woken at once, whatever the period) and been
 * joined, or -EALREADY when it was not running. Concurrent callers join it once: the
 * others wait until it is stopped. */
int pcg_sampler_stop(pcg_sampler *s);

/* Returns 0 after stopping the thread, waiting for any sample_now in flight and marking
 * the sampler closed for good (later start/sample_now return -ESHUTDOWN), or -EALREADY
 * when it was closed already. Frees nothing: destroy does. */
int pcg_sampler_close(pcg_sampler *s);

/* Returns true while the thread runs (also while it is being stopped). */
bool pcg_sampler_running(pcg_sampler *s);

/* Returns the timestamp (> 0) of a row read now, in the calling thread, from every
 * source; -ESHUTDOWN once the sampler is closed (no row is pushed then). */
int64_t pcg_sampler_sample_now(pcg_sampler *s);

/* Returns the timestamp of a row read now, in the calling thread, from every source, after
 * copying that row (ring width int64s) into out and its ring position into *pos;
 * -ESHUTDOWN once the sampler is closed. */
int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos);

/* Returns how many reads failed after reading every open source's file into its buffer
 * and this process's bound clocks, in the calling thread, parsing and recording nothing:
 * the same system calls as a row read now, so the cost floor of sample_now. */
size_t pcg_sampler_fill(pcg_sampler *s);

/* Counts a non-exact span opened (span_opened) or ended (span_closed): while one is open
 * the thread reads the CPU clock on every tick instead of every clock_cpu_every-th, so a
 * span needs no system call of its own at its boundaries. Any thread, lock-free. */
void pcg_sampler_span_opened(pcg_sampler *s);
void pcg_sampler_span_closed(pcg_sampler *s);

/* Returns 0 after reading this process's CPU clock (proc.cpu_usec) into row, a copy of
 * the ring's row at pos (timestamp first), when that row did not read the clock itself;
 * 1 when there was nothing to do (it did, or the sampler reads no CPU clock). The first
 * span after rows taken with none open meets such a row; later ones mostly do not. */
int pcg_sampler_refresh_cpu_clock(const pcg_sampler *s, int64_t *row, uint64_t pos);

/* Returns the CPU time in ns the running thread has used since it started (its
 * pthread_getcpuclockid clock), or -ESRCH when no thread runs. */
int64_t pcg_sampler_thread_cpu_ns(pcg_sampler *s);

/* Returns the lateness in ns below which a fraction q of the thread's wake-ups fell. */
uint64_t pcg_sampler_lateness_quantile(pcg_sampler *s, double q);

/* Closes the sampler if open and frees what init allocated; safe to call twice. */
void pcg_sampler_destroy(pcg_sampler *s);

#endif
