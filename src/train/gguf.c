/* gguf.c: a halfs model to a GGUF llama model (hs_gguf_export) and back (hs_gguf_load_model);
 * the parser and the checks of what is read are in gguf_read.c. Names, keys and the q/k
 * permutation follow llama.cpp's Hugging Face converter (convert_hf_to_gguf.py, LlamaModel).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "train/fileio.h"
#include "train/gguf.h"
#include "train/tokenizer.h"

/* GGUF value types used here (gguf.h of ggml). */
enum { GV_U32 = 4, GV_I32 = 5, GV_F32 = 6, GV_BOOL = 7, GV_STR = 8, GV_ARR = 9 };
enum { ALIGN = 32 };

typedef hs_buf buf;

static void put(buf *b, const void *d, size_t k) { hs_buf_put(b, d, k); }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_strn(buf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}
static void put_str(buf *b, const char *s) { put_strn(b, s, strlen(s)); }
static void pad(buf *b) {
    static const uint8_t z[ALIGN] = {0};
    if (b->n % ALIGN) put(b, z, ALIGN - b->n % ALIGN);
}

static void kv_u32(buf *b, const char *k, uint32_t v) {
    put_str(b, k);
    put_u32(b, GV_U32);
    put_u32(b, v);
}
static void kv_f32(buf *b, const char *k, float v) {
    put_str(b, k);
    put_u32(b, GV_F32);
    put(b, &v, 4);
}
static void kv_bool(buf *b, const char *k, int v) {
    uint8_t x = (uint8_t)(v != 0);
    put_str(b, k);
    put_u32(b, GV_BOOL);
    put(b, &x, 1);
}
static void kv_str(buf *b, const char *k, const char *v) {
    put_str(b, k);
    put_u32(b, GV_STR);
    put_str(b, v);
}

/* f32 → f16, round to nearest even; 0 when the value does not fit (|v| rounds past 65504). */
static int f32_to_f16(float f, uint16_t *h) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax >= 0x477FF000) return 0; /* 65520 and up round to Inf; NaN and Inf too */
    if (ax < 0x38800000) {          /* below 2^-14: a subnormal half, exactly round(|f|·2^24) */
        *h = (uint16_t)(sign | (uint16_t)nearbyintf(fabsf(f) * 0x1p24f));
        return 1;
    }
    uint32_t e = (ax >> 23) - 112, m = ax & 0x7FFFFF;
    uint32_t r = (e << 10) | (m >> 13), rem = m & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    *h = (uint16_t)(sign | r);
    return 1;
}

int hs_gguf_spec_is_mxfp4(const hs_quant_spec *s) {
    return s->elem == HS_ELEM_E2M1 && s->scale_fmt == HS_SCALE_E8M0 &&
           s->group == HS_GROUP_BLOCK && s->block == HS_GGUF_MXFP4_BLOCK && !s->tile2d &&
           !s->two_level && !s->rht && s->rounding != HS_ROUND_SR;
}

/* One tensor to write: its name, ggml shape, type and bytes. */
typedef struct {
    char name[HS_GGUF_MAX_NAME];
    int n_dims;
    int64_t ne0, ne1;
    hs_gguf_type type;
    uint8_t *data;
    size_t n_bytes;
} out_tensor;

/* Row r of the llama.cpp layout of a q or k matrix of heads of hd rows: llama.cpp's converter
 * reshapes the rows to (heads, 2, hd/2) and swaps the last two axes, so its row h·hd + 2i + s
 * is the Hugging Face row h·hd + s·hd/2 + i. perm = 0 (other matrices): the row itself. */
static int64_t src_row(int64_t r, int64_t hd, int perm) {
    if (!perm) return r;
    int64_t h = r / hd, j = r % hd, i = j / 2, s = j % 2;
    return h * hd + s * (hd / 2) + i;
}

