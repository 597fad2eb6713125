/* safetensors.c: safetensors writer and strict reader (safetensors.h). */
#include "train/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/fileio.h"

/* The format's limit on the header (the reference implementation refuses larger ones). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

static const struct {
    const char *name;
    size_t size;
} dtypes[HS_DT_COUNT] = {
    [HS_DT_BOOL] = {"BOOL", 1},    [HS_DT_U8] = {"U8", 1},     [HS_DT_I8] = {"I8", 1},
    [HS_DT_F8_E4M3] = {"F8_E4M3", 1}, [HS_DT_F8_E5M2] = {"F8_E5M2", 1},
    [HS_DT_I16] = {"I16", 2},      [HS_DT_U16] = {"U16", 2},   [HS_DT_F16] = {"F16", 2},
    [HS_DT_BF16] = {"BF16", 2},    [HS_DT_I32] = {"I32", 4},   [HS_DT_U32] = {"U32", 4},
    [HS_DT_F32] = {"F32", 4},      [HS_DT_I64] = {"I64", 8},   [HS_DT_U64] = {"U64", 8},
    [HS_DT_F64] = {"F64", 8},
};

const char *hs_dtype_name(hs_dtype t) {
    return (unsigned)t < HS_DT_COUNT ? dtypes[t].name : "?";
}

size_t hs_dtype_size(hs_dtype t) { return (unsigned)t < HS_DT_COUNT ? dtypes[t].size : 0; }

hs_status hs_dtype_parse(const char *name, hs_dtype *out) {
    for (int i = 0; i < HS_DT_COUNT; i++)
        if (name && !strcmp(name, dtypes[i].name)) {
            *out = (hs_dtype)i;
            return HS_OK;
        }
    return hs_fail(HS_ERR_INVALID_ARG, "unknown dtype '%s'", name ? name : "(null)");
}

/* ------------------------------------------------------------------ writer */

typedef hs_buf sbuf;

static void sb_put(sbuf *b, const char *p, size_t n) { hs_buf_put(b, p, n); }

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, unsigned long long v) {
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)k);
}

/* A JSON string literal. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", *p);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int numel_bytes(const hs_st_tensor *t, uint64_t *bytes) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[d], &n)) return -1;
    }
    return __builtin_mul_overflow(n, (uint64_t)hs_dtype_size(t->dtype), bytes) ? -1 : 0;
}

hs_status hs_safetensors_write(const char *path, const hs_st_tensor *tensors, int n,
                               const char *const *meta, int n_meta) {
    if (!path || n < 0 || (n > 0 && !tensors) || n_meta < 0 || (n_meta > 0 && !meta))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_safetensors_write: bad arguments");
    for (int i = 0; i < n; i++) {
        const hs_st_tensor *t = &tensors[i];
        uint64_t bytes;
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__"))
            return hs_fail(HS_ERR_INVALID_ARG, "tensor %d has no valid name", i);
        if ((unsigned)t->dtype >= HS_DT_COUNT || t->ndim < 0 || t->ndim > HS_ST_MAX_DIMS ||
            numel_bytes(t, &bytes) != 0 || (bytes && !t->data))
            return hs_fail(HS_ERR_INVALID_ARG, "tensor '%s': bad dtype, shape or data", t->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(tensors[j].name, t->name))
                return hs_fail(HS_ERR_INVALID_ARG, "two tensors are named '%s'", t->name);
    }
    sbuf h = {0};
    sb_str(&h, "{");
    if (n_meta > 0) {
        sb_json_str(&h, "__metadata__");
        sb_str(&h, ":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_str(&h, meta[2 * i] ? meta[2 * i] : "");
            sb_str(&h, ":");
            sb_json_str(&h, meta[2 * i + 1] ? meta[2 * i + 1] : "");
        }
        sb_str(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const hs_st_tensor *t = &tensors[i];
        uint64_t bytes = 0;
        numel_bytes(t, &bytes);
        if (i || n_meta > 0) sb_str(&h, ",");
        sb_json_str(&h, t->name);
        sb_str(&h, ":{\"dtype\":");
        sb_json_str(&h, hs_dtype_name(t->dtype));
        sb_str(&h, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) sb_fmt(&h, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        sb_fmt(&h, "],\"data_offsets\":[%llu,", off);
        sb_fmt(&h, "%llu]}", off + bytes);
        off += bytes;
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " "); /* pad with spaces so the buffer starts 8-aligned */
    if (h.oom) {
        free(h.p);
        return hs_fail(HS_ERR_NOMEM, "out of memory writing '%s'", path);
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
    const void **parts = malloc((size_t)(n + 2) * sizeof *parts);
    size_t *sizes = malloc((size_t)(n + 2) * sizeof *sizes);
    if (!parts || !sizes) {
        free(parts);
        free(sizes);
        free(h.p);
        return hs_fail(HS_ERR_NOMEM, "out of memory writing '%s'", path);
    }
    parts[0] = len8;
    sizes[0] = 8;
    parts[1] = h.p;
    sizes[1] = h.n;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = 0;
        numel_bytes(&tensors[i], &bytes);
        parts[i + 2] = tensors[i].data;
        sizes[i + 2] = (size_t)bytes;
    }
    hs_status st = hs_file_write_atomic_parts(path, parts, sizes, n + 2);
    free(parts);
    free(sizes);
    free(h.p);
    return st;
}

