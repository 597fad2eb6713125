/* dataset.c: llm.c-compatible token shards and deterministic batches (dataset.h).
 *
 * Shard layout (llm.c's dev/data/data_common.py, version 1 = GPT-2-style uint16 tokens):
 *   int32 header[256], little-endian: [0] = 20240520 (magic), [1] = 1 (version),
 *   [2] = token count n, the rest zero; then n little-endian uint16 tokens. Nothing else.
 * The reader checks every one of these facts and says which one failed. It decodes bytes
 * explicitly, so it is correct on any host byte order and never reads past what it was given.
 *
 * Batches: window start = hash(seed, step, micro, row) mod (size - T). The hash is SplitMix64's
 * finaliser over the four words (a pure function: no generator state to save or replay), so a
 * resumed run sees exactly the batches an uninterrupted one would, whatever the thread count.
 * The modulo bias is below (size / 2^64), far under anything measurable.
 */
#include "train/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/rng.h"
#include "train/fileio.h"

struct hs_dataset {
    uint16_t *tokens; /* (n,) */
    int64_t n;
    int max_token;
};

/* Shards larger than this are refused (2^31 tokens = 4 GiB: far above anything we train on). */
#define SHARD_MAX_BYTES ((size_t)HS_SHARD_HEADER_INTS * 4 + ((size_t)1 << 32))

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Validate one shard image (bytes, size) named `name`; on success return its token count and a
 * pointer to the first token byte. Exposed to the fuzzer through hs_shard_parse. */
hs_status hs_shard_parse(const char *name, const unsigned char *bytes, size_t size,
                         int64_t *n_tokens, const unsigned char **token_bytes) {
    const size_t hdr = (size_t)HS_SHARD_HEADER_INTS * 4;
    if (size == 0) return hs_fail(HS_ERR_CORRUPT, "'%s' is empty (0 bytes)", name);
    if (size < hdr)
        return hs_fail(HS_ERR_CORRUPT,
                       "'%s' is truncated: %zu bytes, shorter than the %zu-byte shard header",
                       name, size, hdr);
    uint32_t magic = rd_u32(bytes), version = rd_u32(bytes + 4), count = rd_u32(bytes + 8);
    if (magic != HS_SHARD_MAGIC)
        return hs_fail(HS_ERR_CORRUPT,
                       "'%s' is not a token shard: magic %u, expected %d (llm.c .bin format)",
                       name, magic, HS_SHARD_MAGIC);
    if (version != HS_SHARD_VERSION)
        return hs_fail(HS_ERR_CORRUPT,
                       "'%s': shard version %u is not supported (only version %d, uint16 tokens)",
                       name, version, HS_SHARD_VERSION);
    if (count > INT32_MAX)
        return hs_fail(HS_ERR_CORRUPT, "'%s': token count %u in the header is negative", name,
                       count);
    size_t expect = hdr + (size_t)count * 2;
    if (size < expect)
        return hs_fail(HS_ERR_CORRUPT,
                       "'%s' is truncated: header says %u tokens (%zu bytes) but the file has %zu",
                       name, count, expect, size);
    if (size > expect)
        return hs_fail(HS_ERR_CORRUPT,
                       "'%s': token count mismatch: header says %u tokens (%zu bytes) but the "
                       "file has %zu bytes",
                       name, count, expect, size);
    if (count == 0) return hs_fail(HS_ERR_CORRUPT, "'%s' holds no tokens (count 0)", name);
    *n_tokens = count;
    *token_bytes = bytes + hdr;
    return HS_OK;
}

static hs_status dataset_alloc(int64_t n, hs_dataset **out) {
    hs_dataset *d = calloc(1, sizeof *d);
    if (!d) return hs_fail(HS_ERR_NOMEM, "out of memory");
    d->tokens = malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
    if (!d->tokens) {
        free(d);
        return hs_fail(HS_ERR_NOMEM, "out of memory for %lld tokens", (long long)n);
    }
    d->n = n;
    *out = d;
    return HS_OK;
}

static void dataset_finish(hs_dataset *d) {
    int mx = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->tokens[i] > mx) mx = d->tokens[i];
    d->max_token = mx;
}

