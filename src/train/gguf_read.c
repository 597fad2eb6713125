/* gguf_read.c: the strict GGUF parser, the check of a llama model's keys and tensors, the tensor
 * decoders (f32, f16, bf16, MXFP4) and the MXFP4 block layout (gguf.h). Nothing here allocates
 * more than the parsed file's size bounds, and every read is checked against the buffer's end.
 * It uses only halfs/status.h, so the fuzz target (fuzz/fuzz_gguf.c) links it alone.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/gguf.h"

/* GGUF value types (gguf.h of ggml). */
enum {
    GV_U8 = 0, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL, GV_STR, GV_ARR,
    GV_U64, GV_I64, GV_F64, GV_COUNT
};
static const size_t gv_size[GV_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    const char *key;
    size_t key_len;
    uint32_t type;
    const uint8_t *val;  /* the value (for an array: its first element) */
    uint32_t elem_type;  /* arrays */
    uint64_t count;      /* arrays */
} gkv;

struct hs_gguf {
    const uint8_t *base;
    size_t n;
    int64_t n_kv, n_tensors;
    gkv *kv;
    hs_gguf_tensor *t;
};

/* A cursor over the buffer; every read checks the remaining length. */
typedef struct {
    const uint8_t *p;
    size_t left;
} cur;

static int rd(cur *c, void *dst, size_t k) {
    if (c->left < k) return 0;
    memcpy(dst, c->p, k);
    c->p += k;
    c->left -= k;
    return 1;
}
static int skip(cur *c, size_t k) {
    if (c->left < k) return 0;
    c->p += k;
    c->left -= k;
    return 1;
}
static int rd_str(cur *c, const char **s, size_t *len) {
    uint64_t l;
    if (!rd(c, &l, 8) || l > c->left) return 0;
    *s = (const char *)c->p;
    *len = (size_t)l;
    c->p += l;
    c->left -= l;
    return 1;
}

const char *hs_gguf_type_name(hs_gguf_type t) {
    switch (t) {
    case HS_GGUF_F32: return "f32";
    case HS_GGUF_F16: return "f16";
    case HS_GGUF_BF16: return "bf16";
    case HS_GGUF_MXFP4: return "mxfp4";
    }
    return "?";
}

hs_status hs_gguf_type_parse(const char *name, hs_gguf_type *out) {
    static const hs_gguf_type all[] = {HS_GGUF_MXFP4, HS_GGUF_BF16, HS_GGUF_F16, HS_GGUF_F32};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(name, hs_gguf_type_name(all[i]))) {
            *out = all[i];
            return HS_OK;
        }
    return hs_fail(HS_ERR_INVALID_ARG, "unknown tensor type '%s' (mxfp4, bf16, f16, f32)", name);
}

static int type_known(uint32_t t) {
    return t == HS_GGUF_F32 || t == HS_GGUF_F16 || t == HS_GGUF_BF16 || t == HS_GGUF_MXFP4;
}

/* ---- MXFP4 ---- */
static const int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void hs_gguf_mxfp4_block(uint8_t e8m0, const uint8_t codes[16], uint8_t out[17]) {
    uint8_t q[32];
    for (int i = 0; i < 16; i++) {
        q[2 * i] = codes[i] & 0x0F;
        q[2 * i + 1] = codes[i] >> 4;
    }
    for (int i = 0; i < 32; i++)
        if (q[i] == 0x8) q[i] = 0; /* −0: ggml's quantizer writes +0 */
    out[0] = e8m0;
    for (int j = 0; j < 16; j++) out[1 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

/* 2^(e−128) as ggml's ggml_e8m0_to_fp32_half computes it (exact, subnormal for e < 2). */
static float e8m0_half(uint8_t e) {
    if (e == 0xFF) return NAN;
    return ldexpf(1.0f, (int)e - 128);
}

void hs_gguf_mxfp4_decode(const uint8_t blk[17], float out[32]) {
    float d = e8m0_half(blk[0]);
    for (int j = 0; j < 16; j++) {
        out[j] = (float)kvalues_mxfp4[blk[1 + j] & 0x0F] * d;
        out[j + 16] = (float)kvalues_mxfp4[blk[1 + j] >> 4] * d;
    }
}

/* ---- f16 / bf16 ---- */
static float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), (int)e - 25);
    return s ? -v : v;
}

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- the parser ---- */

