/* test_safetensors.c: the safetensors writer and strict reader (safetensors.h): bit-identical
 * round trips, the exact on-disk layout, and every malformed case giving HS_ERR_CORRUPT (never a
 * crash: truncations at every length, random byte flips). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/fileio.h"
#include "train/safetensors.h"
#include "util.h"

static uint64_t rng_state = 12345;
static uint64_t rnd(void) { return util_splitmix64(&rng_state); }

/* A file image: 8-byte length, header, data. */
static unsigned char *image(const char *header, const void *data, size_t nd, size_t *n) {
    size_t nh = strlen(header);
    *n = 8 + nh + nd;
    unsigned char *b = malloc(*n);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)nh >> (8 * k));
    memcpy(b + 8, header, nh);
    if (nd) memcpy(b + 8 + nh, data, nd);
    return b;
}

static void expect_corrupt(const char *header, size_t nd, const char *needle) {
    unsigned char data[64];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)i;
    size_t n;
    unsigned char *b = image(header, data, nd, &n);
    hs_safetensors *st = (hs_safetensors *)0x1;
    hs_status s = hs_safetensors_parse(b, n, &st);
    if (s != HS_ERR_CORRUPT || (needle && !strstr(hs_last_error(), needle))) {
        print_error("header %s: status %d, message '%s' (want '%s')\n", header, s, hs_last_error(),
                    needle ? needle : "");
        fail();
    }
    assert_null(st);
    free(b);
}

static void test_roundtrip(void **state) {
    (void)state;
    float a[12];
    uint16_t bf[5] = {0x3f80, 0xbf80, 0x4000, 0x7f80, 0x0001};
    int32_t c[8] = {1, -2, 3, -4, 5, -6, 7, INT32_MIN};
    double sc = 3.25;
    for (int i = 0; i < 12; i++) a[i] = (float)i * 0.1f - 0.3f;
    a[5] = -0.0f;
    hs_st_tensor t[5] = {
        {.name = "model.embed_tokens.weight", .dtype = HS_DT_F32, .ndim = 2, .shape = {3, 4}, .data = a},
        {.name = "b\"quoted\\", .dtype = HS_DT_BF16, .ndim = 1, .shape = {5}, .data = bf},
        {.name = "c", .dtype = HS_DT_I32, .ndim = 3, .shape = {2, 2, 2}, .data = c},
        {.name = "scalar", .dtype = HS_DT_F64, .ndim = 0, .data = &sc},
        {.name = "empty", .dtype = HS_DT_F32, .ndim = 2, .shape = {0, 3}, .data = NULL},
    };
    const char *meta[4] = {"format", "pt", "note", "line\nbreak"};
    char p[512];
    util_path(p, sizeof p, "a.safetensors");
    assert_int_equal(hs_safetensors_write(p, t, 5, meta, 2), HS_OK);

    /* Layout: header length multiple of 8, space padded, data right after, back to back. */
    char *raw;
    size_t n;
    assert_int_equal(hs_file_read_all(p, 1 << 20, &raw, &n), HS_OK);
    uint64_t hn = 0;
    for (int k = 0; k < 8; k++) hn |= (uint64_t)(unsigned char)raw[k] << (8 * k);
    assert_int_equal(hn % 8, 0);
    size_t nd = 48 + 10 + 32 + 8;
    assert_int_equal(n, 8 + hn + nd);
    assert_memory_equal(raw + 8 + hn, a, 48);
    assert_memory_equal(raw + 8 + hn + 48, bf, 10);
    assert_int_equal(raw[8], '{');
    assert_non_null(strstr(raw + 8, "\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],"
                                     "\"data_offsets\":[0,48]}"));
    free(raw);

    hs_safetensors *st = NULL;
    assert_int_equal(hs_safetensors_open(p, &st), HS_OK);
    assert_int_equal(hs_safetensors_count(st), 5);
    assert_string_equal(hs_safetensors_meta(st, "format"), "pt");
    assert_string_equal(hs_safetensors_meta(st, "note"), "line\nbreak");
    assert_null(hs_safetensors_meta(st, "nope"));
    for (int i = 0; i < 5; i++) {
        const hs_st_tensor *r = hs_safetensors_find(st, t[i].name);
        assert_non_null(r);
        assert_int_equal(r->dtype, t[i].dtype);
        assert_int_equal(r->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) assert_int_equal(r->shape[d], t[i].shape[d]);
        if (r->nbytes) assert_memory_equal(r->data, t[i].data, r->nbytes);
        assert_ptr_equal(hs_safetensors_get(st, i)->name, r->name); /* file order = write order */
    }
    float back[12];
    int64_t shp[2] = {3, 4};
    assert_int_equal(hs_safetensors_read_f32(st, "model.embed_tokens.weight", 2, shp, back), HS_OK);
    assert_memory_equal(back, a, sizeof a); /* bit-identical, -0.0 included */
    float bfv[5];
    int64_t s5 = 5;
    assert_int_equal(hs_safetensors_read_f32(st, "b\"quoted\\", 1, &s5, bfv), HS_OK);
    assert_true(bfv[0] == 1.0f && bfv[1] == -1.0f && bfv[2] == 2.0f && bfv[3] > 3e38f);
    int64_t wrong[2] = {4, 3};
    assert_int_equal(hs_safetensors_read_f32(st, "model.embed_tokens.weight", 2, wrong, back),
                     HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "shape [3, 4], expected [4, 3]"));
    assert_int_equal(hs_safetensors_read_f32(st, "c", 3, (int64_t[]){2, 2, 2}, back), HS_ERR_CORRUPT);
    assert_int_equal(hs_safetensors_read_f32(st, "missing", 1, &s5, back), HS_ERR_CORRUPT);
    hs_safetensors_close(st);

    /* No tensors at all is a valid file too. */
    assert_int_equal(hs_safetensors_write(p, NULL, 0, NULL, 0), HS_OK);
    assert_int_equal(hs_safetensors_open(p, &st), HS_OK);
    assert_int_equal(hs_safetensors_count(st), 0);
    hs_safetensors_close(st);
    /* Writer refuses duplicates. */
    hs_st_tensor dup[2] = {t[2], t[2]};
    assert_int_equal(hs_safetensors_write(p, dup, 2, NULL, 0), HS_ERR_INVALID_ARG);
}