/* Read and validate one shard file. */
static hs_status read_shard(const char *path, unsigned char **buf, size_t *size, int64_t *n,
                            const unsigned char **tok) {
    char *data = NULL;
    hs_status st = hs_file_read_all(path, SHARD_MAX_BYTES, &data, size);
    if (st != HS_OK) return st;
    st = hs_shard_parse(path, (const unsigned char *)data, *size, n, tok);
    if (st != HS_OK) {
        free(data);
        return st;
    }
    *buf = (unsigned char *)data;
    return HS_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_bin(const char *s) {
    size_t n = strlen(s);
    return n > 4 && !strcmp(s + n - 4, ".bin");
}

static hs_status open_dir(const char *path, hs_dataset **out) {
    DIR *dir = opendir(path);
    if (!dir) return hs_fail(HS_ERR_IO, "cannot open directory '%s': %s", path, strerror(errno));
    char **names = NULL;
    size_t count = 0, cap = 0;
    hs_status st = HS_OK;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!ends_with_bin(e->d_name) || e->d_name[0] == '.') continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                st = hs_fail(HS_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[count] = malloc(len);
        if (!names[count]) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(names[count], len, "%s/%s", path, e->d_name);
        count++;
    }
    closedir(dir);
    if (st == HS_OK && count == 0)
        st = hs_fail(HS_ERR_IO, "directory '%s' holds no .bin token shards", path);
    if (st == HS_OK) qsort(names, count, sizeof *names, cmp_str);

    /* Two passes: validate every shard and sum the sizes, then copy (one allocation). */
    int64_t total = 0;
    for (size_t i = 0; st == HS_OK && i < count; i++) {
        unsigned char *buf;
        size_t size;
        int64_t n;
        const unsigned char *tok;
        st = read_shard(names[i], &buf, &size, &n, &tok);
        if (st == HS_OK) {
            total += n;
            free(buf);
        }
    }
    hs_dataset *d = NULL;
    if (st == HS_OK) st = dataset_alloc(total, &d);
    int64_t at = 0;
    for (size_t i = 0; st == HS_OK && i < count; i++) {
        unsigned char *buf;
        size_t size;
        int64_t n;
        const unsigned char *tok;
        st = read_shard(names[i], &buf, &size, &n, &tok);
        if (st != HS_OK) break;
        if (at + n > total) { /* changed between the passes */
            free(buf);
            st = hs_fail(HS_ERR_IO, "'%s' changed while being read", names[i]);
            break;
        }
        for (int64_t j = 0; j < n; j++)
            d->tokens[at + j] = (uint16_t)(tok[2 * j] | tok[2 * j + 1] << 8);
        at += n;
        free(buf);
    }
    if (st == HS_OK && at != total) st = hs_fail(HS_ERR_IO, "'%s' changed while being read", path);
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    if (st != HS_OK) {
        hs_dataset_close(d);
        return st;
    }
    dataset_finish(d);
    *out = d;
    return HS_OK;
}

hs_status hs_dataset_open(const char *path, hs_dataset **out) {
    if (!path || !out) return hs_fail(HS_ERR_INVALID_ARG, "hs_dataset_open: NULL argument");
    *out = NULL;
    if (hs_is_dir(path)) return open_dir(path, out);
    unsigned char *buf;
    size_t size;
    int64_t n;
    const unsigned char *tok;
    hs_status st = read_shard(path, &buf, &size, &n, &tok);
    if (st != HS_OK) return st;
    hs_dataset *d;
    st = dataset_alloc(n, &d);
    if (st != HS_OK) {
        free(buf);
        return st;
    }
    for (int64_t j = 0; j < n; j++) d->tokens[j] = (uint16_t)(tok[2 * j] | tok[2 * j + 1] << 8);
    free(buf);
    dataset_finish(d);
    *out = d;
    return HS_OK;
}

hs_status hs_dataset_from_tokens(const uint16_t *tokens, int64_t n, hs_dataset **out) {
    if (!out || (n > 0 && !tokens) || n < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "hs_dataset_from_tokens: bad arguments (n = %lld)",
                       (long long)n);
    *out = NULL;
    hs_dataset *d;
    hs_status st = dataset_alloc(n, &d);
    if (st != HS_OK) return st;
    if (n > 0) memcpy(d->tokens, tokens, (size_t)n * sizeof(uint16_t));
    dataset_finish(d);
    *out = d;
    return HS_OK;
}

void hs_dataset_close(hs_dataset *d) {
    if (!d) return;
    free(d->tokens);
    free(d);
}

int64_t hs_dataset_size(const hs_dataset *d) { return d ? d->n : 0; }
const uint16_t *hs_dataset_tokens(const hs_dataset *d) { return d ? d->tokens : NULL; }
int hs_dataset_max_token(const hs_dataset *d) { return d ? d->max_token : 0; }