/* The bytes of w (rows × cols, Hugging Face [out, in]) as `type`, rows permuted when perm. */
static hs_status encode(const float *w, int64_t rows, int64_t cols, int64_t hd, int perm,
                        hs_gguf_type type, const hs_quant_spec *spec, out_tensor *t) {
    size_t n_bytes = type == HS_GGUF_F32    ? (size_t)(rows * cols) * 4
                     : type == HS_GGUF_MXFP4 ? (size_t)(rows * (cols / HS_GGUF_MXFP4_BLOCK)) *
                                                   HS_GGUF_MXFP4_BLOCK_BYTES
                                             : (size_t)(rows * cols) * 2;
    t->data = malloc(n_bytes ? n_bytes : 1);
    t->n_bytes = n_bytes;
    t->type = type;
    if (!t->data) return hs_fail(HS_ERR_NOMEM, "GGUF export: out of memory");
    if (type == HS_GGUF_MXFP4) {
        hs_packed p;
        hs_status st = hs_packed_alloc(&p, spec, rows, cols);
        if (st != HS_OK) return st;
        if ((st = hs_quantize(spec, w, rows, cols, cols, 0, &p)) != HS_OK) {
            hs_packed_free(&p);
            return st;
        }
        int64_t nb = cols / HS_GGUF_MXFP4_BLOCK;
        const uint8_t *sc = (const uint8_t *)p.scales;
        for (int64_t r = 0; r < rows; r++) {
            int64_t s = src_row(r, hd, perm);
            for (int64_t b = 0; b < nb; b++)
                hs_gguf_mxfp4_block(sc[s * p.groups_per_row + b],
                                    p.codes + s * p.code_stride + b * 16,
                                    t->data + (r * nb + b) * HS_GGUF_MXFP4_BLOCK_BYTES);
        }
        hs_packed_free(&p);
        return HS_OK;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *src = w + src_row(r, hd, perm) * cols;
        for (int64_t c = 0; c < cols; c++) {
            size_t i = (size_t)(r * cols + c);
            if (type == HS_GGUF_F32) {
                memcpy(t->data + 4 * i, &src[c], 4);
                continue;
            }
            uint16_t h;
            if (type == HS_GGUF_BF16) {
                h = hs_bf16_encode(src[c]);
                if (!isfinite(hs_bf16_decode(h)))
                    return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: %s has %g, which bf16 cannot "
                                   "hold", t->name, (double)src[c]);
            } else if (!f32_to_f16(src[c], &h)) {
                return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: %s has %g, beyond f16's 65504 "
                               "(export it as bf16 or f32)", t->name, (double)src[c]);
            }
            memcpy(t->data + 2 * i, &h, 2);
        }
    }
    return HS_OK;
}

/* The UTF-8 spelling of token bytes in GPT-2's byte-to-unicode map (every byte becomes one code
 * point below 0x800: one or two bytes) into s (room for 2·len + 1), NUL-terminated; its length. */
