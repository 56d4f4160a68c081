/* Stress test of the sampler's lifecycle and the GPU history, for -fsanitize=thread (data
 * races) and -fsanitize=address,undefined (use after free). Each round starts a sampler
 * over a file and a fake NVML GPU, then at once: one thread starts and stops it, one
 * stops it, one takes rows with sample_now, one reads the reader directly, one copies
 * the ring and the GPU history (which must be in time order), and the main thread closes
 * the sampler and then the reader while they run. After close, start and sample_now must answer -ESHUTDOWN.
 *
 * Usage: stress_lifecycle ROUNDS FILE [LIBNVIDIA_ML] (FAKE_NVML_SCRIPT set for the fake) */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nvml.h"
#include "reader.h"
#include "ring.h"
#include "sampler.h"

enum { WIDTH = 3, CAPACITY = 256, HISTORY = 64 };

static pcg_reader reader;
static pcg_ring ring;
static pcg_sampler sampler;
static pcg_gpu gpu;
static int have_gpu;
static _Atomic int closed;
static _Atomic unsigned long long history_rows;

static void fail(const char *what)
{
    fprintf(stderr, "property violated: %s\n", what);
    abort();
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *start_stop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 40; i++) {
        int was_closed = atomic_load(&closed);
        int rc = pcg_sampler_start(&sampler);
        if (was_closed && rc != -ESHUTDOWN)
            fail("start after close did not answer -ESHUTDOWN");
        pause_us(50);
        pcg_sampler_stop(&sampler);
    }
    return NULL;
}

static void *stopper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 60; i++) {
        pcg_sampler_stop(&sampler);
        pause_us(30);
    }
    return NULL;
}

static void *sample_now(void *arg)
{
    (void)arg;
    for (int i = 0; i < 400; i++) {
        int was_closed = atomic_load(&closed);
        int64_t t = pcg_sampler_sample_now(&sampler);
        if (was_closed && t != -ESHUTDOWN)
            fail("sample_now after close took a row");
        if (!was_closed && t != -ESHUTDOWN && t <= 0)
            fail("sample_now returned a bad timestamp");
    }
    return NULL;
}

/* Reads the reader directly (as CGroup.read does) while the main thread closes it. */
static void *direct_reads(void *arg)
{
    (void)arg;
    int64_t row[WIDTH - 1];
    for (int i = 0; i < 400; i++) {
        size_t failed = pcg_reader_read(&reader, row);
        if (failed != 0 || (row[0] < 0 && row[0] != INT64_MIN))
            fail("a direct read failed or read a bad value");
    }
    return NULL;
}

static void *copier(void *arg)
{
    (void)arg;
    int64_t *rows = malloc(sizeof(int64_t) * WIDTH * CAPACITY);
    int64_t(*history)[2] = malloc(sizeof *history * HISTORY);
    for (int i = 0; i < 300; i++) {
        uint64_t first;
        uint64_t n = pcg_ring_copy(&ring, 0, rows, CAPACITY, &first);
        for (uint64_t r = 1; r < n; r++)
            if (rows[r * WIDTH] < rows[(r - 1) * WIDTH])
                fail("ring rows out of time order");
        if (!have_gpu)
            continue;
        for (int kind = 0; kind < PCG_GPU_HISTORY_KINDS; kind++) {
            int64_t h = pcg_gpu_history_copy(&gpu, kind, history, HISTORY);
            if (h < 0 || h > HISTORY)
                fail("history copy count");
            for (int64_t r = 1; r < h; r++)
                if (history[r][0] < history[r - 1][0])
                    fail("GPU history out of time order");
            atomic_fetch_add(&history_rows, (unsigned long long)h);
        }
        if (pcg_gpu_history_copy(&gpu, 2, history, HISTORY) != -EINVAL ||
            pcg_gpu_history_copy(&gpu, -1, history, HISTORY) != -EINVAL)
            fail("a history kind out of range was accepted");
    }
    free(rows);
    free(history);
    return NULL;
}

static void round_trip(const char *path, int round)
{
    pcg_field_spec spec[2] = {{"14", 1, 1, 0, 0}, {"24", 1, 1, 0, 1}};
    if (pcg_reader_init(&reader, 1, WIDTH - 1) != 0 ||
        pcg_reader_open(&reader, 0, path, PCG_FMT_PID_STAT, spec, 2) != 0 ||
        pcg_ring_init(&ring, CAPACITY, WIDTH) != 0 ||
        pcg_sampler_init(&sampler, &reader, &ring, 20000, NULL) != 0)
        fail("setup");
    pcg_gpu *gpus[1] = {&gpu};
    if (have_gpu && pcg_sampler_set_gpus(&sampler, gpus, 1, 1) != 0)
        fail("set_gpus");
    atomic_store(&closed, 0);
    if (pcg_sampler_start(&sampler) != 0)
        fail("start");
    pthread_t t[5];
    void *(*bodies[5])(void *) = {start_stop, stopper, sample_now, copier, direct_reads};
    for (int i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, bodies[i], NULL);
    pause_us(200 + 37 * (round % 40));
    pcg_sampler_close(&sampler);
    atomic_store(&closed, 1);
    if (pcg_sampler_running(&sampler))
        fail("running after close");
    pcg_reader_close(&reader); /* sample_now calls may still be coming: they must refuse */
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    if (pcg_sampler_close(&sampler) != -EALREADY)
        fail("a second close did not answer -EALREADY");
    pcg_sampler_destroy(&sampler);
    pcg_ring_free(&ring);
    pcg_reader_destroy(&reader);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long rounds = atol(argv[1]);
    pcg_nvml nvml;
    if (argc > 3) {
        uint32_t columns[PCG_GPU_NMETRICS];
        for (int m = 0; m < PCG_GPU_NMETRICS; m++)
            columns[m] = PCG_GPU_NO_COLUMN;
        if (pcg_nvml_load(&nvml, argv[3]) != 0 ||
            pcg_gpu_init(&gpu, &nvml, 0, columns, 0, HISTORY) != 0)
            fail("fake NVML");
        have_gpu = 1;
    }
    for (long r = 0; r < rounds; r++)
        round_trip(argv[2], (int)r);
    if (have_gpu) {
        pcg_gpu_destroy(&gpu);
        pcg_nvml_unload(&nvml);
    }
    printf("%ld rounds, %llu history rows checked, no property violated\n", rounds,
           (unsigned long long)atomic_load(&history_rows));
    return 0;
}