static void test_corrupt_cases(void **state) {
    (void)state;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t n;
    unsigned char *b = image(ok, "abcdefgh", 8, &n);
    hs_safetensors *st = NULL;
    assert_int_equal(hs_safetensors_parse(b, n, &st), HS_OK);
    hs_safetensors_close(st);
    /* Header length past the end, and file shorter than 8 bytes. */
    b[0] = 200;
    assert_int_equal(hs_safetensors_parse(b, n, &st), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "past the end"));
    memset(b, 0xff, 8);
    assert_int_equal(hs_safetensors_parse(b, n, &st), HS_ERR_CORRUPT);
    assert_int_equal(hs_safetensors_parse(b, 5, &st), HS_ERR_CORRUPT);
    assert_int_equal(hs_safetensors_parse(b, 0, &st), HS_ERR_CORRUPT);
    free(b);

    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON");
    expect_corrupt("[1, 2]", 0, "JSON object");
    expect_corrupt("not json at all", 0, "JSON object");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "padding");
    expect_corrupt("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_corrupt("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "run past");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "shape");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,7]}}", 8, "data_offsets");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    expect_corrupt("{\"a\":[1]}", 8, "not an object");
    /* Overlap, hole, trailing bytes, duplicate names. */
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "hole");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "after the last");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
    expect_corrupt("{\"__metadata__\":{\"k\":1},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "not a string");
    expect_corrupt("{\"__metadata__\":[],"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "__metadata__");
    /* Huge shapes do not overflow into a match. */
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, "overflow");
    expect_corrupt("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0, NULL);

    /* A missing file is an I/O error. */
    char p[512];
    util_path(p, sizeof p, "none.safetensors");
    assert_int_equal(hs_safetensors_open(p, &st), HS_ERR_IO);
}

static void test_truncations_and_flips(void **state) {
    (void)state;
    float a[16];
    for (int i = 0; i < 16; i++) a[i] = (float)i;
    hs_st_tensor t[3] = {
        {.name = "x", .dtype = HS_DT_F32, .ndim = 2, .shape = {2, 4}, .data = a},
        {.name = "y", .dtype = HS_DT_F16, .ndim = 1, .shape = {4}, .data = a + 8},
        {.name = "z", .dtype = HS_DT_U8, .ndim = 1, .shape = {8}, .data = a + 10},
    };
    const char *meta[2] = {"k", "v"};
    char p[512];
    util_path(p, sizeof p, "t.safetensors");
    assert_int_equal(hs_safetensors_write(p, t, 3, meta, 1), HS_OK);
    char *raw;
    size_t n;
    assert_int_equal(hs_file_read_all(p, 1 << 20, &raw, &n), HS_OK);
    /* Every proper prefix is rejected (the reader sees exactly k bytes: ASan checks bounds). */
    for (size_t k = 0; k < n; k++) {
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, raw, k);
        hs_safetensors *st = NULL;
        assert_int_equal(hs_safetensors_parse(cut, k, &st), HS_ERR_CORRUPT);
        free(cut);
    }
    /* Random byte flips: accepted or rejected, never a crash; accepted files stay in bounds. */
    int rejected = 0;
    for (int trial = 0; trial < 3000; trial++) {
        unsigned char *m = malloc(n);
        memcpy(m, raw, n);
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++) m[rnd() % n] ^= (unsigned char)(1u << (rnd() % 8));
        hs_safetensors *st = NULL;
        hs_status s = hs_safetensors_parse(m, n, &st);
        assert_true(s == HS_OK || s == HS_ERR_CORRUPT);
        if (s == HS_OK) {
            uint64_t sum = 0;
            for (int i = 0; i < hs_safetensors_count(st); i++) {
                const hs_st_tensor *r = hs_safetensors_get(st, i);
                for (uint64_t b = 0; b < r->nbytes; b++) sum += ((const unsigned char *)r->data)[b];
            }
            (void)sum;
            hs_safetensors_close(st);
        } else {
            rejected++;
        }
        free(m);
    }
    assert_true(rejected > 100); /* flips in the header are caught */
    free(raw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_corrupt_cases),
        cmocka_unit_test(test_truncations_and_flips),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
