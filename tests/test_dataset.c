/* test_dataset.c: llm.c token shards (write, read, every malformed case) and deterministic
 * batches (dataset.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/dataset.h"
#include "util.h"

/* A valid shard image with n tokens t[i] = (i * 7919) & 0xffff. */
static unsigned char *make_image(int n, size_t *size) {
    *size = 1024 + 2 * (size_t)n;
    unsigned char *b = calloc(1, *size);
    uint32_t h[3] = {20240520u, 1u, (uint32_t)n};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) b[4 * i + j] = (unsigned char)(h[i] >> (8 * j));
    for (int i = 0; i < n; i++) {
        uint16_t t = (uint16_t)((i * 7919) & 0xffff);
        b[1024 + 2 * i] = (unsigned char)t;
        b[1024 + 2 * i + 1] = (unsigned char)(t >> 8);
    }
    return b;
}

static void test_write_read_roundtrip(void **state) {
    (void)state;
    enum { N = 5000 };
    uint16_t *tok = malloc(N * sizeof *tok);
    for (int i = 0; i < N; i++) tok[i] = (uint16_t)((i * 7919) & 0xffff);
    char p[512];
    util_path(p, sizeof p, "a.bin");
    assert_int_equal(hs_shard_write(p, tok, N), HS_OK);
    /* The bytes are exactly the llm.c layout. */
    size_t n;
    unsigned char *got = (unsigned char *)util_read_file(p, &n);
    size_t en;
    unsigned char *expect = make_image(N, &en);
    assert_int_equal(n, en);
    assert_memory_equal(got, expect, n);
    free(got);
    free(expect);

    hs_dataset *d = NULL;
    assert_int_equal(hs_dataset_open(p, &d), HS_OK);
    assert_int_equal(hs_dataset_size(d), N);
    assert_memory_equal(hs_dataset_tokens(d), tok, N * sizeof *tok);
    int mx = 0;
    for (int i = 0; i < N; i++) mx = tok[i] > mx ? tok[i] : mx;
    assert_int_equal(hs_dataset_max_token(d), mx);
    hs_dataset_close(d);
    free(tok);
}

static void expect_bad(const char *name, const void *bytes, size_t n, hs_status want,
                       const char *needle) {
    char p[512];
    util_path(p, sizeof p, name);
    util_write_file(p, bytes, n);
    hs_dataset *d = (hs_dataset *)0x1;
    assert_int_equal(hs_dataset_open(p, &d), want);
    assert_null(d);
    if (needle && !strstr(hs_last_error(), needle)) {
        print_error("message '%s' lacks '%s'\n", hs_last_error(), needle);
        fail();
    }
}

static void test_bad_shards(void **state) {
    (void)state;
    size_t n;
    unsigned char *img = make_image(100, &n);

    expect_bad("empty.bin", img, 0, HS_ERR_CORRUPT, "empty");
    expect_bad("short_header.bin", img, 500, HS_ERR_CORRUPT, "truncated");
    expect_bad("truncated.bin", img, n - 3, HS_ERR_CORRUPT, "truncated");

    unsigned char *big = malloc(n + 2);
    memcpy(big, img, n);
    big[n] = big[n + 1] = 7;
    expect_bad("extra.bin", big, n + 2, HS_ERR_CORRUPT, "mismatch");
    free(big);

    img[0] ^= 1;
    expect_bad("magic.bin", img, n, HS_ERR_CORRUPT, "magic");
    img[0] ^= 1;
    img[4] = 2; /* llm.c's version 2 (uint32 tokens) */
    expect_bad("version.bin", img, n, HS_ERR_CORRUPT, "version");
    img[4] = 1;
    img[8] = 0xff;
    img[9] = 0xff;
    img[10] = 0xff;
    img[11] = 0xff; /* count = 2^32 - 1 */
    expect_bad("hugecount.bin", img, n, HS_ERR_CORRUPT, NULL);
    size_t zn;
    unsigned char *zero = make_image(0, &zn);
    expect_bad("zero.bin", zero, zn, HS_ERR_CORRUPT, "no tokens");
    free(zero);
    free(img);

    hs_dataset *d = NULL;
    char p[512];
    util_path(p, sizeof p, "does-not-exist.bin");
    assert_int_equal(hs_dataset_open(p, &d), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "does-not-exist.bin"));
}

static void test_parse_bounds(void **state) {
    (void)state;
    /* Every prefix of a valid image is rejected without reading past its end (ASan checks). */
    size_t n;
    unsigned char *img = make_image(40, &n);
    for (size_t k = 0; k < n; k++) {
        unsigned char *pre = malloc(k ? k : 1);
        memcpy(pre, img, k);
        int64_t cnt;
        const unsigned char *tok;
        assert_int_equal(hs_shard_parse("x", pre, k, &cnt, &tok), HS_ERR_CORRUPT);
        free(pre);
    }
    int64_t cnt;
    const unsigned char *tok;
    assert_int_equal(hs_shard_parse("x", img, n, &cnt, &tok), HS_OK);
    assert_int_equal(cnt, 40);
    assert_ptr_equal(tok, img + 1024);
    free(img);
}