/* ------------------------------------------------------------------ reader */

struct hs_safetensors {
    unsigned char *buf; /* the whole file */
    size_t size;
    int n;
    hs_st_tensor *t;    /* (n), sorted by data offset */
    char **names;       /* (n) owned copies, t[i].name points here */
    uint64_t *begin;    /* (n) */
    int n_meta;
    char **meta;        /* (2 n_meta) key, value */
};

void hs_safetensors_close(hs_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->names ? st->names[i] : NULL);
    for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->names);
    free(st->meta);
    free(st->t);
    free(st->begin);
    free(st->buf);
    free(st);
}

int hs_safetensors_count(const hs_safetensors *st) { return st ? st->n : 0; }

const hs_st_tensor *hs_safetensors_get(const hs_safetensors *st, int i) {
    return st && i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const hs_st_tensor *hs_safetensors_find(const hs_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->t[i].name, name)) return &st->t[i];
    return NULL;
}

const char *hs_safetensors_meta(const hs_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
    return NULL;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0) || v >= 9007199254740992.0 || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int cmp_u64_idx(const void *a, const void *b, void *ctx) {
    const uint64_t *beg = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    return beg[x] < beg[y] ? -1 : beg[x] > beg[y] ? 1 : (x > y) - (x < y);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define CORRUPT(...)                                \
    do {                                            \
        st = hs_fail(HS_ERR_CORRUPT, __VA_ARGS__);  \
        goto fail;                                  \
    } while (0)

/* Validate buf (owned: freed on failure) and build the index. */
static hs_status parse_owned(unsigned char *buf, size_t size, hs_safetensors **out) {
    hs_status st = HS_OK;
    cJSON *root = NULL;
    int *order = NULL;
    char **sorted = NULL;
    hs_safetensors *s = calloc(1, sizeof *s);
    if (!s) {
        free(buf);
        return hs_fail(HS_ERR_NOMEM, "out of memory");
    }
    s->buf = buf;
    s->size = size;
    if (size < 8) CORRUPT("safetensors: the file has %zu bytes, fewer than the 8-byte header length", size);
    uint64_t hn = 0;
    for (int k = 0; k < 8; k++) hn |= (uint64_t)buf[k] << (8 * k);
    if (hn > size - 8)
        CORRUPT("safetensors: header length %llu runs past the end of the file (%zu bytes)",
                (unsigned long long)hn, size);
    if (hn > ST_MAX_HEADER)
        CORRUPT("safetensors: header length %llu exceeds the format's 100 MB limit",
                (unsigned long long)hn);
    if (hn < 2 || buf[8] != '{') CORRUPT("safetensors: the header does not start with a JSON object");
    const char *hdr = (const char *)buf + 8, *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hn, &end, 0);
    if (!root || !cJSON_IsObject(root)) CORRUPT("safetensors: the header is not valid JSON");
    for (const char *p = end; p < hdr + hn; p++)
        if (*p != ' ') CORRUPT("safetensors: the header has bytes other than space padding after its JSON");
    const uint64_t data_size = size - 8 - hn;
    const unsigned char *data = buf + 8 + hn;

    int count = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, root) if (strcmp(it->string, "__metadata__")) count++;
    s->t = calloc((size_t)(count ? count : 1), sizeof *s->t);
    s->names = calloc((size_t)(count ? count : 1), sizeof *s->names);
    s->begin = calloc((size_t)(count ? count : 1), sizeof *s->begin);
    if (!s->t || !s->names || !s->begin) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int seen_meta = 0;
    cJSON_ArrayForEach(it, root) {
        const char *name = it->string;
        if (!strcmp(name, "__metadata__")) {
            if (seen_meta++) CORRUPT("safetensors: two __metadata__ entries");
            if (!cJSON_IsObject(it)) CORRUPT("safetensors: __metadata__ is not an object");
            int m = cJSON_GetArraySize(it);
            s->meta = calloc((size_t)(2 * m + 1), sizeof *s->meta);
            if (!s->meta) {
                st = hs_fail(HS_ERR_NOMEM, "out of memory");
                goto fail;
            }
            cJSON *kv;
            cJSON_ArrayForEach(kv, it) {
                if (!cJSON_IsString(kv))
                    CORRUPT("safetensors: __metadata__ value of '%.64s' is not a string", kv->string);
                s->meta[2 * s->n_meta] = strdup(kv->string);
                s->meta[2 * s->n_meta + 1] = strdup(kv->valuestring);
                s->n_meta++;
                if (!s->meta[2 * s->n_meta - 2] || !s->meta[2 * s->n_meta - 1]) {
                    st = hs_fail(HS_ERR_NOMEM, "out of memory");
                    goto fail;
                }
            }
            continue;
        }
        int i = s->n;
        hs_st_tensor *t = &s->t[i];
        s->names[i] = strdup(name);
        if (!s->names[i]) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
            goto fail;
        }
        s->n++;
        t->name = s->names[i];
        if (!cJSON_IsObject(it)) CORRUPT("safetensors: entry '%.64s' is not an object", name);
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) CORRUPT("safetensors: tensor '%.64s' has no dtype string", name);
        if (hs_dtype_parse(dt->valuestring, &t->dtype) != HS_OK)
            CORRUPT("safetensors: tensor '%.64s' has unknown dtype '%.32s'", name, dt->valuestring);
        if (!cJSON_IsArray(shape)) CORRUPT("safetensors: tensor '%.64s' has no shape array", name);
        int nd = cJSON_GetArraySize(shape);
        if (nd > HS_ST_MAX_DIMS)
            CORRUPT("safetensors: tensor '%.64s' has %d dimensions (at most %d supported)", name, nd,
                    HS_ST_MAX_DIMS);
        t->ndim = nd;
        uint64_t numel = 1;
        for (int d = 0; d < nd; d++) {
            uint64_t v;
            if (!json_u64(cJSON_GetArrayItem(shape, d), &v))
                CORRUPT("safetensors: tensor '%.64s': shape[%d] is not a non-negative integer", name, d);
            t->shape[d] = (int64_t)v;
            if (__builtin_mul_overflow(numel, v, &numel))
                CORRUPT("safetensors: tensor '%.64s': the shape overflows", name);
        }
        uint64_t b, e, want;
        if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
            !json_u64(cJSON_GetArrayItem(offs, 0), &b) || !json_u64(cJSON_GetArrayItem(offs, 1), &e))
            CORRUPT("safetensors: tensor '%.64s': data_offsets is not [begin, end]", name);
        if (b > e) CORRUPT("safetensors: tensor '%.64s': data_offsets begin %llu > end %llu", name,
                           (unsigned long long)b, (unsigned long long)e);
        if (e > data_size)
            CORRUPT("safetensors: tensor '%.64s': data_offsets [%llu, %llu] run past the %llu-byte "
                    "data buffer (truncated file?)",
                    name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
        if (__builtin_mul_overflow(numel, (uint64_t)hs_dtype_size(t->dtype), &want) || want != e - b)
            CORRUPT("safetensors: tensor '%.64s': %llu bytes of data but dtype %s and its shape need "
                    "%llu",
                    name, (unsigned long long)(e - b), hs_dtype_name(t->dtype),
                    (unsigned long long)want);
        s->begin[i] = b;
        t->nbytes = e - b;
        t->data = data + b;
    }
    /* Duplicate names (JSON objects may repeat keys; cJSON keeps both). */
    sorted = malloc((size_t)(s->n ? s->n : 1) * sizeof *sorted);
    if (!sorted) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(sorted, s->names, (size_t)s->n * sizeof *sorted);
    qsort(sorted, (size_t)s->n, sizeof *sorted, cmp_name);
    for (int i = 1; i < s->n; i++)
        if (!strcmp(sorted[i - 1], sorted[i]))
            CORRUPT("safetensors: the tensor name '%.64s' appears twice", sorted[i]);
    /* Contiguity: sorted by begin, each tensor starts where the previous ended, from 0 to the
     * end of the buffer (no overlap, no hole, nothing after). */
    order = malloc((size_t)(s->n ? s->n : 1) * sizeof *order);
    if (!order) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n; i++) order[i] = i;
    qsort_r(order, (size_t)s->n, sizeof *order, cmp_u64_idx, s->begin);
    uint64_t at = 0;
    for (int k = 0; k < s->n; k++) {
        int i = order[k];
        if (s->begin[i] < at)
            CORRUPT("safetensors: tensor '%.64s' at [%llu, %llu) overlaps the previous tensor", s->names[i],
                    (unsigned long long)s->begin[i], (unsigned long long)(s->begin[i] + s->t[i].nbytes));
        if (s->begin[i] > at)
            CORRUPT("safetensors: a hole in the data buffer before tensor '%.64s' (bytes %llu..%llu)",
                    s->names[i], (unsigned long long)at, (unsigned long long)s->begin[i]);
        at = s->begin[i] + s->t[i].nbytes;
    }
    if (at != data_size)
        CORRUPT("safetensors: %llu bytes after the last tensor are not described by the header",
                (unsigned long long)(data_size - at));
    /* Keep the tensors in file order. */
    {
        size_t cnt = s->n > 0 ? (size_t)s->n : 1;
        hs_st_tensor *t2 = malloc(cnt * sizeof *t2);
        if (!t2) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int k = 0; k < s->n; k++) t2[k] = s->t[order[k]];
        free(s->t);
        s->t = t2;
    }
    free(order);
    free(sorted);
    cJSON_Delete(root);
    *out = s;
    return HS_OK;