static size_t type_bytes(hs_gguf_type t, int64_t n_elem) {
    switch (t) {
    case HS_GGUF_F32: return (size_t)n_elem * 4;
    case HS_GGUF_F16:
    case HS_GGUF_BF16: return (size_t)n_elem * 2;
    case HS_GGUF_MXFP4:
        return (size_t)(n_elem / HS_GGUF_MXFP4_BLOCK) * HS_GGUF_MXFP4_BLOCK_BYTES;
    }
    return 0;
}

static hs_status bad(const char *what) { return hs_fail(HS_ERR_CORRUPT, "GGUF: %s", what); }

hs_status hs_gguf_parse(const void *data, size_t n, hs_gguf **out) {
    *out = NULL;
    cur c = {(const uint8_t *)data, n};
    char magic[4];
    uint32_t version;
    uint64_t nt, nkv;
    if (!rd(&c, magic, 4) || memcmp(magic, "GGUF", 4))
        return bad("not a GGUF file (the first 4 bytes are not \"GGUF\")");
    if (!rd(&c, &version, 4)) return bad("truncated header");
    if (version != 3)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: version %u; halfs reads version 3", version);
    if (!rd(&c, &nt, 8) || !rd(&c, &nkv, 8)) return bad("truncated header");
    /* each key/value takes at least 13 bytes, each tensor info at least 29 */
    if (nkv > c.left / 13) return hs_fail(HS_ERR_CORRUPT, "GGUF: %llu key/value pairs cannot fit "
                                          "in the file", (unsigned long long)nkv);
    if (nt > c.left / 29) return hs_fail(HS_ERR_CORRUPT, "GGUF: %llu tensors cannot fit in the "
                                         "file", (unsigned long long)nt);
    hs_gguf *g = calloc(1, sizeof *g);
    if (!g) return hs_fail(HS_ERR_NOMEM, "GGUF: out of memory");
    g->base = (const uint8_t *)data;
    g->n = n;
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        hs_gguf_free(g);
        return hs_fail(HS_ERR_NOMEM, "GGUF: out of memory");
    }
    hs_status st = HS_OK;
    uint32_t alignment = 32;
    for (uint64_t i = 0; i < nkv && st == HS_OK; i++) {
        gkv *kv = &g->kv[i];
        if (!rd_str(&c, &kv->key, &kv->key_len) || !rd(&c, &kv->type, 4)) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: key/value pair %llu is truncated",
                         (unsigned long long)i);
            break;
        }
        if (kv->key_len == 0) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: key/value pair %llu has an empty key",
                         (unsigned long long)i);
            break;
        }
        for (uint64_t j = 0; j < i; j++)
            if (g->kv[j].key_len == kv->key_len && !memcmp(g->kv[j].key, kv->key, kv->key_len)) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: key '%.*s' appears twice",
                             (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key);
                break;
            }
        if (st != HS_OK) break;
        int key_w = (int)(kv->key_len > 200 ? 200 : kv->key_len);
        if (kv->type >= GV_COUNT) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: key '%.*s' has unknown value type %u", key_w,
                         kv->key, kv->type);
            break;
        }
        uint32_t et = kv->type;
        uint64_t count = 1;
        if (kv->type == GV_ARR) {
            if (!rd(&c, &et, 4) || !rd(&c, &count, 8)) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: array '%.*s' is truncated", key_w, kv->key);
                break;
            }
            if (et >= GV_COUNT || et == GV_ARR) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: array '%.*s' has element type %u (nested "
                             "arrays and unknown types are not read)", key_w, kv->key, et);
                break;
            }
            kv->elem_type = et;
            kv->count = count;
        }
        kv->val = c.p;
        if (et == GV_STR) {
            for (uint64_t k = 0; k < count; k++) {
                const char *s;
                size_t l;
                if (!rd_str(&c, &s, &l)) {
                    st = hs_fail(HS_ERR_CORRUPT, "GGUF: string %llu of '%.*s' runs past the end "
                                 "of the file", (unsigned long long)k, key_w, kv->key);
                    break;
                }
            }
        } else {
            if (count > c.left / gv_size[et]) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: value of '%.*s' runs past the end of the "
                             "file", key_w, kv->key);
                break;
            }
            if (et == GV_BOOL)
                for (uint64_t k = 0; k < count; k++)
                    if (c.p[k] > 1) {
                        st = hs_fail(HS_ERR_CORRUPT, "GGUF: boolean '%.*s' is %u, not 0 or 1",
                                     key_w, kv->key, c.p[k]);
                        break;
                    }
            skip(&c, (size_t)count * gv_size[et]);
        }
        if (st == HS_OK && kv->key_len == 17 && !memcmp(kv->key, "general.alignment", 17)) {
            if (kv->type != GV_U32) {
                st = bad("general.alignment is not a u32");
                break;
            }
            memcpy(&alignment, kv->val, 4);
            if (alignment == 0 || (alignment & (alignment - 1)) || alignment > (1u << 24))
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: general.alignment %u is not a power of two "
                             "up to 2^24", alignment);
        }
    }
    g->n_kv = (int64_t)nkv;
    for (uint64_t i = 0; i < nt && st == HS_OK; i++) {
        hs_gguf_tensor *t = &g->t[i];
        const char *name;
        size_t len;
        uint32_t nd, type;
        uint64_t off;
        if (!rd_str(&c, &name, &len) || !rd(&c, &nd, 4)) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor info %llu is truncated",
                         (unsigned long long)i);
            break;
        }
        if (len == 0 || len >= HS_GGUF_MAX_NAME || memchr(name, 0, len)) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor %llu has a name of %zu bytes (1..%d, no "
                         "NUL)", (unsigned long long)i, len, HS_GGUF_MAX_NAME - 1);
            break;
        }
        memcpy(t->name, name, len);
        t->name[len] = 0;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->t[j].name, t->name)) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' appears twice", t->name);
                break;
            }
        if (st != HS_OK) break;
        if (nd < 1 || nd > 4) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' has %u dimensions (1..4)", t->name,
                         nd);
            break;
        }
        t->n_dims = (int32_t)nd;
        t->n_elem = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (!rd(&c, &v, 8)) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor info '%s' is truncated", t->name);
                break;
            }
            if (v < 1 || v > (uint64_t)INT64_MAX / (uint64_t)t->n_elem ||
                v * (uint64_t)t->n_elem > ((uint64_t)1 << 40)) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' has dimension %u of %llu (the "
                             "element count must be in [1, 2^40])", t->name, d,
                             (unsigned long long)v);
                break;
            }
            t->ne[d] = (int64_t)v;
            t->n_elem *= (int64_t)v;
        }
        if (st != HS_OK) break;
        if (!rd(&c, &type, 4) || !rd(&c, &off, 8)) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor info '%s' is truncated", t->name);
            break;
        }
        if (!type_known(type)) {
            st = hs_fail(HS_ERR_UNSUPPORTED, "GGUF: tensor '%s' has ggml type %u; halfs reads "
                         "f32 (0), f16 (1), bf16 (30) and mxfp4 (39)", t->name, type);
            break;
        }
        t->type = (hs_gguf_type)type;
        if (t->type == HS_GGUF_MXFP4 && t->ne[0] % HS_GGUF_MXFP4_BLOCK) {
            st = hs_fail(HS_ERR_CORRUPT, "GGUF: MXFP4 tensor '%s' has rows of %lld elements, "
                         "not whole blocks of 32", t->name, (long long)t->ne[0]);
            break;
        }
        t->n_bytes = type_bytes(t->type, t->n_elem);
        t->data = (const uint8_t *)(uintptr_t)off; /* an offset until the data start is known */
    }
    g->n_tensors = (int64_t)nt;
    if (st == HS_OK) {
        size_t hdr = n - c.left;
        size_t start = (hdr + alignment - 1) / alignment * alignment;
        if (nt > 0 && start > n) st = bad("the tensor data starts past the end of the file");
        uint64_t expect = 0;
        for (uint64_t i = 0; i < nt && st == HS_OK; i++) {
            hs_gguf_tensor *t = &g->t[i];
            uint64_t off = (uint64_t)(uintptr_t)t->data;
            if (off != expect) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' is at offset %llu, expected %llu "
                             "(tensors follow each other, aligned to %u)", t->name,
                             (unsigned long long)off, (unsigned long long)expect, alignment);
                break;
            }
            if (off > n - start || t->n_bytes > n - start - off) {
                st = hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' (%zu bytes at offset %llu) runs "
                             "past the end of the file", t->name, t->n_bytes,
                             (unsigned long long)off);
                break;
            }
            t->data = g->base + start + off;
            expect = (off + t->n_bytes + alignment - 1) / alignment * alignment;
        }
    }
    if (st != HS_OK) {
        hs_gguf_free(g);
        return st;
    }
    *out = g;
    return HS_OK;
}

