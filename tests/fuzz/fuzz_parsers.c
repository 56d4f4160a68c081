/* Fuzz target for the C core's parsers and sources. Oracle: a source that parsed other
 * content before (warm) gives exactly what a fresh source gives, on moved and repeated
 * keys too.
 *
 * With clang: clang -fsanitize=fuzzer,address,undefined -DPCG_LIBFUZZER ... (libFuzzer).
 * With gcc: built with -fsanitize=address,undefined, main() below mutates the seed files
 * given on the command line with a fixed-seed generator, so a run is reproducible. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "source.h"

static const char *const KEYS[PCG_FMT_COUNT][3] = {
    [PCG_FMT_FLAT_KEYED] = {"usage_usec", "a", "total_rss"},
    [PCG_FMT_COLON_KEYED] = {"MemTotal", "VmRSS", "a"},
    [PCG_FMT_VALUE] = {"", "", ""},
    [PCG_FMT_QUOTA_V1] = {"", "", ""},
    [PCG_FMT_CPU_MAX] = {"quota", "period", "quota"},
    [PCG_FMT_PSI] = {"some", "full", "some"},
    [PCG_FMT_PID_STAT] = {"14", "15", "24"},
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "property violated: %s\n", what);
        abort();
    }
}

/* Checks that a source that parsed other content before (warm: it remembers where keys
 * were) gives exactly what a fresh source gives for the same content. */
static void check_warm_equals_fresh(pcg_source *warm, const pcg_field_spec *specs,
                                    const char *text, size_t len)
{
    pcg_source fresh;
    check(pcg_source_init(&fresh, warm->format, specs, 3) == 0, "init fresh");
    check(pcg_source_set_content(&fresh, text, len) == 0, "set content");
    int rc_fresh = pcg_source_parse(&fresh);
    check(pcg_source_set_content(warm, text, len) == 0, "set content");
    int rc_warm = pcg_source_parse(warm);
    check(rc_warm == rc_fresh, "warm and fresh parses accept the same content");
    if (rc_warm != 0)
        check(warm->error_line == fresh.error_line, "warm and fresh report the same line");
    for (int i = 0; rc_warm == 0 && i < 3; i++) {
        check(warm->values[i].kind == fresh.values[i].kind, "warm and fresh: same kind");
        check(warm->values[i].kind != PCG_VAL_NUMBER ||
                  warm->values[i].number == fresh.values[i].number,
              "warm and fresh: same value");
    }
    pcg_source_close(&fresh);
}

/* Returns the length of a variant of text[0, len) in out (capacity 2 * len + 2): its
 * lines moved, or one line repeated, as a file that changed between two reads. */
static size_t vary(const char *text, size_t len, unsigned how, char *out)
{
    const char *nl = memchr(text, '\n', len);
    size_t first = nl != NULL ? (size_t)(nl + 1 - text) : len; /* the first line, with \n */
    size_t n = 0;
    switch (how % 4) {
    case 0: /* the first line dropped: every key one line up */
        memcpy(out, text + first, len - first);
        return len - first;
    case 1: /* the first line overwritten by another (chosen by how) with another last
             * byte: the keys below keep their lines, and a key may now come twice */
    {
        size_t lines = 0, start = 0, end = len;
        for (size_t i = 0; i < len; i++)
            lines += text[i] == '\n';
        size_t pick = lines ? (how / 4) % lines : 0;
        for (size_t i = 0, line = 0; i < len; i++) {
            if (text[i] != '\n')
                continue;
            if (line == pick) {
                end = i;
                break;
            }
            start = i + 1;
            line++;
        }
        memcpy(out, text + start, end - start);
        n = end - start;
        if (n > 0)
            out[n - 1] = out[n - 1] >= '0' && out[n - 1] < '9' ? out[n - 1] + 1 : '0';
        out[n++] = '\n';
        memcpy(out + n, text + first, len - first);
        return n + len - first;
    }
    case 2: /* the first line repeated at the end */
        memcpy(out, text, len);
        n = len;
        if (n > 0 && out[n - 1] != '\n')
            out[n++] = '\n';
        memcpy(out + n, text, first);
        return n + first;
    default: /* the first line repeated after the second */
    {
        const char *nl2 = first < len ? memchr(text + first, '\n', len - first) : NULL;
        size_t second = nl2 != NULL ? (size_t)(nl2 + 1 - text) : len;
        memcpy(out, text, second);
        n = second;
        if (n > 0 && out[n - 1] != '\n')
            out[n++] = '\n';
        memcpy(out + n, text, first);
        n += first;
        memcpy(out + n, text + second, len - second);
        return n + len - second;
    }
    }
}

static unsigned next_variant;