static void test_directory(void **state) {
    (void)state;
    char dir[512], p[600];
    util_path(dir, sizeof dir, "shards");
    assert_int_equal(mkdir(dir, 0755), 0);
    hs_dataset *d = NULL;
    assert_int_equal(hs_dataset_open(dir, &d), HS_ERR_IO); /* no shards */
    assert_non_null(strstr(hs_last_error(), "no .bin"));

    uint16_t a[3] = {1, 2, 3}, b[2] = {40000, 5}, c[1] = {9};
    snprintf(p, sizeof p, "%s/train_001.bin", dir);
    assert_int_equal(hs_shard_write(p, b, 2), HS_OK);
    snprintf(p, sizeof p, "%s/train_000.bin", dir);
    assert_int_equal(hs_shard_write(p, a, 3), HS_OK);
    snprintf(p, sizeof p, "%s/train_002.bin", dir);
    assert_int_equal(hs_shard_write(p, c, 1), HS_OK);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    util_write_file(p, "hello", 5);
    assert_int_equal(hs_dataset_open(dir, &d), HS_OK);
    uint16_t want[6] = {1, 2, 3, 40000, 5, 9};
    assert_int_equal(hs_dataset_size(d), 6);
    assert_memory_equal(hs_dataset_tokens(d), want, sizeof want);
    assert_int_equal(hs_dataset_max_token(d), 40000);
    hs_dataset_close(d);

    /* One bad shard spoils the directory, and the message names it. */
    snprintf(p, sizeof p, "%s/train_003.bin", dir);
    util_write_file(p, "garbage", 7);
    assert_int_equal(hs_dataset_open(dir, &d), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "train_003.bin"));
}

static void test_batches(void **state) {
    (void)state;
    enum { N = 10000, B = 4, T = 16 };
    uint16_t *tok = malloc(N * sizeof *tok);
    for (int i = 0; i < N; i++) tok[i] = (uint16_t)i; /* token = position: windows are visible */
    hs_dataset *d;
    assert_int_equal(hs_dataset_from_tokens(tok, N, &d), HS_OK);
    free(tok);
    int32_t in1[B * T], tg1[B * T], in2[B * T], tg2[B * T];
    assert_int_equal(hs_dataset_batch(d, 42, 7, 0, B, T, in1, tg1), HS_OK);
    assert_int_equal(hs_dataset_batch(d, 42, 7, 0, B, T, in2, tg2), HS_OK);
    assert_memory_equal(in1, in2, sizeof in1);
    assert_memory_equal(tg1, tg2, sizeof tg1);
    for (int b = 0; b < B; b++) {
        int32_t s = in1[b * T];
        assert_true(s >= 0 && s + T < N);
        for (int t = 0; t < T; t++) {
            assert_int_equal(in1[b * T + t], s + t);
            assert_int_equal(tg1[b * T + t], s + t + 1);
        }
    }
    /* Every coordinate of (seed, step, micro) changes the windows. */
    assert_int_equal(hs_dataset_batch(d, 43, 7, 0, B, T, in2, tg2), HS_OK);
    assert_memory_not_equal(in1, in2, sizeof in1);
    assert_int_equal(hs_dataset_batch(d, 42, 8, 0, B, T, in2, tg2), HS_OK);
    assert_memory_not_equal(in1, in2, sizeof in1);
    assert_int_equal(hs_dataset_batch(d, 42, 7, 1, B, T, in2, tg2), HS_OK);
    assert_memory_not_equal(in1, in2, sizeof in1);
    /* A row does not depend on B (row b of a larger batch is the same window). */
    int32_t in8[8 * T], tg8[8 * T];
    assert_int_equal(hs_dataset_batch(d, 42, 7, 0, 8, T, in8, tg8), HS_OK);
    assert_memory_equal(in1, in8, sizeof in1);

    /* Starts spread over the whole data: over many steps, both halves are visited. */
    int lo = 0, hi = 0;
    for (int s = 0; s < 200; s++) {
        assert_int_equal(hs_dataset_batch(d, 1, s, 0, 1, T, in2, tg2), HS_OK);
        if (in2[0] < N / 2) lo++; else hi++;
    }
    assert_true(lo > 60 && hi > 60);

    /* Eval batches: consecutive windows in order, wrapping around. */
    int64_t n_windows = (N - 1) / T;
    assert_int_equal(hs_dataset_eval_batch(d, 0, B, T, in2, tg2), HS_OK);
    for (int b = 0; b < B; b++) {
        assert_int_equal(in2[b * T], b * T);
        assert_int_equal(tg2[b * T + T - 1], b * T + T);
    }
    int64_t k = n_windows / B + 1; /* past the end: wraps */
    assert_int_equal(hs_dataset_eval_batch(d, k, B, T, in2, tg2), HS_OK);
    for (int b = 0; b < B; b++)
        assert_int_equal(in2[b * T], ((k * B + b) % n_windows) * T);

    assert_int_equal(hs_dataset_batch(d, 1, 0, 0, 0, T, in2, tg2), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dataset_eval_batch(d, -1, B, T, in2, tg2), HS_ERR_INVALID_ARG);
    hs_dataset_close(d);

    /* Exactly T+1 tokens: one window, always at 0. */
    uint16_t small[T + 1];
    for (int i = 0; i <= T; i++) small[i] = (uint16_t)(100 + i);
    assert_int_equal(hs_dataset_from_tokens(small, T + 1, &d), HS_OK);
    assert_int_equal(hs_dataset_batch(d, 9, 3, 0, 2, T, in2, tg2), HS_OK);
    assert_int_equal(in2[0], 100);
    assert_int_equal(in2[T], 100);
    assert_int_equal(tg2[T - 1], 100 + T);
    assert_int_equal(hs_dataset_eval_batch(d, 5, 2, T, in2, tg2), HS_OK);
    assert_int_equal(in2[T], 100);
    hs_dataset_close(d);
    assert_int_equal(hs_dataset_from_tokens(small, T, &d), HS_OK);
    assert_int_equal(hs_dataset_batch(d, 9, 3, 0, 1, T, in2, tg2), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "too few"));
    hs_dataset_close(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_roundtrip),
        cmocka_unit_test(test_bad_shards),
        cmocka_unit_test(test_parse_bounds),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