void hs_gguf_free(hs_gguf *g) {
    if (!g) return;
    free(g->kv);
    free(g->t);
    free(g);
}

int64_t hs_gguf_n_tensors(const hs_gguf *g) { return g->n_tensors; }

const hs_gguf_tensor *hs_gguf_tensor_at(const hs_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->t[i] : NULL;
}

const hs_gguf_tensor *hs_gguf_find_tensor(const hs_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

static const gkv *find_kv(const hs_gguf *g, const char *key) {
    size_t l = strlen(key);
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == l && !memcmp(g->kv[i].key, key, l)) return &g->kv[i];
    return NULL;
}

static hs_status typed_kv(const hs_gguf *g, const char *key, uint32_t type, const gkv **kv) {
    *kv = find_kv(g, key);
    if (!*kv) return hs_fail(HS_ERR_IO, "GGUF: key '%s' is missing", key);
    if ((*kv)->type != type)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: key '%s' has value type %u, expected %u", key,
                       (*kv)->type, type);
    return HS_OK;
}

hs_status hs_gguf_get_u32(const hs_gguf *g, const char *key, uint32_t *out) {
    const gkv *kv;
    hs_status st = typed_kv(g, key, GV_U32, &kv);
    if (st == HS_OK) memcpy(out, kv->val, 4);
    return st;
}

