#define _GNU_SOURCE /* prctl(PR_SET_TIMERSLACK), pthread_condattr_setclock, pthread_sigmask, syscall */
#include "sampler.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* Before fork: hold every sampler's locks so no row is half-built and no transition
 * half-made when the child copies the address space. */
static void before_fork(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered) {
        pthread_mutex_lock(&s->state_lock);
        pthread_mutex_lock(&s->lock);
    }
}

static void after_fork_in_parent(void)
{
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered) {
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_unlock(&s->state_lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

static int init_cond(pcg_sampler *s);

/* The child has no sampler threads: a running (or stopping) sampler is idle there, so it
 * can start its own; a closed one stays closed. The condition variable may still count
 * the parent's sleeping thread as a waiter, which a broadcast would wait for: it is made
 * anew (no thread of the child waits on it). */
static void after_fork_in_child(void)
{
    for (pcg_sampler *s = registry; s != NULL; s = s->next_registered) {
        if (atomic_load(&s->state) != PCG_SAMPLER_CLOSED)
            atomic_store(&s->state, PCG_SAMPLER_IDLE);
        memset(&s->state_changed, 0, sizeof s->state_changed);
        init_cond(s);
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_unlock(&s->state_lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void install_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* Returns 0 after initialising the condition variable the thread sleeps on, which times
 * out on CLOCK_MONOTONIC (the deadlines' clock), or -errno. */
static int init_cond(pcg_sampler *s)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return -rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->state_changed, &attr);
    pthread_condattr_destroy(&attr);
    return -rc;
}

/* Returns 0 after initialising the locks and the condition variable, or -errno. */
static int init_sync(pcg_sampler *s)
{
    int rc = init_cond(s);
    if (rc != 0)
        return rc;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->state_lock, NULL);
    return 0;
}

/* Returns 0 after setting up a sampler over reader and ring, or -EINVAL / -ENOMEM. */
int pcg_sampler_init(pcg_sampler *s, pcg_reader *reader, pcg_ring *ring, uint64_t period_ns,
                     const uint32_t *every)
{
    memset(s, 0, sizeof *s);
    if (ring->width != reader->ncolumns + 1 || period_ns < PCG_PERIOD_MIN_NS ||
        period_ns > PCG_PERIOD_MAX_NS)
        return -EINVAL;
    s->reader = reader;
    s->ring = ring;
    s->period_ns = period_ns;
    s->every = calloc(reader->nsources ? reader->nsources : 1, sizeof *s->every);
    s->until = calloc(reader->nsources ? reader->nsources : 1, sizeof *s->until);
    s->row = calloc(ring->width, sizeof *s->row);
    s->lateness_us = calloc(PCG_LATENESS_BUCKETS + 1, sizeof *s->lateness_us);
    int rc = (s->every == NULL || s->until == NULL || s->row == NULL || s->lateness_us == NULL)
                 ? -ENOMEM
                 : init_sync(s);
    if (rc != 0) {
        free(s->every);
        free(s->until);
        free(s->row);
        free((void *)s->lateness_us);
        s->row = NULL;
        return rc;
    }
    for (size_t i = 0; i < reader->nsources; i++)
        s->every[i] = (every != NULL && every[i] > 0) ? every[i] : 1;
    for (uint32_t c = 0; c < ring->width; c++)
        s->row[c] = INT64_MIN; /* PCG_MISSING until a source is first read */
    atomic_store(&s->clock_cpu_pos, UINT64_MAX);
    atomic_store(&s->state, PCG_SAMPLER_IDLE);
    pthread_once(&atfork_once, install_fork_handlers);
    pthread_mutex_lock(&registry_lock);
    s->next_registered = registry;
    registry = s;
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

/* Returns true when a group read on every Nth tick is due at this tick (every tick when
 * all), counting *until down: due at ticks 0, N, 2N... as tick % N == 0, without a
 * division on every tick. Called with s->lock held. */
static inline bool due(uint32_t *until, uint32_t every, bool all)
{
    if (all)
        return true;
    if (*until > 0) {
        (*until)--;
        return false;
    }
    *until = every - 1;
    return true;
}

/* Returns the ticks left before tick % every == 0: what *until holds at tick. */
static uint32_t ticks_until(uint64_t tick, uint32_t every)
{
    return (uint32_t)((every - tick % every) % every);
}

/* Returns the row's timestamp after reading the sources due at this tick (all: every
 * source, leaving the thread's schedule alone) into s->row and pushing it. Sources not
 * due keep their last values. Called with s->lock held. */
static int64_t take_row(pcg_sampler *s, bool all)
{
    int64_t now = monotonic_ns();
    s->row[0] = now;
    pcg_reader *r = s->reader;
    pthread_mutex_lock(&r->lock); /* a reader closed meanwhile has no sources left */
    for (size_t i = 0; i < r->nsources; i++) {
        if (!due(&s->until[i], s->every[i], all) || r->sources[i].fd < 0)
            continue;
        int rc = pcg_reader_read_source(r, i, s->row + 1);
        if (rc != 0) {
            atomic_fetch_add_explicit(&s->read_errors, 1, memory_order_relaxed);
            atomic_store_explicit(&s->last_error, rc, memory_order_relaxed);
            atomic_store_explicit(&s->last_error_source, (int)i, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&r->lock);
    int rc = 0;
    /* due() first: it keeps the clock's schedule whether or not a span is open */
    bool clock_cpu_due = due(&s->clock_cpu_until, s->clock_cpu_every, all) ||
                         atomic_load_explicit(&s->open_spans, memory_order_relaxed) > 0;
    if (s->has_clock_cpu && clock_cpu_due)
        rc = pcg_process_clock_read(&s->clock_cpu, s->row + 1);
    if (s->has_clock_rusage && due(&s->clock_rusage_until, s->clock_rusage_every, all)) {
        int rc_rusage = pcg_process_clock_read(&s->clock_rusage, s->row + 1);
        if (rc == 0)
            rc = rc_rusage;
    }
    if (rc != 0) {
        atomic_fetch_add_explicit(&s->read_errors, 1, memory_order_relaxed);
        atomic_store_explicit(&s->last_error, rc, memory_order_relaxed);
        atomic_store_explicit(&s->last_error_source, -1, memory_order_relaxed);
    }
    bool gpus_due = s->ngpus > 0 && due(&s->gpu_until, s->gpu_every, all);
    for (size_t g = 0; gpus_due && g < s->ngpus; g++) {
        int rc = pcg_gpu_read(s->gpus[g], s->row + 1);
        if (rc != 0) {
            atomic_fetch_add_explicit(&s->read_errors, 1, memory_order_relaxed);
            atomic_store_explicit(&s->last_error, rc, memory_order_relaxed);
            atomic_store_explicit(&s->last_error_source, (int)(s->reader->nsources + g),
                                  memory_order_relaxed);
        }
    }
    pcg_ring_push(s->ring, s->row);
    /* After the push: a span that sees this position here copied a row holding the clock
     * (one that sees an older position reads the clock itself, which is only slower). */
    if (s->has_clock_cpu && clock_cpu_due)
        atomic_store_explicit(&s->clock_cpu_pos,
                              atomic_load_explicit(&s->ring->committed, memory_order_relaxed) - 1,
                              memory_order_release);
    /* Only the holder of s->lock writes it: a plain increment, published for readers. */
    atomic_store_explicit(&s->samples,
                          atomic_load_explicit(&s->samples, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return now;
}

/* Counts a wake-up late_ns after its deadline in the histogram and the maximum. */
static void record_lateness(pcg_sampler *s, int64_t late_ns)
{
    uint64_t late = late_ns > 0 ? (uint64_t)late_ns : 0;
    uint64_t bucket = late / 1000;
    if (bucket > PCG_LATENESS_BUCKETS)
        bucket = PCG_LATENESS_BUCKETS;
    /* Only the thread writes these: plain increments, published for readers. */
    atomic_store_explicit(&s->lateness_us[bucket],
                          atomic_load_explicit(&s->lateness_us[bucket], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (late > atomic_load_explicit(&s->lateness_max_ns, memory_order_relaxed))
        atomic_store_explicit(&s->lateness_max_ns, late, memory_order_relaxed);
}

_Static_assert(sizeof(_Atomic int) == sizeof(uint32_t), "the state is a futex word");

/* Returns true at deadline (CLOCK_MONOTONIC ns), or false as soon as the sampler is asked
 * to stop. The thread waits on the state word itself (FUTEX_WAIT_BITSET: an absolute
 * CLOCK_MONOTONIC deadline), which every transition wakes: one system call a tick, as
 * clock_nanosleep, where a condition variable adds a lock and its own bookkeeping. The
 * kernel sleeps only while the state is still RUNNING, so no transition is missed. */
static bool sleep_until(pcg_sampler *s, int64_t deadline)
{
    struct timespec ts = {deadline / (int64_t)NS_PER_SEC, deadline % (int64_t)NS_PER_SEC};
    while (atomic_load_explicit(&s->state, memory_order_acquire) == PCG_SAMPLER_RUNNING) {
        if (syscall(SYS_futex, (uint32_t *)&s->state, FUTEX_WAIT_BITSET_PRIVATE,
                    (uint32_t)PCG_SAMPLER_RUNNING, &ts, NULL, FUTEX_BITSET_MATCH_ANY) != 0 &&
            errno == ETIMEDOUT)
            break;
        /* woken by a transition (or the state had changed, or a spurious wake-up): look
         * at the state again */
    }
    return atomic_load_explicit(&s->state, memory_order_acquire) == PCG_SAMPLER_RUNNING;
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
    while (sleep_until(s, deadline)) {
        pthread_mutex_lock(&s->lock);
        int64_t woke = take_row(s, false);
        s->tick++;
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

/* Moves the sampler to state and wakes everyone waiting on a transition. Called with
 * state_lock held. */
static void set_state(pcg_sampler *s, enum pcg_sampler_state state)
{
    atomic_store(&s->state, state);
    pthread_cond_broadcast(&s->state_changed);
    syscall(SYS_futex, (uint32_t *)&s->state, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* Returns 0 with both locks held when the sampler is idle, so its configuration may
 * change; -EBUSY while running or -ESHUTDOWN once closed, with no lock held. */
static int lock_idle(pcg_sampler *s)
{
    pthread_mutex_lock(&s->state_lock);
    int state = atomic_load(&s->state);
    if (state != PCG_SAMPLER_IDLE) {
        pthread_mutex_unlock(&s->state_lock);
        return state == PCG_SAMPLER_CLOSED ? -ESHUTDOWN : -EBUSY;
    }
    pthread_mutex_lock(&s->lock);
    return 0;
}

/* Releases what lock_idle took. */
static void unlock_idle(pcg_sampler *s)
{
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->state_lock);
}

/* Returns 0 after making the sampler read through reader, or -EINVAL / -EBUSY /
 * -ESHUTDOWN. Under s->lock: no row is being read through the old one meanwhile. */
int pcg_sampler_set_reader(pcg_sampler *s, pcg_reader *reader)
{
    int rc = lock_idle(s);
    if (rc != 0)
        return rc;
    if (reader->ncolumns != s->reader->ncolumns)
        rc = -EINVAL;
    else
        s->reader = reader;
    unlock_idle(s);
    return rc;
}

/* Returns 0 after giving the sampler GPU groups read on every Nth tick, or -EBUSY while
 * running / -ESHUTDOWN once closed. */
int pcg_sampler_set_gpus(pcg_sampler *s, pcg_gpu **gpus, size_t ngpus, uint32_t every)
{
    int rc = lock_idle(s);
    if (rc != 0)
        return rc;
    s->gpus = gpus;
    s->ngpus = ngpus;
    s->gpu_every = every > 0 ? every : 1;
    s->gpu_until = ticks_until(s->tick, s->gpu_every);
    unlock_idle(s);
    return 0;
}

/* Returns 0 after binding this process's CPU clocks to row columns in their two groups,
 * or -EBUSY while running / -ESHUTDOWN once closed. */
int pcg_sampler_set_process_clock(pcg_sampler *s, const pcg_process_clock *clock,
                                  uint32_t cpu_every, uint32_t rusage_every)
{
    int rc = lock_idle(s);
    if (rc != 0)
        return rc;
    s->clock_cpu = (pcg_process_clock){clock->cpu_usec, PCG_CLOCK_NO_COLUMN,
                                       PCG_CLOCK_NO_COLUMN, PCG_CLOCK_NO_COLUMN};
    s->clock_rusage = (pcg_process_clock){PCG_CLOCK_NO_COLUMN, clock->utime_usec,
                                          clock->stime_usec, clock->max_rss_bytes};
    s->has_clock_cpu = clock->cpu_usec != PCG_CLOCK_NO_COLUMN;
    s->has_clock_rusage = clock->utime_usec != PCG_CLOCK_NO_COLUMN ||
                          clock->stime_usec != PCG_CLOCK_NO_COLUMN ||
                          clock->max_rss_bytes != PCG_CLOCK_NO_COLUMN;
    s->clock_cpu_every = cpu_every > 0 ? cpu_every : 1;
    s->clock_rusage_every = rusage_every > 0 ? rusage_every : 1;
    s->clock_cpu_until = ticks_until(s->tick, s->clock_cpu_every);
    atomic_store(&s->clock_cpu_pos, UINT64_MAX); /* rows before held another binding */
    s->clock_rusage_until = ticks_until(s->tick, s->clock_rusage_every);
    unlock_idle(s);
    return 0;
}

/* Returns 0 after starting the thread, -EALREADY if running, -ESHUTDOWN once closed, or
 * -errno from pthread. */
int pcg_sampler_start(pcg_sampler *s)
{
    int rc = 0;
    pthread_mutex_lock(&s->state_lock);
    while (atomic_load(&s->state) == PCG_SAMPLER_STOPPING) /* let that stop finish first */
        pthread_cond_wait(&s->state_changed, &s->state_lock);
    switch (atomic_load(&s->state)) {
    case PCG_SAMPLER_CLOSED:
        rc = -ESHUTDOWN;
        break;
    case PCG_SAMPLER_RUNNING:
        rc = -EALREADY;
        break;
    default: {
        /* Block signals in the thread so that Python's handlers keep running in the main
         * one. The state is RUNNING before the thread can look at it. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        set_state(s, PCG_SAMPLER_RUNNING);
        rc = -pthread_create(&s->thread, NULL, run, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            set_state(s, PCG_SAMPLER_IDLE);
    }
    }
    pthread_mutex_unlock(&s->state_lock);
    return rc;
}

/* Returns 0 after stopping and joining the thread, or -EALREADY when it was not running.
 * Called with state_lock held; returns with it held (released while joining). */
static int stop_locked(pcg_sampler *s)
{
    while (atomic_load(&s->state) == PCG_SAMPLER_STOPPING) /* another caller is joining */
        pthread_cond_wait(&s->state_changed, &s->state_lock);
    if (atomic_load(&s->state) != PCG_SAMPLER_RUNNING)
        return -EALREADY;
    set_state(s, PCG_SAMPLER_STOPPING); /* wakes the thread, and makes this caller the joiner */
    pthread_mutex_unlock(&s->state_lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->state_lock);
    set_state(s, PCG_SAMPLER_IDLE);
    return 0;
}

/* Returns 0 after asking the thread to stop and joining it, or -EALREADY. */
int pcg_sampler_stop(pcg_sampler *s)
{
    pthread_mutex_lock(&s->state_lock);
    int rc = stop_locked(s);
    pthread_mutex_unlock(&s->state_lock);
    return rc;
}

/* Returns 0 after stopping the thread, waiting for sample_now calls in flight and marking
 * the sampler closed, or -EALREADY. */
int pcg_sampler_close(pcg_sampler *s)
{
    pthread_mutex_lock(&s->state_lock);
    /* stop_locked releases the lock while it joins: a start() may slip in; stop again. */
    while (atomic_load(&s->state) != PCG_SAMPLER_CLOSED && stop_locked(s) == 0)
        ;
    int rc = atomic_load(&s->state) == PCG_SAMPLER_CLOSED ? -EALREADY : 0;
    set_state(s, PCG_SAMPLER_CLOSED);
    pthread_mutex_unlock(&s->state_lock);
    /* A sample_now that took the row lock before the state changed finishes first; any
     * later one sees CLOSED. */
    pthread_mutex_lock(&s->lock);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Returns true while the thread runs (also while it is being stopped). */
bool pcg_sampler_running(pcg_sampler *s)
{
    int state = atomic_load(&s->state);
    return state == PCG_SAMPLER_RUNNING || state == PCG_SAMPLER_STOPPING;
}

/* Returns the timestamp of a row read now, in the calling thread, or -ESHUTDOWN. */
int64_t pcg_sampler_sample_now(pcg_sampler *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t t = atomic_load(&s->state) == PCG_SAMPLER_CLOSED ? -ESHUTDOWN : take_row(s, true);
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* Returns the timestamp of a row read now, after copying it into out and its position, or
 * -ESHUTDOWN once the sampler is closed (out is left as it was). */
int64_t pcg_sampler_sample_into(pcg_sampler *s, int64_t *out, uint64_t *pos)
{
    pthread_mutex_lock(&s->lock);
    int64_t t = -ESHUTDOWN;
    if (atomic_load(&s->state) != PCG_SAMPLER_CLOSED) {
        t = take_row(s, true);
        memcpy(out, s->row, s->ring->width * sizeof *out);
        *pos = atomic_load_explicit(&s->ring->committed, memory_order_relaxed) - 1;
    }
    pthread_mutex_unlock(&s->lock);
    return t;
}

/* Returns how many reads failed after filling every source's buffer and reading the bound
 * clocks into a scratch row, parsing nothing. */
size_t pcg_sampler_fill(pcg_sampler *s)
{
    pthread_mutex_lock(&s->lock);
    size_t failed = pcg_reader_fill(s->reader);
    int64_t scratch[4];
    const uint32_t none = PCG_CLOCK_NO_COLUMN;
    pcg_process_clock cpu = {0, none, none, none}, rusage = {none, 1, none, none};
    if (s->has_clock_cpu && pcg_process_clock_read(&cpu, scratch) != 0)
        failed++;
    if (s->has_clock_rusage && pcg_process_clock_read(&rusage, scratch) != 0)
        failed++;
    pthread_mutex_unlock(&s->lock);
    return failed;
}

/* Returns 0 after reading the process CPU clock into row (timestamp first), a copy of the
 * row at pos, or 1 when that row read it itself or it is not sampled. The clock's binding
 * changes only while no thread runs. */
int pcg_sampler_refresh_cpu_clock(const pcg_sampler *s, int64_t *row, uint64_t pos)
{
    if (!s->has_clock_cpu ||
        atomic_load_explicit(&s->clock_cpu_pos, memory_order_acquire) == pos)
        return 1;
    return pcg_process_clock_read(&s->clock_cpu, row + 1);
}

/* Returns nothing; counts a non-exact span opened (the thread then reads the CPU clock
 * on every tick). */
void pcg_sampler_span_opened(pcg_sampler *s)
{
    atomic_fetch_add_explicit(&s->open_spans, 1, memory_order_relaxed);
}

/* Returns nothing; counts a span that pcg_sampler_span_opened counted as ended. */
void pcg_sampler_span_closed(pcg_sampler *s)
{
    atomic_fetch_sub_explicit(&s->open_spans, 1, memory_order_relaxed);
}

/* Returns the running thread's CPU time in ns, or -ESRCH when no thread runs. The state
 * lock keeps the thread from being joined meanwhile. */
int64_t pcg_sampler_thread_cpu_ns(pcg_sampler *s)
{
    int64_t ns = -ESRCH;
    pthread_mutex_lock(&s->state_lock);
    clockid_t clock;
    struct timespec ts;
    if (atomic_load(&s->state) == PCG_SAMPLER_RUNNING &&
        pthread_getcpuclockid(s->thread, &clock) == 0 && clock_gettime(clock, &ts) == 0)
        ns = (int64_t)ts.tv_sec * (int64_t)NS_PER_SEC + ts.tv_nsec;
    pthread_mutex_unlock(&s->state_lock);
    return ns;
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
    uint64_t max_ns = atomic_load_explicit(&s->lateness_max_ns, memory_order_relaxed);
    for (int b = 0; b < PCG_LATENESS_BUCKETS; b++) {
        seen += atomic_load_explicit(&s->lateness_us[b], memory_order_relaxed);
        if (seen > rank) { /* the bucket's upper edge, which no quantile exceeds the max by */
            uint64_t edge_ns = (uint64_t)(b + 1) * 1000;
            return edge_ns < max_ns ? edge_ns : max_ns;
        }
    }
    return max_ns;
}

/* Closes the sampler if open and frees what init allocated; safe to call twice. */
void pcg_sampler_destroy(pcg_sampler *s)
{
    if (s->row == NULL)
        return;
    pcg_sampler_close(s);
    pthread_mutex_lock(&registry_lock);
    for (pcg_sampler **p = &registry; *p != NULL; p = &(*p)->next_registered) {
        if (*p == s) {
            *p = s->next_registered;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->state_lock);
    pthread_cond_destroy(&s->state_changed);
    free(s->every);
    free(s->until);
    free(s->row);
    free((void *)s->lateness_us);
    s->every = NULL;
    s->until = NULL;
    s->row = NULL;
    s->lateness_us = NULL;
}