/* Parses data (first byte: the format) through one source, then a variant of it through
 * the same (warm) source and through a fresh one: both must give the same answer. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0)
        return 0;
    enum pcg_format format = (enum pcg_format)(data[0] % PCG_FMT_COUNT);
    pcg_field_spec specs[3];
    for (int i = 0; i < 3; i++)
        specs[i] = (pcg_field_spec){KEYS[format][i], 1 + (data[0] >> 4), 1 + (data[0] & 3),
                                    (data[0] & 8) ? 4096 : 0, (uint32_t)i};
    pcg_source s;
    check(pcg_source_init(&s, format, specs, 3) == 0, "init");
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *variant = malloc(2 * len + 2);
    for (int pass = 0; pass < 2; pass++) {
        size_t lines = 1;
        for (size_t i = 0; i < len; i++)
            lines += text[i] == '\n';
        if (pass == 1) {
            check_warm_equals_fresh(&s, specs, text, len);
        } else {
            check(pcg_source_set_content(&s, text, len) == 0, "set content");
            pcg_source_parse(&s);
        }
        int rc = pcg_source_parse(&s); /* and once more, warm on the same content */
        check(rc == 0 || rc == -PCG_EPARSE, "parse returns 0 or -EBADMSG");
        if (rc != 0)
            check(s.error_line >= 1 && (size_t)s.error_line <= lines, "error line in range");
        int64_t row[3];
        for (int i = 0; i < 3; i++) {
            row[i] = pcg_convert(&s.values[i], &s.fields[i]);
            check(rc != 0 || s.values[i].kind <= PCG_VAL_MAX, "value kind");
            check(s.values[i].kind != PCG_VAL_NUMBER || row[i] >= 0, "numbers are >= 0");
        }
        if (pass == 0) { /* the second pass meets moved or repeated keys */
            len = vary(text, len, (unsigned)(next_variant++ * 2654435761u >> 7), variant);
            text = variant;
        }
    }
    free(variant);
    pcg_source_close(&s);
    return 0;
}

#ifndef PCG_LIBFUZZER
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Returns a mutated copy of seed in out (capacity cap): flips, inserts, deletes, splices. */
static size_t mutate(const unsigned char *seed, size_t n, unsigned char *out, size_t cap)
{
    static const char interesting[] = "\n :=.-max0123456789()kB\tsome full total avg10";
    size_t len = n < cap ? n : cap;
    memcpy(out, seed, len);
    int edits = 1 + (int)(next_random() % 8);
    for (int e = 0; e < edits; e++) {
        size_t at = len ? next_random() % (len + 1) : 0;
        switch (next_random() % 5) {
        case 0:
            if (at < len)
                out[at] = (unsigned char)next_random();
            break;
        case 1:
            if (at < len)
                out[at] = (unsigned char)interesting[next_random() % (sizeof interesting - 1)];
            break;
        case 2:
            if (len < cap) {
                memmove(out + at + 1, out + at, len - at);
                out[at] = (unsigned char)interesting[next_random() % (sizeof interesting - 1)];
                len++;
            }
            break;
        case 3:
            if (at < len) {
                size_t k = 1 + next_random() % (len - at);
                memmove(out + at, out + at + k, len - at - k);
                len -= k;
            }
            break;
        default: /* repeat a digit run: long numbers, overflow */
            for (int r = 0; r < 12 && len < cap; r++) {
                memmove(out + at + 1, out + at, len - at);
                out[at] = '9';
                len++;
            }
        }
    }
    return len;
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Reads live files through a reader many times: the I/O path under the sanitizers. */
static void read_live(int argc, char **argv)
{
    pcg_reader r;
    check(pcg_reader_init(&r, (size_t)argc, (size_t)argc * 3) == 0, "reader init");
    for (int i = 0; i < argc; i++) {
        enum pcg_format format = (enum pcg_format)(argv[i][0] - '0');
        pcg_field_spec specs[3];
        for (int k = 0; k < 3; k++)
            specs[k] = (pcg_field_spec){KEYS[format][k], 1, 1, 0, (uint32_t)(i * 3 + k)};
        pcg_reader_open(&r, (size_t)i, argv[i] + 2, format, specs, 3);
    }
    int64_t *row = calloc((size_t)argc * 3 + 1, sizeof *row);
    for (int n = 0; n < 200; n++) {
        pcg_reader_read(&r, row);
        pcg_reader_fill(&r);
    }
    free(row);
    pcg_reader_destroy(&r);
}

/* Usage: fuzz_parsers ITERATIONS SEED... [-- FORMAT:PATH...] */
int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long iterations = atol(argv[1]);
    int nseeds = 0;
    unsigned char *seeds[256];
    size_t sizes[256];
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0 && nseeds < 256; i++) {
        seeds[nseeds] = read_file(argv[i], &sizes[nseeds]);
        if (seeds[nseeds] != NULL)
            nseeds++;
    }
    if (nseeds == 0)
        return 2;
    enum { CAP = 8192 };
    unsigned char *input = malloc(CAP + 1);
    for (long it = 0; it < iterations; it++) {
        int which = (int)(next_random() % (uint64_t)nseeds);
        input[0] = (unsigned char)next_random();
        size_t n = mutate(seeds[which], sizes[which], input + 1, CAP);
        LLVMFuzzerTestOneInput(input, n + 1);
    }
    if (i < argc)
        read_live(argc - i - 1, argv + i + 1);
    printf("%ld inputs, no property violated\n", iterations);
    for (int s = 0; s < nseeds; s++)
        free(seeds[s]);
    free(input);
    return 0;
}
#endif
