/* Stress test of the ring: one writer pushes rows whose every value is derived from the
 * row's position while reader threads copy concurrently and check that no row they get
 * is torn, that positions are contiguous, and that nothing is returned out of order.
 * Run under -fsanitize=thread (data races) and -fsanitize=address,undefined. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <time.h>

#include "ring.h"
#include "sampler.h"

enum { WIDTH = 9, READERS = 4, CAPACITY = 64 };

static pcg_ring ring;
static _Atomic int done;
static _Atomic unsigned long long rows_checked;

static void *writer(void *arg)
{
    long n = *(long *)arg;
    int64_t row[WIDTH];
    for (long p = 0; p < n; p++) {
        for (int c = 0; c < WIDTH; c++)
            row[c] = p * WIDTH + c;
        pcg_ring_push(&ring, row);
    }
    atomic_store(&done, 1);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    int64_t *out = malloc(sizeof(int64_t) * WIDTH * CAPACITY);
    uint64_t last_first = 0;
    while (!atomic_load(&done)) {
        uint64_t first;
        uint64_t n = pcg_ring_copy(&ring, 0, out, CAPACITY, &first);
        if (n > 0 && first < last_first) {
            fprintf(stderr, "went back: %llu < %llu\n", (unsigned long long)first,
                    (unsigned long long)last_first);
            abort();
        }
        last_first = n > 0 ? first : last_first;
        for (uint64_t r = 0; r < n; r++)
            for (int c = 0; c < WIDTH; c++)
                if (out[r * WIDTH + c] != (int64_t)((first + r) * WIDTH + (uint64_t)c)) {
                    fprintf(stderr, "torn row %llu col %d: %lld\n",
                            (unsigned long long)(first + r), c, (long long)out[r * WIDTH + c]);
                    abort();
                }
        atomic_fetch_add(&rows_checked, n);
    }
    free(out);
    return NULL;
}

/* The sampler thread at 10 kHz, two threads taking rows with sample_now, and a reader
 * copying: timestamps must never decrease across what is copied. */
static pcg_sampler sampler;
static pcg_ring sampled;

static void *sample_now_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        pcg_sampler_sample_now(&sampler);
    return NULL;
}

static int run_sampler(const char *path)
{
    pcg_reader reader;
    pcg_field_spec spec[2] = {{"14", 1, 1, 0, 0}, {"24", 1, 1, 0, 1}};
    if (pcg_reader_init(&reader, 1, 2) != 0 || pcg_reader_open(&reader, 0, path, PCG_FMT_PID_STAT, spec, 2) != 0 ||
        pcg_ring_init(&sampled, 1024, 3) != 0 || pcg_sampler_init(&sampler, &reader, &sampled, 100000, NULL) != 0)
        return 2;
    pcg_sampler_start(&sampler);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, sample_now_loop, NULL);
    int64_t *out = malloc(sizeof(int64_t) * 3 * 1024);
    for (int round = 0; round < 200; round++) {
        uint64_t first, n = pcg_ring_copy(&sampled, 0, out, 1024, &first);
        for (uint64_t r = 1; r < n; r++)
            if (out[r * 3] < out[(r - 1) * 3] || out[r * 3 + 2] <= 0) {
                fprintf(stderr, "bad sampled row %llu\n", (unsigned long long)(first + r));
                abort();
            }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    pcg_sampler_stop(&sampler);
    printf("sampler: %llu rows, %llu read errors\n", (unsigned long long)atomic_load(&sampler.samples),
           (unsigned long long)atomic_load(&sampler.read_errors));
    int bad = atomic_load(&sampler.read_errors) != 0 || atomic_load(&sampler.samples) < 4000;
    pcg_sampler_destroy(&sampler);
    pcg_ring_free(&sampled);
    pcg_reader_destroy(&reader);
    free(out);
    return bad;
}

/* Usage: stress_ring ROWS [PID_STAT_FILE] */
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (pcg_ring_init(&ring, CAPACITY, WIDTH) != 0)
        return 2;
    pthread_t w, r[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    pthread_create(&w, NULL, writer, &n);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    printf("%ld rows pushed, %llu copied rows checked, %llu dropped\n", n,
           (unsigned long long)atomic_load(&rows_checked),
           (unsigned long long)atomic_load(&ring.dropped));
    pcg_ring_free(&ring);
    return argc > 2 ? run_sampler(argv[2]) : 0;
}