hs_status hs_gguf_get_f32(const hs_gguf *g, const char *key, float *out) {
    const gkv *kv;
    hs_status st = typed_kv(g, key, GV_F32, &kv);
    if (st == HS_OK) memcpy(out, kv->val, 4);
    return st;
}

hs_status hs_gguf_get_str(const hs_gguf *g, const char *key, const char **s, size_t *len) {
    const gkv *kv;
    hs_status st = typed_kv(g, key, GV_STR, &kv);
    if (st != HS_OK) return st;
    uint64_t l;
    memcpy(&l, kv->val, 8); /* checked by the parser */
    *s = (const char *)kv->val + 8;
    *len = (size_t)l;
    return HS_OK;
}

hs_status hs_gguf_get_arr(const hs_gguf *g, const char *key, uint32_t *elem_type,
                          uint64_t *count) {
    const gkv *kv;
    hs_status st = typed_kv(g, key, GV_ARR, &kv);
    if (st == HS_OK) {
        *elem_type = kv->elem_type;
        *count = kv->count;
    }
    return st;
}

/* ---- the llama model ---- */

/* A required u32 key in [lo, hi]. */
static hs_status req_u32(const hs_gguf *g, const char *key, uint32_t lo, uint32_t hi,
                         int32_t *out) {
    uint32_t v;
    hs_status st = hs_gguf_get_u32(g, key, &v);
    if (st != HS_OK) return st == HS_ERR_IO ? hs_fail(HS_ERR_CORRUPT, "GGUF: key '%s' is missing",
                                                      key)
                                            : st;
    if (v < lo || v > hi)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: %s is %u, outside [%u, %u]", key, v, lo, hi);
    *out = (int32_t)v;
    return HS_OK;
}

