/* The floor for a sampler thread's own cost: a thread that wakes on absolute
 * CLOCK_MONOTONIC deadlines at a given rate and preads one small file, nothing else.
 * Usage: bare_thread HZ SECONDS FILE; prints the thread's CPU seconds per second. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static long period_ns;
static int fd;

static void *run(void *arg)
{
    (void)arg;
    char buf[256];
    struct timespec t;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    clock_gettime(CLOCK_MONOTONIC, &t);
    while (!atomic_load(&stop)) {
        t.tv_nsec += period_ns;
        while (t.tv_nsec >= 1000000000L) {
            t.tv_nsec -= 1000000000L;
            t.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        if (pread(fd, buf, sizeof buf, 0) < 0)
            return NULL;
    }
    return NULL;
}

/* Returns the CPU seconds a clock (a thread's) has counted. */
static double cpu_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    period_ns = (long)(1e9 / atof(argv[1]));
    double seconds = atof(argv[2]);
    fd = open(argv[3], O_RDONLY);
    if (fd < 0)
        return 1;
    pthread_t thread;
    clockid_t clock;
    pthread_create(&thread, NULL, run, NULL);
    if (pthread_getcpuclockid(thread, &clock) != 0)
        return 1;
    double before = cpu_s(clock);
    struct timespec nap = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&nap, NULL);
    double used = cpu_s(clock) - before; /* the thread's own, as the sampler's is measured */
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    printf("%.6f\n", used / seconds);
    return 0;
}