static size_t spell(char *s, const unsigned char *bytes, int len) {
    size_t n = 0;
    for (int i = 0; i < len; i++) {
        unsigned cp = hs_byte_to_unicode(bytes[i]);
        if (cp < 0x80) {
            s[n++] = (char)cp;
        } else {
            s[n++] = (char)(0xC0 | (cp >> 6));
            s[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    s[n] = 0;
    return n;
}

/* The tokenizer keys: tokens (padded with unused "[PADn]" entries up to the model's vocab),
 * their types, the merges, and the tokenizer.json itself. */
static hs_status put_tokenizer(buf *b, const char *json, int vocab, int *n_kv) {
    hs_tokenizer *tok = NULL;
    hs_status st = hs_tokenizer_from_json(json, strlen(json), &tok);
    if (st != HS_OK) return st;
    int tv = hs_tokenizer_vocab_size(tok), nm = hs_tokenizer_n_merges(tok);
    if (tv > vocab) {
        hs_tokenizer_free(tok);
        return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: the tokenizer has %d tokens, the model "
                       "only %d", tv, vocab);
    }
    kv_str(b, "tokenizer.ggml.model", "gpt2");
    kv_str(b, "tokenizer.ggml.pre", "gpt-2");
    put_str(b, "tokenizer.ggml.tokens");
    put_u32(b, GV_ARR);
    put_u32(b, GV_STR);
    put_u64(b, (uint64_t)vocab);
    for (int i = 0; i < vocab; i++) {
        if (i < tv) {
            int len;
            const unsigned char *bytes = hs_tokenizer_token_bytes(tok, i, &len);
            char *sp = malloc(2 * (size_t)len + 1);
            if (!sp) {
                b->oom = 1;
                break;
            }
            put_strn(b, sp, spell(sp, bytes, len));
            free(sp);
        } else {
            char pad_name[32];
            snprintf(pad_name, sizeof pad_name, "[PAD%d]", i);
            put_str(b, pad_name);
        }
    }
    put_str(b, "tokenizer.ggml.token_type");
    put_u32(b, GV_ARR);
    put_u32(b, GV_I32);
    put_u64(b, (uint64_t)vocab);
    for (int i = 0; i < vocab; i++) put_u32(b, i < tv ? 1u : 5u); /* NORMAL, UNUSED */
    put_str(b, "tokenizer.ggml.merges");
    put_u32(b, GV_ARR);
    put_u32(b, GV_STR);
    put_u64(b, (uint64_t)nm);
    for (int r = 0; r < nm && !b->oom; r++) {
        int l, rr, res, ll, lr;
        if ((st = hs_tokenizer_merge(tok, r, &l, &rr, &res)) != HS_OK) break;
        const unsigned char *bl = hs_tokenizer_token_bytes(tok, l, &ll);
        const unsigned char *br = hs_tokenizer_token_bytes(tok, rr, &lr);
        if (!bl || !br) {
            st = hs_fail(HS_ERR_INTERNAL, "GGUF export: merge %d names a missing token", r);
            break;
        }
        char *s = malloc(2 * (size_t)(ll + lr) + 2);
        if (!s) {
            b->oom = 1;
            break;
        }
        size_t n = spell(s, bl, ll);
        s[n++] = ' ';
        n += spell(s + n, br, lr);
        put_strn(b, s, n);
        free(s);
    }
    hs_tokenizer_free(tok);
    if (st != HS_OK) return st;
    kv_bool(b, "tokenizer.ggml.add_bos_token", 0);
    kv_bool(b, "tokenizer.ggml.add_eos_token", 0);
    kv_str(b, "tokenizer.huggingface.json", json);
    *n_kv += 8;
    return HS_OK;
}

hs_status hs_gguf_export(const hs_model *m, const char *tokenizer_json,
                         const hs_gguf_export_opts *o, const char *path) {
    const hs_model_config *c = &m->cfg;
    int64_t C = c->dim, F = c->ffn_dim, V = c->vocab, L = c->n_layers, hd = C / c->n_heads;
    if (o->weights == HS_GGUF_MXFP4) {
        if (!hs_gguf_spec_is_mxfp4(&o->spec))
            return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: the MXFP4 quantizer must be E2M1 "
                           "with E8M0 scales in blocks of 32, without RHT, 2D tiles or "
                           "stochastic rounding");
        if (C % HS_GGUF_MXFP4_BLOCK || F % HS_GGUF_MXFP4_BLOCK)
            return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: MXFP4 needs every linear's input "
                           "dimension to be a multiple of 32; this model has width %lld and FFN "
                           "width %lld", (long long)C, (long long)F);
    }
    if (o->other == HS_GGUF_MXFP4)
        return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: the embedding and output are written "
                       "as f32, f16 or bf16");
    if (!tokenizer_json)
        return hs_fail(HS_ERR_INVALID_ARG, "GGUF export: the model has no tokenizer");
    int n_t = (int)(2 + 9 * L + (c->tied_embeddings ? 0 : 1));
    out_tensor *ts = calloc((size_t)n_t, sizeof *ts);
    if (!ts) return hs_fail(HS_ERR_NOMEM, "GGUF export: out of memory");
    hs_status st = HS_OK;
    int k = 0;
    /* (llama.cpp name, Hugging Face name, permute, is a block linear) in file order */
    char hf[128], gn[HS_GGUF_MAX_NAME];
    for (int i = 0; i < n_t && st == HS_OK; i++) {
        int perm = 0, linear = 0, layer = -1;
        if (i == 0) {
            snprintf(hf, sizeof hf, "model.embed_tokens.weight");
            snprintf(gn, sizeof gn, "token_embd.weight");
        } else if (i <= 9 * L) {
            static const char *const g_names[9] = {"attn_norm", "attn_q", "attn_k", "attn_v",
                                                   "attn_output", "ffn_norm", "ffn_gate",
                                                   "ffn_up", "ffn_down"};
            static const char *const h_names[9] = {
                "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                "mlp.down_proj"};
            layer = (i - 1) / 9;
            int j = (i - 1) % 9;
            snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", layer, h_names[j]);
            snprintf(gn, sizeof gn, "blk.%d.%s.weight", layer, g_names[j]);
            perm = j == 1 || j == 2;
            linear = j != 0 && j != 5;
        } else if (i == 9 * L + 1) {
            snprintf(hf, sizeof hf, "model.norm.weight");
            snprintf(gn, sizeof gn, "output_norm.weight");
        } else {
            snprintf(hf, sizeof hf, "lm_head.weight");
            snprintf(gn, sizeof gn, "output.weight");
        }
        const hs_param_tensor *pt = hs_model_find_tensor(m, hf);
        if (!pt) {
            st = hs_fail(HS_ERR_INTERNAL, "GGUF export: the model has no tensor %s", hf);
            break;
        }
        out_tensor *t = &ts[k++];
        snprintf(t->name, sizeof t->name, "%s", gn);
        t->n_dims = pt->ndim;
        t->ne0 = pt->ndim == 2 ? pt->shape[1] : pt->shape[0];
        t->ne1 = pt->ndim == 2 ? pt->shape[0] : 1;
        hs_gguf_type type = pt->ndim == 1 ? HS_GGUF_F32 : linear ? o->weights : o->other;
        st = encode(m->params + pt->offset, t->ne1, t->ne0, hd, perm, type, &o->spec, t);
    }
    buf h = {0};
    if (st == HS_OK) {
        int n_kv = 0;
        buf kv = {0};
        kv_str(&kv, "general.architecture", "llama");
        kv_str(&kv, "general.name", o->name ? o->name : "halfs");
        kv_u32(&kv, "general.alignment", ALIGN);
        kv_u32(&kv, "llama.vocab_size", (uint32_t)V);
        kv_u32(&kv, "llama.context_length", (uint32_t)c->max_seq);
        kv_u32(&kv, "llama.embedding_length", (uint32_t)C);
        kv_u32(&kv, "llama.block_count", (uint32_t)L);
        kv_u32(&kv, "llama.feed_forward_length", (uint32_t)F);
        kv_u32(&kv, "llama.rope.dimension_count", (uint32_t)hd);
        kv_u32(&kv, "llama.attention.head_count", (uint32_t)c->n_heads);
        kv_u32(&kv, "llama.attention.head_count_kv", (uint32_t)c->n_heads);
        kv_f32(&kv, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
        kv_f32(&kv, "llama.rope.freq_base", c->rope_theta);
        n_kv = 13;
        st = put_tokenizer(&kv, tokenizer_json, (int)V, &n_kv);
        put(&h, "GGUF", 4);
        put_u32(&h, 3);
        put_u64(&h, (uint64_t)n_t);
        put_u64(&h, (uint64_t)n_kv);
        put(&h, kv.p, kv.n);
        if (kv.oom) h.oom = 1;
        free(kv.p);
        uint64_t off = 0;
        for (int i = 0; i < n_t && st == HS_OK; i++) {
            put_str(&h, ts[i].name);
            put_u32(&h, (uint32_t)ts[i].n_dims);
            put_u64(&h, (uint64_t)ts[i].ne0);
            if (ts[i].n_dims == 2) put_u64(&h, (uint64_t)ts[i].ne1);
            put_u32(&h, (uint32_t)ts[i].type);
            put_u64(&h, off);
            off += (ts[i].n_bytes + ALIGN - 1) / ALIGN * ALIGN;
        }
        pad(&h);
        if (st == HS_OK && h.oom) st = hs_fail(HS_ERR_NOMEM, "GGUF export: out of memory");
    }
    if (st == HS_OK) {
        /* header, then each tensor and its padding */
        static const uint8_t zeros[ALIGN] = {0};
        const void **parts = calloc((size_t)(1 + 2 * n_t), sizeof *parts);
        size_t *sizes = calloc((size_t)(1 + 2 * n_t), sizeof *sizes);
        if (!parts || !sizes) {
            st = hs_fail(HS_ERR_NOMEM, "GGUF export: out of memory");
        } else {
            parts[0] = h.p;
            sizes[0] = h.n;
            for (int i = 0; i < n_t; i++) {
                parts[1 + 2 * i] = ts[i].data;
                sizes[1 + 2 * i] = ts[i].n_bytes;
                parts[2 + 2 * i] = zeros;
                sizes[2 + 2 * i] = (ALIGN - ts[i].n_bytes % ALIGN) % ALIGN;
            }
            st = hs_file_write_atomic_parts(path, parts, sizes, 1 + 2 * n_t);
        }
        free(parts);
        free(sizes);
    }
    free(h.p);
    for (int i = 0; i < n_t; i++) free(ts[i].data);
    free(ts);
    return st;
}

hs_status hs_gguf_load_model(const void *data, size_t n, hs_model **out, char **tokenizer_json) {
    *out = NULL;
    if (tokenizer_json) *tokenizer_json = NULL;
    hs_gguf *g = NULL;
    hs_status st = hs_gguf_parse(data, n, &g);
    if (st != HS_OK) return st;
    hs_model_config c;
    hs_model *m = NULL;
    float *tmp = NULL;
    if ((st = hs_gguf_llama_config(g, &c)) != HS_OK || (st = hs_model_create(&c, &m)) != HS_OK)
        goto done;
    int64_t hd = c.dim / c.n_heads;
    for (int i = 0; i < m->n_tensors && st == HS_OK; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        char gn[HS_GGUF_MAX_NAME];
        int perm = 0, layer;
        char part[64];
        if (!strcmp(pt->name, "model.embed_tokens.weight")) {
            snprintf(gn, sizeof gn, "token_embd.weight");
        } else if (!strcmp(pt->name, "model.norm.weight")) {
            snprintf(gn, sizeof gn, "output_norm.weight");
        } else if (!strcmp(pt->name, "lm_head.weight")) {
            snprintf(gn, sizeof gn, "output.weight");
        } else if (sscanf(pt->name, "model.layers.%d.%63s", &layer, part) == 2) {
            static const char *const h_names[9] = {
                "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                "mlp.down_proj.weight"};
            static const char *const g_names[9] = {"attn_norm", "attn_q", "attn_k", "attn_v",
                                                   "attn_output", "ffn_norm", "ffn_gate",
                                                   "ffn_up", "ffn_down"};
            int j = 0;
            while (j < 9 && strcmp(part, h_names[j])) j++;
            if (j == 9) {
                st = hs_fail(HS_ERR_INTERNAL, "GGUF: no llama.cpp name for %s", pt->name);
                break;
            }
            snprintf(gn, sizeof gn, "blk.%d.%s.weight", layer, g_names[j]);
            perm = j == 1 || j == 2;
        } else {
            st = hs_fail(HS_ERR_INTERNAL, "GGUF: no llama.cpp name for %s", pt->name);
            break;
        }
        const hs_gguf_tensor *t = hs_gguf_find_tensor(g, gn); /* shape checked by llama_config */
        float *dst = m->params + pt->offset;
        if (!perm) {
            st = hs_gguf_tensor_to_f32(t, dst);
            continue;
        }
        free(tmp);
        if (!(tmp = malloc((size_t)t->n_elem * sizeof *tmp))) {
            st = hs_fail(HS_ERR_NOMEM, "GGUF: out of memory");
            break;
        }
        if ((st = hs_gguf_tensor_to_f32(t, tmp)) != HS_OK) break;
        int64_t cols = t->ne[0];
        for (int64_t r = 0; r < t->ne[1]; r++)
            memcpy(dst + src_row(r, hd, 1) * cols, tmp + r * cols, (size_t)cols * sizeof *tmp);
    }
    if (st == HS_OK && tokenizer_json) {
        const char *s;
        size_t l;
        hs_status ts = hs_gguf_get_str(g, "tokenizer.huggingface.json", &s, &l);
        if (ts == HS_OK) {
            if (!(*tokenizer_json = malloc(l + 1))) {
                st = hs_fail(HS_ERR_NOMEM, "GGUF: out of memory");
            } else {
                memcpy(*tokenizer_json, s, l);
                (*tokenizer_json)[l] = 0;
            }
        } else if (ts != HS_ERR_IO) {
            st = ts;
        }
    }
done:
    free(tmp);
    hs_gguf_free(g);
    if (st != HS_OK) {
        hs_model_free(m);
        if (tokenizer_json) {
            free(*tokenizer_json);
            *tokenizer_json = NULL;
        }
        return st;
    }
    *out = m;
    return HS_OK;
}

/* Files larger than this are refused (a model of halfs' presets is far smaller). */
#define GGUF_MAX_BYTES ((size_t)1 << 36)

hs_status hs_gguf_open_model(const char *path, hs_model **out, char **tokenizer_json) {
    char *data = NULL;
    size_t n = 0;
    hs_status st = hs_file_read_all(path, GGUF_MAX_BYTES, &data, &n);
    if (st != HS_OK) return st;
    st = hs_gguf_load_model(data, n, out, tokenizer_json);
    free(data);
    if (st != HS_OK) {
        char msg[512]; /* the parser's message, with the file named in front */
        snprintf(msg, sizeof msg, "%s", hs_last_error());
        return hs_fail(st, "%s: %s", path, msg);
    }
    return HS_OK;
}

int hs_gguf_is_file(const char *path) {
    if (!hs_is_file(path)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4];
    int ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    fclose(f);
    return ok;
}