/* SplitMix64's finaliser: a bijective 64-bit mixer. */
/* The start of row `row` of micro-batch `micro` at `step`: chained mixing so that nearby
 * (step, micro, row) triples give unrelated starts. */
static uint64_t window_hash(uint64_t seed, int64_t step, int micro, int row) {
    uint64_t h = hs_rng_mix(seed ^ 0x6a09e667f3bcc909ULL);
    h = hs_rng_mix(h ^ (uint64_t)step);
    h = hs_rng_mix(h ^ (uint64_t)(uint32_t)micro);
    h = hs_rng_mix(h ^ (uint64_t)(uint32_t)row);
    return h;
}

static hs_status check_bt(const hs_dataset *d, int B, int T, const int32_t *inputs,
                          const int32_t *targets) {
    if (!d || !inputs || !targets)
        return hs_fail(HS_ERR_INVALID_ARG, "dataset batch: NULL argument");
    if (B <= 0 || T <= 0)
        return hs_fail(HS_ERR_INVALID_ARG, "dataset batch: B and T must be > 0 (got %d, %d)", B, T);
    if (d->n < (int64_t)T + 1)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "the data has %lld tokens, too few for one window of T+1 = %d tokens",
                       (long long)d->n, T + 1);
    return HS_OK;
}

static void copy_window(const hs_dataset *d, int64_t start, int T, int32_t *in, int32_t *tg) {
    const uint16_t *p = d->tokens + start;
    for (int t = 0; t < T; t++) {
        in[t] = p[t];
        tg[t] = p[t + 1];
    }
}

hs_status hs_dataset_batch(const hs_dataset *d, uint64_t seed, int64_t step, int micro, int B,
                           int T, int32_t *inputs, int32_t *targets) {
    hs_status st = check_bt(d, B, T, inputs, targets);
    if (st != HS_OK) return st;
    /* Valid starts: 0 .. n-T-1 inclusive (the window holds T+1 tokens). */
    uint64_t n_starts = (uint64_t)(d->n - T);
    for (int b = 0; b < B; b++) {
        int64_t start = (int64_t)(window_hash(seed, step, micro, b) % n_starts);
        copy_window(d, start, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
    return HS_OK;
}

hs_status hs_dataset_eval_batch(const hs_dataset *d, int64_t k, int B, int T, int32_t *inputs,
                                int32_t *targets) {
    hs_status st = check_bt(d, B, T, inputs, targets);
    if (st != HS_OK) return st;
    if (k < 0) return hs_fail(HS_ERR_INVALID_ARG, "eval batch index %lld < 0", (long long)k);
    /* Windows [w*T, w*T + T] for w = 0 .. n_windows-1 (they share one boundary token, as the
     * target of one window's last position is the next window's first input). */
    int64_t n_windows = (d->n - 1) / T;
    for (int b = 0; b < B; b++) {
        int64_t w = (k * B + b) % n_windows;
        copy_window(d, w * T, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
    return HS_OK;
}

hs_status hs_shard_write(const char *path, const uint16_t *tokens, int64_t n) {
    if (!path || n < 0 || (n > 0 && !tokens))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_shard_write: bad arguments");
    if (n > INT32_MAX)
        return hs_fail(HS_ERR_INVALID_ARG, "%lld tokens do not fit one shard (max %d)",
                       (long long)n, INT32_MAX);
    unsigned char header[HS_SHARD_HEADER_INTS * 4];
    memset(header, 0, sizeof header);
    const uint32_t h[3] = {HS_SHARD_MAGIC, HS_SHARD_VERSION, (uint32_t)n};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) header[4 * i + j] = (unsigned char)(h[i] >> (8 * j));
    unsigned char *body = malloc((size_t)(n > 0 ? n : 1) * 2);
    if (!body) return hs_fail(HS_ERR_NOMEM, "out of memory writing '%s'", path);
    for (int64_t i = 0; i < n; i++) {
        body[2 * i] = (unsigned char)(tokens[i] & 0xff);
        body[2 * i + 1] = (unsigned char)(tokens[i] >> 8);
    }
    const void *parts[2] = {header, body};
    size_t sizes[2] = {sizeof header, (size_t)n * 2};
    hs_status st = hs_file_write_atomic_parts(path, parts, sizes, 2);
    free(body);
    return st;
}