fail:
    free(order);
    free(sorted);
    cJSON_Delete(root);
    hs_safetensors_close(s);
    return st;
}

hs_status hs_safetensors_parse(const void *bytes, size_t n, hs_safetensors **out) {
    if (!out || (n && !bytes)) return hs_fail(HS_ERR_INVALID_ARG, "hs_safetensors_parse: NULL argument");
    *out = NULL;
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) return hs_fail(HS_ERR_NOMEM, "out of memory");
    if (n) memcpy(copy, bytes, n);
    return parse_owned(copy, n, out);
}

hs_status hs_safetensors_open(const char *path, hs_safetensors **out) {
    if (!path || !out) return hs_fail(HS_ERR_INVALID_ARG, "hs_safetensors_open: NULL argument");
    *out = NULL;
    char *buf;
    size_t n;
    hs_status st = hs_file_read_all(path, (size_t)1 << 40, &buf, &n);
    if (st != HS_OK) return st;
    st = parse_owned((unsigned char *)buf, n, out);
    if (st == HS_ERR_CORRUPT) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", hs_last_error());
        return hs_fail(HS_ERR_CORRUPT, "'%s': %s", path, msg);
    }
    return st;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);                      /* zero / subnormal */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), (int)e - 25);
    uint32_t bits;
    memcpy(&bits, &v, 4);
    bits |= sign;
    memcpy(&v, &bits, 4);
    return v;
}

