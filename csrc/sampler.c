#define _GNU_SOURCE /* prctl(PR_SET_TIMERSLACK), clock_nanosleep, pthread_sigmask */
#include "sampler.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define NS_PER_SEC 1000000000ull

/* Samplers that exist, so fork handlers can quiesce and reset them. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pcg_sampler *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Returns CLOCK_MONOTONIC now in ns: the clock of time.monotonic_ns() and perf_counter_ns(). */
static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * (int64_t)NS_PER_SEC + ts.tv_nsec;
}

/* Before fork: hold every sampler's lock so no row is half-built when the child copies
 * the address space. */
static void before_fork(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered)
        pthread_mutex_lock(&s->lock);
}

static void after_fork_in_parent(void)
{
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered)
        pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&registry_lock);
}

/* The child has no sampler threads: mark them stopped so it can start its own. */
static void after_fork_in_child(void)
{
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered) {
        atomic_store(&s->running, false);
        atomic_store(&s->stop_requested, false);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void install_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* Returns 0 after setting up a sampler over reader and ring, or -EINVAL / -ENOMEM. */
int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                     const uint32_t *every)
{
    memset(s, 0, sizeof *s);
    if (ring->width != reader->ncolumns + 1 || period_ns == 0)
        return -EINVAL;
    s->reader = reader;
    s->ring = ring;
    s->period_ns = period_ns;
    s->every = calloc(reader->nsources ? reader->nsources : 1, sizeof *s->every);
    s->row = calloc(ring->width, sizeof *s->row);
    s->lateness_us = calloc(PCG_LATENESS_BUCKETS + 1, sizeof *s->lateness_us);
    if (s->every == NULL || s->row == NULL || s->lateness_us == NULL) {
        free(s->every);
        free(s->row);
        free((void *)s->lateness_us);
        return -ENOMEM;
    }
    for (size_t i = 0; i < reader->nsources; i++)
        s->every[i] = (every != NULL && every[i] > 0) ? every[i] : 1;
    for (uint32_t c = 0; c < ring->width; c++)
        s->row[c] = INT64_MIN; /* PCG_MISSING until a source is first read */
    pthread_mutex_init(&s->lock, NULL);
    pthread_once(&atfork_once, install_fork_handlers);
    pthread_mutex_lock(&registry_lock);
    s->next_registered = registry;
    registry = s;
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

/* Returns the row's timestamp after reading the sources due at this tick into s->row and
 * pushing it. Sources not due keep their last values. Called with s->lock held. */
static int64_t take_row(pcg_sampler *s, uint64_t tick, bool all)
{
    int64_t now = monotonic_ns();
    s->row[0] = now;
    for (size_t i = 0; i < s->reader->nsources; i++) {
        pcg_source *src = &s->reader->sources[i];
        if (src->fd < 0 || (!all && tick % s->every[i] != 0))
            continue;
        int rc = pcg_source_read(src, s->row + 1);
        if (rc != 0) {
            atomic_fetch_add_explicit(&s->read_errors, 1, memory_order_relaxed);
            atomic_store_explicit(&s->last_error, rc, memory_order_relaxed);
            atomic_store_explicit(&s->last_error_source, (int)i, memory_order_relaxed);
        }
    }
    for (size_t g = 0; g < s->ngpus; g++) {
        if (!all && tick % s->gpu_every != 0)
            continue;
        int rc = pcg_gpu_read(s->gpus[g], s->row + 1);
        if (rc != 0) {
            atomic_fetch_add_explicit(&s->read_errors, 1, memory_order_relaxed);
            atomic_store_explicit(&s->last_error, rc, memory_order_relaxed);
            atomic_store_explicit(&s->last_error_source, (int)(s->reader->nsources + g),
                                  memory_order_relaxed);
        }
    }
    pcg_ring_push(s->ring, s->row);
    atomic_fetch_add_explicit(&s->samples, 1, memory_order_relaxed);
    return now;
}

static void record_lateness(pcg_sampler *s, int64_t late_ns)
{
    uint64_t late = late_ns > 0 ? (uint64_t)late_ns : 0;
    uint64_t bucket = late / 1000;
    if (bucket > PCG_LATENESS_BUCKETS)
        bucket = PCG_LATENESS_BUCKETS;
    atomic_fetch_add_explicit(&s->lateness_us[bucket], 1, memory_order_relaxed);
    uint64_t seen = atomic_load_explicit(&s->lateness_max_ns, memory_order_relaxed);
    while (late > seen && !atomic_compare_exchange_weak_explicit(
                              &s->lateness_max_ns, &seen, late, memory_order_relaxed,
                              memory_order_relaxed))
        ;
}

/* The thread: sleep to each absolute deadline, take a row, and never drift: a deadline
 * missed is counted and skipped, keeping the phase. Never touches Python. */
static void *run(void *arg)
{
    pcg_sampler *s = arg;
    int64_t period = (int64_t)s->period_ns;
    /* Wake at the deadline, not up to 50 µs after it (the default timer slack). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int64_t deadline = monotonic_ns();
    while (!atomic_load_explicit(&s->stop_requested, memory_order_acquire)) {
        struct timespec ts = {deadline / (int64_t)NS_PER_SEC, deadline % (int64_t)NS_PER_SEC};
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
            ;
        if (atomic_load_explicit(&s->stop_requested, memory_order_acquire))
            break;
        pthread_mutex_lock(&s->lock);
        int64_t woke = take_row(s, s->tick++, false);
        pthread_mutex_unlock(&s->lock);
        record_lateness(s, woke - deadline);
        deadline += period;
        int64_t now = monotonic_ns();
        if (now >= deadline) {
            int64_t missed = (now - deadline) / period + 1;
            atomic_fetch_add_explicit(&s->overruns, (uint64_t)missed, memory_order_relaxed);
            deadline += missed * period;
        }
    }
    return NULL;
}

/* Returns 0 after giving the sampler GPU groups read on every Nth tick, or -EBUSY. */
int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every)
{
    if (atomic_load(&s->running))
        return -EBUSY;
    pthread_mutex_lock(&s->lock);
    s->gpus = gpus;
    s->ngpus = ngpus;
    s->gpu_every = every > 0 ? every : 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Returns 0 after starting the thread, -EALREADY if running, or -errno from pthread. */
int pcg_sampler_start(pcg_sampler *s)
{
    if (atomic_load(&s->running))
        return -EALREADY;
    atomic_store(&s->stop_requested, false);
    /* Block signals in the thread so that Python's handlers keep running in the main one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, run, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    atomic_store(&s->running, true);
    return 0;
}

/* Returns 0 after asking the thread to stop and joining it, or -EALREADY. */
int pcg_sampler_stop(pcg_sampler *s)
{
    if (!atomic_load(&s->running))
        return -EALREADY;
    atomic_store_explicit(&s->stop_requested, true, memory_order_release);
    pthread_join(s->thread, NULL);
    atomic_store(&s->running, false);
    return 0;
}

/* Returns the timestamp of a row read now, in the calling thread, from every source. */
int64_t pcg_sampler_sample_now(pcg_sampler *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t t = take_row(s, 0, true);
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* Returns the timestamp of a row read now, after copying it into out and its position. */
int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos)
{
    pthread_mutex_lock(&s->lock);
    int64_t t = take_row(s, 0, true);
    memcpy(out, s->row, s->ring->width * sizeof *out);
    *pos = atomic_load_explicit(&s->ring->committed, memory_order_relaxed) - 1;
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* Returns how many buffers were resized to fit sources whose content outgrew them. */
int pcg_sampler_grow_outgrown(pcg_sampler *s)
{
    pthread_mutex_lock(&s->lock); /* the thread must not read a buffer being replaced */
    int grown = pcg_reader_grow_outgrown(s->reader);
    pthread_mutex_unlock(&s->lock);
    return grown;
}

/* Returns the lateness in ns below which a fraction q of the thread's wake-ups fell. */
uint64_t pcg_sampler_lateness_quantile(pcg_sampler *s, double q)
{
    uint64_t total = 0, seen = 0;
    for (int b = 0; b <= PCG_LATENESS_BUCKETS; b++)
        total += atomic_load_explicit(&s->lateness_us[b], memory_order_relaxed);
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    for (int b = 0; b <= PCG_LATENESS_BUCKETS; b++) {
        seen += atomic_load_explicit(&s->lateness_us[b], memory_order_relaxed);
        if (seen > rank)
            return b == PCG_LATENESS_BUCKETS
                       ? atomic_load_explicit(&s->lateness_max_ns, memory_order_relaxed)
                       : (uint64_t)(b + 1) * 1000; /* the bucket's upper edge */
    }
    return atomic_load_explicit(&s->lateness_max_ns, memory_order_relaxed);
}

/* Stops the thread if running and frees what init allocated; safe to call twice. */
void pcg_sampler_destroy(pcg_sampler *s)
{
    if (s->row == NULL)
        return;
    pcg_sampler_stop(s);
    pthread_mutex_lock(&registry_lock);
    for (pcg_sampler **p = &registry; *p != NULL; p = &(*p)->next_registered) {
        if (*p == s) {
            *p = s->next_registered;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    pthread_mutex_destroy(&s->lock);
    free(s->every);
    free(s->row);
    free((void *)s->lateness_us);
    s->every = NULL;
    s->row = NULL;
    s->lateness_us = NULL;
}