/* An optional u32 key: HS_OK with *present 0 when absent. */
static hs_status opt_u32(const hs_gguf *g, const char *key, uint32_t *v, int *present) {
    *present = find_kv(g, key) != NULL;
    return *present ? hs_gguf_get_u32(g, key, v) : HS_OK;
}

/* Tensor `name` with n_dims dims (ne0, ne1); norms and matrices. */
static hs_status want_tensor(const hs_gguf *g, const char *name, int n_dims, int64_t ne0,
                             int64_t ne1) {
    const hs_gguf_tensor *t = hs_gguf_find_tensor(g, name);
    if (!t) return hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' is missing", name);
    int64_t e1 = t->ne[1];
    if (t->n_dims != n_dims || t->ne[0] != ne0 || (n_dims == 2 && e1 != ne1))
        return hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' has shape [%lld, %lld] (%d dims), "
                       "expected [%lld, %lld] (%d dims)", name, (long long)t->ne[0],
                       (long long)e1, t->n_dims, (long long)ne0, (long long)(n_dims == 2 ? ne1 : 1),
                       n_dims);
    if (n_dims == 1 && t->type == HS_GGUF_MXFP4)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: norm '%s' is MXFP4", name);
    return HS_OK;
}

hs_status hs_gguf_llama_config(const hs_gguf *g, hs_model_config *c) {
    const char *s;
    size_t l;
    hs_status st = hs_gguf_get_str(g, "general.architecture", &s, &l);
    if (st != HS_OK)
        return st == HS_ERR_IO ? hs_fail(HS_ERR_CORRUPT, "GGUF: general.architecture is missing")
                               : st;
    if (l != 5 || memcmp(s, "llama", 5))
        return hs_fail(HS_ERR_UNSUPPORTED, "GGUF: architecture '%.*s'; halfs runs 'llama'",
                       (int)(l > 64 ? 64 : l), s);
    memset(c, 0, sizeof *c);
    if ((st = req_u32(g, "llama.context_length", 1, 1 << 16, &c->max_seq)) ||
        (st = req_u32(g, "llama.embedding_length", 2, 65536, &c->dim)) ||
        (st = req_u32(g, "llama.block_count", 1, 1024, &c->n_layers)) ||
        (st = req_u32(g, "llama.feed_forward_length", 1, 1 << 20, &c->ffn_dim)) ||
        (st = req_u32(g, "llama.attention.head_count", 1, 65536, &c->n_heads)))
        return st;
    if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: %d heads do not split width %d into even head "
                       "dims", c->n_heads, c->dim);
    uint32_t v;
    int present;
    if ((st = opt_u32(g, "llama.attention.head_count_kv", &v, &present))) return st;
    if (present && v != (uint32_t)c->n_heads)
        return hs_fail(HS_ERR_UNSUPPORTED, "GGUF: %u key/value heads for %d query heads; halfs "
                       "runs multi-head attention (equal counts)", v, c->n_heads);
    if ((st = opt_u32(g, "llama.rope.dimension_count", &v, &present))) return st;
    if (present && v != (uint32_t)(c->dim / c->n_heads))
        return hs_fail(HS_ERR_UNSUPPORTED, "GGUF: RoPE over %u dims of heads of %d; halfs "
                       "rotates whole heads", v, c->dim / c->n_heads);
    st = hs_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &c->norm_eps);
    if (st != HS_OK)
        return st == HS_ERR_IO ? hs_fail(HS_ERR_CORRUPT, "GGUF: llama.attention."
                                         "layer_norm_rms_epsilon is missing")
                               : st;
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
        return bad("llama.attention.layer_norm_rms_epsilon is not a positive number");
    c->rope_theta = 10000.0f;
    if (find_kv(g, "llama.rope.freq_base") &&
        (st = hs_gguf_get_f32(g, "llama.rope.freq_base", &c->rope_theta)))
        return st;
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return bad("llama.rope.freq_base is not a positive number");
    const hs_gguf_tensor *emb = hs_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return bad("tensor 'token_embd.weight' is missing");
    if (emb->n_dims != 2 || emb->ne[1] < 2 || emb->ne[1] > 65536)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: token_embd.weight is not a matrix of 2..65536 rows");
    c->vocab = (int32_t)emb->ne[1];
    if ((st = opt_u32(g, "llama.vocab_size", &v, &present))) return st;
    if (present && v != (uint32_t)c->vocab)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: llama.vocab_size %u but token_embd has %d rows", v,
                       c->vocab);
    if (find_kv(g, "tokenizer.ggml.tokens")) {
        uint32_t et;
        uint64_t n;
        if ((st = hs_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n))) return st;
        if (et != GV_STR || n != (uint64_t)c->vocab)
            return hs_fail(HS_ERR_CORRUPT, "GGUF: tokenizer.ggml.tokens holds %llu entries of type "
                           "%u; the model has %d tokens", (unsigned long long)n, et, c->vocab);
    }
    c->tied_embeddings = hs_gguf_find_tensor(g, "output.weight") == NULL;
    int64_t C = c->dim, F = c->ffn_dim, V = c->vocab;
    int64_t expect = 2 + 9 * (int64_t)c->n_layers + (c->tied_embeddings ? 0 : 1);
    if (g->n_tensors != expect)
        return hs_fail(HS_ERR_CORRUPT, "GGUF: %lld tensors; a llama model of %d blocks has %lld",
                       (long long)g->n_tensors, c->n_layers, (long long)expect);
    if ((st = want_tensor(g, "token_embd.weight", 2, C, V)) ||
        (st = want_tensor(g, "output_norm.weight", 1, C, 1)) ||
        (!c->tied_embeddings && (st = want_tensor(g, "output.weight", 2, C, V))))
        return st;
    static const struct { const char *n; int dims; int in_f, out_f; } blk[9] = {
        {"attn_norm", 1, 0, 0},  {"attn_q", 2, 0, 0},   {"attn_k", 2, 0, 0},
        {"attn_v", 2, 0, 0},     {"attn_output", 2, 0, 0}, {"ffn_norm", 1, 0, 0},
        {"ffn_gate", 2, 0, 1},   {"ffn_up", 2, 0, 1},   {"ffn_down", 2, 1, 0},
    };
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < 9; k++) {
            char name[HS_GGUF_MAX_NAME];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, blk[k].n);
            if ((st = want_tensor(g, name, blk[k].dims, blk[k].in_f ? F : C,
                                  blk[k].out_f ? F : C)))
                return st;
        }
    return HS_OK;
}

hs_status hs_gguf_tensor_to_f32(const hs_gguf_tensor *t, float *out) {
    const uint8_t *p = t->data;
    int64_t n = t->n_elem;
    switch (t->type) {
    case HS_GGUF_F32: memcpy(out, p, (size_t)n * 4); break;
    case HS_GGUF_F16:
    case HS_GGUF_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = t->type == HS_GGUF_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        break;
    case HS_GGUF_MXFP4:
        for (int64_t b = 0; b < n / HS_GGUF_MXFP4_BLOCK; b++)
            hs_gguf_mxfp4_decode(p + b * HS_GGUF_MXFP4_BLOCK_BYTES, out + b * HS_GGUF_MXFP4_BLOCK);
        break;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return hs_fail(HS_ERR_CORRUPT, "GGUF: tensor '%s' has a value that is not finite at "
                           "element %lld", t->name, (long long)i);
    return HS_OK;
}