hs_status hs_safetensors_read_f32(const hs_safetensors *st, const char *name, int32_t ndim,
                                  const int64_t *shape, float *dst) {
    const hs_st_tensor *t = hs_safetensors_find(st, name);
    if (!t) return hs_fail(HS_ERR_CORRUPT, "tensor '%s' is missing", name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[128] = "", want[128] = "";
        size_t a = 0, b = 0;
        for (int d = 0; d < t->ndim && a < 100; d++)
            a += (size_t)snprintf(got + a, sizeof got - a, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        for (int d = 0; d < ndim && b < 100; d++)
            b += (size_t)snprintf(want + b, sizeof want - b, "%s%lld", d ? ", " : "", (long long)shape[d]);
        return hs_fail(HS_ERR_CORRUPT, "tensor '%s' has shape [%s], expected [%s]", name, got, want);
    }
    size_t n = (size_t)(t->nbytes / (hs_dtype_size(t->dtype) ? hs_dtype_size(t->dtype) : 1));
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case HS_DT_F32:
        if (n) memcpy(dst, p, n * 4);
        return HS_OK;
    case HS_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return HS_OK;
    case HS_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return HS_OK;
    default:
        return hs_fail(HS_ERR_CORRUPT, "tensor '%s' has dtype %s, expected F32 (or BF16/F16)", name,
                       hs_dtype_name(t->dtype));
    }
}
