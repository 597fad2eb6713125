/* test_gguf.c: GGUF export and reading (src/train/gguf.h, tools/cmd_export.c). MXFP4 blocks
 * against a hand-checked table and against a transcription of ggml's reference quantizer
 * (quantize_row_mxfp4_ref); an f32 export reads back bit-identical and evaluates bit-identically;
 * an MXFP4 export evaluates bit-identically to the checkpoint run with only fwd.w quantized by
 * the same rule; q/k rows are in llama.cpp's order; bf16/f16 exports; bad input (dimensions
 * that do not fit 32-blocks, f16 overflow, unwritable output, every truncation and corrupted
 * fields of a file) is a clear error, never a crash, and leaves no file; the CLI end to end,
 * and which quantizer the export of a run takes;
 * llama.cpp's Python reader (the `gguf` package) on every export type (tests/gguf_check.py, run
 * with pytest by /usr/bin/python3 or $HALFS_PYTHON; skipped where gguf, numpy or pytest is
 * missing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "halfs/codec.h"
#include "halfs/quant.h"
#include "nn/model.h"
#include "nn/recipe.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/gguf.h"
#include "train/tokenizer.h"
#include "train/trainer.h"
#include "util.h"

/* ---- ggml's reference quantizer, transcribed from ggml/src/ggml-quants.c (llama.cpp
 * e95dae18d64a): best_index_mxfp4 and quantize_row_mxfp4_ref, with the scale byte given
 * (ggml_mxfp4_ref_block) or computed as ggml computes it (ggml_mxfp4_ref). ---- */
static const int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static float e8m0_to_fp32_half(uint8_t x) {
    uint32_t bits = x < 2 ? 0x00200000u << x : (uint32_t)(x - 1) << 23;
    float r;
    memcpy(&r, &bits, 4);
    return r;
}

static int best_index_mxfp4(float x, float e) {
    int best_index = 0;
    float best_err = fabsf(kvalues_mxfp4[0] * e - x);
    for (int i = 1; i < 16; i++) {
        float err = fabsf(kvalues_mxfp4[i] * e - x);
        if (err < best_err) {
            best_index = i;
            best_err = err;
        }
    }
    return best_index;
}

static void ggml_mxfp4_ref_block(const float *x, uint8_t e, uint8_t out[17]) {
    const float d = e8m0_to_fp32_half(e);
    out[0] = e;
    for (int j = 0; j < 16; ++j)
        out[1 + j] = (uint8_t)(best_index_mxfp4(x[j], d) | best_index_mxfp4(x[16 + j], d) << 4);
}

static void ggml_mxfp4_ref(const float *x, uint8_t out[17]) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]);
    const uint8_t e = amax > 0.0f ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0;
    ggml_mxfp4_ref_block(x, e, out);
}

/* The ggml blocks of one row of 32·nb values quantized by halfs with spec. */
static void halfs_blocks(const hs_quant_spec *spec, const float *x, int nb, uint8_t *out) {
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, spec, 1, 32 * nb), HS_OK);
    assert_int_equal(hs_quantize(spec, x, 1, 32 * nb, 32 * nb, 0, &p), HS_OK);
    for (int b = 0; b < nb; b++)
        hs_gguf_mxfp4_block(((uint8_t *)p.scales)[b], p.codes + 16 * b, out + 17 * b);
    hs_packed_free(&p);
}

static hs_quant_spec mxfp4_spec(hs_rule rule, hs_rounding r) {
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    s.rule = rule;
    s.rounding = r;
    return s;
}

/* Hand-checked blocks. */
static void test_mxfp4_table(void **state) {
    (void)state;
    /* 1. codes 0..15 twice (element i has code i mod 16), scale byte 127: ggml byte j holds
     * element j (low) and j+16 (high), both code j; −0 (code 8) is written as +0. */
    uint8_t codes[16], out[17];
    for (int i = 0; i < 16; i++) codes[i] = (uint8_t)((2 * i) % 16 | ((2 * i + 1) % 16) << 4);
    hs_gguf_mxfp4_block(127, codes, out);
    static const uint8_t want1[17] = {0x7F, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x00, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};
    assert_memory_equal(out, want1, 17);
    float v[32];
    hs_gguf_mxfp4_decode(out, v);
    static const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int i = 0; i < 32; i++) {
        int c = i % 16;
        assert_true(v[i] == (c < 8 ? e2m1[c] : -e2m1[c - 8]));
    }
    /* 2. values with amax 6: ggml's (and OCP's) scale byte is floor(log2 6) − 2 + 127 = 127
     * (scale 1); the elements 6 → code 7, −0.2 → 0 (+0, not −0), 1.25 (tie 1 | 1.5) → 2 (ggml
     * takes the first, smaller, value), −2.5 (tie) → 0xC (−2), 0.25 (tie 0 | 0.5) → 0, −6 →
     * 0xF, 3.9 → 6 (4); the rest 0. */
    float x[32] = {0};
    x[0] = 6.0f, x[1] = -0.2f, x[2] = 1.25f, x[3] = -2.5f, x[4] = 0.25f, x[16] = -6.0f,
    x[17] = 3.9f;
    static const uint8_t want2[17] = {0x7F, 0xF7, 0x60, 0x02, 0x0C, 0x00, 0, 0, 0,
                                      0,    0,    0,    0,    0,    0,    0, 0};
    ggml_mxfp4_ref(x, out);
    assert_memory_equal(out, want2, 17);
    hs_quant_spec s = mxfp4_spec(HS_RULE_OCP, HS_ROUND_RTS); /* ggml's rule and tie-break */
    halfs_blocks(&s, x, 1, out);
    assert_memory_equal(out, want2, 17);
    /* 3. amax 12: scale byte floor(log2 12) − 2 + 127 = 128 (scale 2): 12 = 6·2 → code 7,
     * −1 = −0.5·2 → code 9, element 31: 3 = 1.5·2 → code 3 in the high nibble of byte 15. */
    float y[32] = {0};
    y[0] = 12.0f, y[1] = -1.0f, y[31] = 3.0f;
    ggml_mxfp4_ref(y, out);
    static const uint8_t want3[17] = {0x80, 0x07, 0x09, 0, 0, 0, 0, 0, 0,
                                      0,    0,    0,    0, 0, 0, 0, 0x30};
    assert_memory_equal(out, want3, 17);
    halfs_blocks(&s, y, 1, out);
    assert_memory_equal(out, want3, 17);
}

/* On random data: halfs' ocp/RTS blocks equal ggml's reference quantizer byte for byte; for
 * every rule with RNE, ggml's encoder given halfs' scale byte and halfs' qdq values writes
 * halfs' bytes, and the blocks decode to the qdq values exactly. */
static void test_mxfp4_vs_ggml(void **state) {
    (void)state;
    enum { NB = 64, N = 32 * NB };
    float *x = malloc(N * sizeof *x), *q = malloc(N * sizeof *q), *d = malloc(N * sizeof *d);
    uint8_t *a = malloc(NB * 17), *b = malloc(NB * 17);
    uint64_t seed = 7;
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < N; i++) {
            double u = util_rand_unif(&seed), w = util_rand_unif(&seed);
            double g = sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * w);
            x[i] = (float)(kind ? g * 0.02 : g * (i % 97 == 0 ? 30 : 1));
        }
        hs_quant_spec s = mxfp4_spec(HS_RULE_OCP, HS_ROUND_RTS);
        halfs_blocks(&s, x, NB, a);
        for (int k = 0; k < NB; k++) ggml_mxfp4_ref(x + 32 * k, b + 17 * k);
        assert_memory_equal(a, b, NB * 17);
        static const hs_rule rules[] = {HS_RULE_HALFS, HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_HALF};
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            s = mxfp4_spec(rules[r], HS_ROUND_RNE);
            halfs_blocks(&s, x, NB, a);
            assert_int_equal(hs_qdq(&s, x, 1, N, N, 0, q, N), HS_OK);
            for (int k = 0; k < NB; k++) {
                ggml_mxfp4_ref_block(q + 32 * k, a[17 * k], b + 17 * k);
                hs_gguf_mxfp4_decode(a + 17 * k, d + 32 * k);
            }
            assert_memory_equal(a, b, NB * 17);
            for (int i = 0; i < N; i++) assert_true(d[i] == q[i]);
        }
    }
    free(x), free(q), free(d), free(a), free(b);
}

/* ---- models ---- */

static char *tok_json(void) {
    static const char text[] = "In the beginning God created the heaven and the earth. And the "
                               "earth was without form, and void; and darkness was upon the face "
                               "of the deep. And the Spirit of God moved upon the face of the "
                               "waters. And God said, Let there be light: and there was light.";
    const unsigned char *t[1] = {(const unsigned char *)text};
    size_t n = sizeof text - 1;
    hs_tokenizer *tok = NULL;
    assert_int_equal(hs_tokenizer_train(t, &n, 1, 300, &tok), HS_OK);
    char *j = hs_tokenizer_to_json(tok);
    assert_non_null(j);
    hs_tokenizer_free(tok);
    return j;
}

static hs_model *nano(int dim, int ffn, int tied) {
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("nano", &c), HS_OK);
    c.vocab = 300;
    c.dim = dim;
    c.ffn_dim = ffn;
    c.tied_embeddings = tied;
    hs_model *m = NULL;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    hs_model_init_weights(m, 42);
    return m;
}

/* Logits of a fixed batch, copied (caller frees). */
static float *logits_of(hs_model *m, const hs_recipe *r, float *loss) {
    enum { B = 2, T = 24 };
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (i * 37 + 11) % m->cfg.vocab;
        tg[i] = (i * 53 + 5) % m->cfg.vocab;
    }
    assert_int_equal(hs_model_forward(m, r, 0, in, tg, B, T, loss), HS_OK);
    size_t n = (size_t)B * T * (size_t)m->cfg.vocab;
    float *l = malloc(n * sizeof *l);
    memcpy(l, hs_model_logits(m), n * sizeof *l);
    return l;
}

static hs_model *load(const char *path) {
    hs_model *m = NULL;
    char *tj = NULL;
    assert_int_equal(hs_gguf_open_model(path, &m, &tj), HS_OK);
    assert_non_null(tj);
    free(tj);
    return m;
}

static void test_f32_roundtrip(void **state) {
    (void)state;
    char *tj = tok_json();
    for (int tied = 0; tied < 2; tied++) {
        hs_model *m = nano(64, 192, tied);
        char p[4200];
        util_path(p, sizeof p, "f32.gguf");
        hs_gguf_export_opts o = {.weights = HS_GGUF_F32, .other = HS_GGUF_F32};
        assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_OK);
        /* the file's keys and tensors */
        size_t n;
        char *data = util_read_file(p, &n);
        hs_gguf *g = NULL;
        assert_int_equal(hs_gguf_parse(data, n, &g), HS_OK);
        assert_int_equal(hs_gguf_n_tensors(g), 2 + 9 * 2 + (tied ? 0 : 1));
        uint32_t u;
        assert_int_equal(hs_gguf_get_u32(g, "llama.attention.head_count", &u), HS_OK);
        assert_int_equal(u, 4);
        const char *s;
        size_t l;
        assert_int_equal(hs_gguf_get_str(g, "tokenizer.ggml.pre", &s, &l), HS_OK);
        assert_true(l == 5 && !memcmp(s, "gpt-2", 5));
        uint32_t et;
        uint64_t cnt;
        assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &cnt), HS_OK);
        assert_int_equal(cnt, 300);
        assert_int_equal(hs_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &cnt), HS_OK);
        assert_int_equal(cnt, 300 - 256);
        assert_int_equal(hs_gguf_get_u32(g, "llama.context_length", &u), HS_OK);
        assert_int_equal(u, m->cfg.max_seq);
        assert_null(hs_gguf_find_tensor(g, "rope_freqs.weight"));
        assert_true((hs_gguf_find_tensor(g, "output.weight") == NULL) == tied);
        /* q is permuted as llama.cpp's converter does: its row h·hd + 2i + s is HF row
         * h·hd + s·hd/2 + i (hd = 16 here); v is not */
        const hs_gguf_tensor *q = hs_gguf_find_tensor(g, "blk.1.attn_q.weight");
        const hs_gguf_tensor *k = hs_gguf_find_tensor(g, "blk.1.attn_k.weight");
        const hs_gguf_tensor *v = hs_gguf_find_tensor(g, "blk.1.attn_v.weight");
        assert_true(q && k && v && q->ne[0] == 64 && q->ne[1] == 64 && q->type == HS_GGUF_F32);
        const hs_param_tensor *hq =
            hs_model_find_tensor(m, "model.layers.1.self_attn.q_proj.weight");
        const hs_param_tensor *hk =
            hs_model_find_tensor(m, "model.layers.1.self_attn.k_proj.weight");
        const hs_param_tensor *hv =
            hs_model_find_tensor(m, "model.layers.1.self_attn.v_proj.weight");
        const int rows[][2] = {{0, 0}, {1, 8}, {2, 1}, {3, 9}, {15, 15}, {16, 16}, {17, 24},
                               {50, 16 * 3 + 1}, {63, 63}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            assert_memory_equal(q->data + 4 * 64 * rows[i][0],
                                m->params + hq->offset + 64 * rows[i][1], 64 * 4);
            assert_memory_equal(k->data + 4 * 64 * rows[i][0],
                                m->params + hk->offset + 64 * rows[i][1], 64 * 4);
            assert_memory_equal(v->data + 4 * 64 * rows[i][0],
                                m->params + hv->offset + 64 * rows[i][0], 64 * 4);
        }
        hs_gguf_free(g);
        free(data);
        /* read back: the same parameters and the same logits, bit for bit */
        hs_model *r = load(p);
        assert_int_equal(r->n_params, m->n_params);
        assert_memory_equal(r->params, m->params, (size_t)m->n_params * 4);
        assert_int_equal(r->cfg.tied_embeddings, tied);
        float la, lb;
        float *a = logits_of(m, NULL, &la), *b = logits_of(r, NULL, &lb);
        assert_memory_equal(a, b, sizeof(float) * 2 * 24 * 300);
        assert_memory_equal(&la, &lb, 4);
        free(a), free(b);
        hs_model_free(r);
        hs_model_free(m);
    }
    free(tj);
}

/* An MXFP4 export run in fp32 equals the checkpoint run in fp32 with fwd.w = mxfp4:RULE. */
static void test_mxfp4_eval_equals_role_override(void **state) {
    (void)state;
    char *tj = tok_json();
    hs_model *m = nano(64, 192, 0);
    static const struct { hs_rule rule; const char *role; } cases[] = {
        {HS_RULE_HALFS, "fwd.w=mxfp4:halfs"}, {HS_RULE_OCP, "fwd.w=mxfp4:ocp"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char p[4200];
        util_path(p, sizeof p, "mx.gguf");
        hs_gguf_export_opts o = {.weights = HS_GGUF_MXFP4, .other = HS_GGUF_F32,
                                 .spec = mxfp4_spec(cases[c].rule, HS_ROUND_RNE)};
        assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_OK);
        hs_model *r = load(p);
        hs_recipe_opts ro;
        hs_recipe_opts_defaults(&ro);
        snprintf(ro.name, sizeof ro.name, "fp32");
        snprintf(ro.roles, sizeof ro.roles, "%s", cases[c].role);
        hs_recipe rec;
        assert_int_equal(hs_recipe_build(&ro, 0, &rec), HS_OK);
        float la, lb;
        float *a = logits_of(m, &rec, &la), *b = logits_of(r, NULL, &lb);
        assert_memory_equal(a, b, sizeof(float) * 2 * 24 * 300);
        assert_memory_equal(&la, &lb, 4);
        /* and differs from the unquantized model (the weights really are MXFP4) */
        float lc;
        float *f = logits_of(m, NULL, &lc);
        assert_true(lc != la);
        free(a), free(b), free(f);
        hs_model_free(r);
    }
    hs_model_free(m);
    free(tj);
}

static void test_bf16_f16(void **state) {
    (void)state;
    char *tj = tok_json();
    hs_model *m = nano(64, 192, 0);
    char p[4200];
    util_path(p, sizeof p, "h.gguf");
    for (int f16 = 0; f16 < 2; f16++) {
        hs_gguf_export_opts o = {.weights = f16 ? HS_GGUF_F16 : HS_GGUF_BF16,
                                 .other = f16 ? HS_GGUF_F16 : HS_GGUF_BF16};
        assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_OK);
        hs_model *r = load(p);
        for (int i = 0; i < m->n_tensors; i++) {
            const hs_param_tensor *t = &m->tensors[i];
            if (strstr(t->name, "q_proj") || strstr(t->name, "k_proj")) continue; /* permuted */
            for (int64_t j = 0; j < t->numel; j++) {
                float w = m->params[t->offset + j], g = r->params[t->offset + j];
                float want = t->ndim == 1 ? w
                             : f16       ? (float)(_Float16)w
                                         : hs_bf16_decode(hs_bf16_encode(w));
                assert_true(g == want);
            }
        }
        hs_model_free(r);
    }
    /* a weight beyond f16's range: an error naming it, no file */
    unlink(p);
    m->params[m->tensors[2].offset + 5] = 70000.0f;
    hs_gguf_export_opts o = {.weights = HS_GGUF_F16, .other = HS_GGUF_F32};
    assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "65504"));
    assert_int_equal(access(p, F_OK), -1);
    hs_model_free(m);
    free(tj);
}

static void test_export_errors(void **state) {
    (void)state;
    char *tj = tok_json();
    char p[4200];
    util_path(p, sizeof p, "bad.gguf");
    hs_gguf_export_opts o = {.weights = HS_GGUF_MXFP4, .other = HS_GGUF_F32,
                             .spec = mxfp4_spec(HS_RULE_HALFS, HS_ROUND_RNE)};
    /* width 48 and FFN 200: not 32-blocks */
    hs_model *m = nano(48, 192, 0);
    assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "multiple of 32"));
    hs_model_free(m);
    m = nano(64, 200, 0);
    assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_ERR_INVALID_ARG);
    assert_int_equal(access(p, F_OK), -1);
    /* fine as bf16 */
    hs_gguf_export_opts ob = {.weights = HS_GGUF_BF16, .other = HS_GGUF_F32};
    assert_int_equal(hs_gguf_export(m, tj, &ob, p), HS_OK);
    hs_model_free(m);
    /* a quantizer that is not ggml's MXFP4 */
    m = nano(64, 192, 0);
    hs_gguf_export_opts o16 = o;
    o16.spec.block = 16;
    assert_int_equal(hs_gguf_export(m, tj, &o16, p), HS_ERR_INVALID_ARG);
    hs_gguf_export_opts osr = o;
    osr.spec.rounding = HS_ROUND_SR;
    assert_int_equal(hs_gguf_export(m, tj, &osr, p), HS_ERR_INVALID_ARG);
    /* an output directory that does not exist */
    char q[4200];
    util_path(q, sizeof q, "no/such/dir/m.gguf");
    assert_int_equal(hs_gguf_export(m, tj, &o, q), HS_ERR_IO);
    hs_model_free(m);
    free(tj);
}

/* A small valid file, then every truncation and a set of corrupted fields: an error, no crash. */
static void test_corrupt_files(void **state) {
    (void)state;
    char *tj = tok_json();
    hs_model *m = nano(64, 192, 1);
    m->cfg.n_layers = 1; /* fewer tensors: only the first block is exported */
    char p[4200];
    util_path(p, sizeof p, "c.gguf");
    hs_gguf_export_opts o = {.weights = HS_GGUF_MXFP4, .other = HS_GGUF_F32,
                             .spec = mxfp4_spec(HS_RULE_HALFS, HS_ROUND_RNE)};
    assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_OK);
    m->cfg.n_layers = 2;
    hs_model_free(m);
    size_t n;
    uint8_t *data = (uint8_t *)util_read_file(p, &n);
    hs_model *r = NULL;
    assert_int_equal(hs_gguf_load_model(data, n, &r, NULL), HS_OK);
    hs_model_free(r);
    for (size_t k = 0; k < n; k += (k < 4096 ? 1 : 997)) {
        uint8_t *cp = malloc(k ? k : 1);
        memcpy(cp, data, k);
        r = NULL;
        hs_status st = hs_gguf_load_model(cp, k, &r, NULL);
        assert_int_not_equal(st, HS_OK);
        assert_null(r);
        free(cp);
    }
    /* header fields: magic, version, counts; a byte flipped anywhere in the header */
    size_t hdr = 0;
    {
        hs_gguf *g = NULL;
        assert_int_equal(hs_gguf_parse(data, n, &g), HS_OK);
        hdr = (size_t)(hs_gguf_tensor_at(g, 0)->data - data);
        hs_gguf_free(g);
    }
    uint8_t *cp = malloc(n);
    for (size_t k = 0; k < hdr; k++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(cp, data, n);
            cp[k] ^= (uint8_t)(1 << bit);
            r = NULL;
            hs_status st = hs_gguf_load_model(cp, n, &r, NULL);
            if (st == HS_OK) hs_model_free(r); /* e.g. a changed character of the tokenizer */
        }
    memcpy(cp, data, n);
    cp[0] = 'X';
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "not a GGUF file"));
    memcpy(cp, data, n);
    cp[4] = 2;
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "version"));
    memcpy(cp, data, n);
    memset(cp + 8, 0xFF, 8); /* tensor count */
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_CORRUPT);
    /* a type halfs does not read (Q4_0 = 2) in the first tensor info: find it by name */
    memcpy(cp, data, n);
    uint8_t *nm = memmem(cp, hdr, "token_embd.weight", 17);
    assert_non_null(nm);
    uint8_t *type = nm + 17 + 4 + 2 * 8;
    type[0] = 2;
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_UNSUPPORTED);
    /* an offset that is not where the previous tensor ends */
    memcpy(cp, data, n);
    type = nm + 17 + 4 + 2 * 8;
    type[4] = 32;
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "offset"));
    /* a shape that does not match the hyperparameters */
    memcpy(cp, data, n);
    nm[17 + 4] = 32;
    assert_int_not_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_OK);
    /* a NaN weight (E8M0 0xFF in the first MXFP4 block) */
    memcpy(cp, data, n);
    hs_gguf *g = NULL;
    assert_int_equal(hs_gguf_parse(cp, n, &g), HS_OK);
    const hs_gguf_tensor *t = hs_gguf_find_tensor(g, "blk.0.attn_q.weight");
    assert_int_equal(t->type, HS_GGUF_MXFP4);
    cp[t->data - cp] = 0xFF;
    hs_gguf_free(g);
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "not finite"));
    /* architecture other than llama */
    memcpy(cp, data, n);
    uint8_t *arch = memmem(cp, hdr, "llama", 5);
    arch[0] = 'L';
    assert_int_equal(hs_gguf_load_model(cp, n, &r, NULL), HS_ERR_UNSUPPORTED);
    free(cp);
    free(data);
    free(tj);
}

/* ---- the CLI ---- */

static void test_cli(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char *tj = tok_json();
    char run[4200], tokp[4200], val[4200], out[4200], of32[4200];
    util_path(run, sizeof run, "clirun");
    util_path(tokp, sizeof tokp, "tokenizer.json");
    util_path(val, sizeof val, "val.bin");
    util_path(out, sizeof out, "m.gguf");
    util_path(of32, sizeof of32, "f.gguf");
    util_write_file(tokp, tj, strlen(tj));
    hs_model *m = nano(64, 192, 0);
    assert_int_equal(hs_checkpoint_save(run, m, NULL, NULL, tokp, 1, NULL, 0), HS_OK);
    hs_model_free(m);
    uint16_t tok[2000];
    for (int i = 0; i < 2000; i++) tok[i] = (uint16_t)((i * 7919 + i / 3) % 300);
    assert_int_equal(hs_shard_write(val, tok, 2000), HS_OK);
    char *o = NULL, *e = NULL;
    /* weights-only checkpoint: --rule default halfs */
    util_expect_exit_ok(util_run(NULL, NULL, "export", run, "-o", out, NULL));
    util_expect_exit_ok(util_run(NULL, NULL, "export", run, "-o", of32, "--weights", "f32", NULL));
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    util_expect_exit_ok(util_run(&a, NULL, "eval", out, "--data", val, "--seq", "64", "--json",
                                 NULL));
    util_expect_exit_ok(util_run(&b, NULL, "eval", run, "--data", val, "--seq", "64", "--json",
                                 "--recipe", "fp32", "--role", "fwd.w=mxfp4:halfs", NULL));
    util_expect_exit_ok(util_run(&c, NULL, "eval", of32, "--data", val, "--seq", "64", "--json",
                                 NULL));
    util_expect_exit_ok(util_run(&d, NULL, "eval", run, "--data", val, "--seq", "64", "--json",
                                 "--recipe", "fp32", NULL));
    /* the same figures (the "checkpoint" field names the file) */
    assert_true(strlen(a) > 40 && !strncmp(a, b, (size_t)(strstr(a, "\"checkpoint\"") - a)));
    assert_true(!strncmp(c, d, (size_t)(strstr(c, "\"checkpoint\"") - c)));
    assert_true(strncmp(a, c, 20) != 0);
    free(a), free(b), free(c), free(d);
    util_expect_exit_ok(util_run(&o, &e, "sample", out, "--prompt", "And God", "--tokens", "5",
                                 NULL));
    assert_true(!strncmp(o, "And God", 7));
    free(o), free(e);
    /* bad input */
    char empty[4200], nodir[4200], junk[4200];
    util_path(empty, sizeof empty, "empty");
    util_path(nodir, sizeof nodir, "nodir/x.gguf");
    util_path(junk, sizeof junk, "junk.gguf");
    assert_int_equal(hs_mkdir_p(empty), HS_OK);
    UTIL_EXPECT_USAGE_ERROR("checkpoint", "export", empty, "-o", out);
    UTIL_EXPECT_USAGE_ERROR("writable", "export", run, "-o", nodir);
    assert_int_equal(access(nodir, F_OK), -1);
    UTIL_EXPECT_USAGE_ERROR("--weights", "export", run, "-o", junk, "--weights", "q4");
    UTIL_EXPECT_USAGE_ERROR("no output", "export", run);
    assert_int_equal(access(junk, F_OK), -1);
    util_write_file(junk, "GGUF\3\0\0\0\1", 9);
    UTIL_EXPECT_USAGE_ERROR("GGUF", "eval", junk, "--data", val);
    free(tj);
}

/* `halfs export` of a run's checkpoint takes the run's forward-weight quantizer when it is MXFP4
 * in blocks of 32 (mxfp4-ocp: rule ocp; mxfp4-halfs: halfs), and rule halfs otherwise (nvfp4, or
 * --block 16); --rule overrides it. The GGUF's linears hold exactly hs_qdq of that quantizer. */
static void test_cli_run_rule(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char *tj = tok_json();
    char tokp[4200];
    util_path(tokp, sizeof tokp, "tokenizer.json");
    util_write_file(tokp, tj, strlen(tj));
    static const struct {
        const char *recipe;
        int block;
        const char *rule;
        hs_rule want;
    } cases[] = {
        {"mxfp4-ocp", 0, NULL, HS_RULE_OCP},      {"mxfp4-halfs", 0, NULL, HS_RULE_HALFS},
        {"mxfp4-max", 0, NULL, HS_RULE_CEIL},     {"nvfp4", 0, NULL, HS_RULE_HALFS},
        {"mxfp4-ocp", 16, NULL, HS_RULE_HALFS},   {"mxfp4-ocp", 0, "halfs", HS_RULE_HALFS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char run[4200], out[4200];
        snprintf(out, sizeof out, "run-%zu", c);
        util_path(run, sizeof run, out);
        util_path(out, sizeof out, "r.gguf");
        hs_model *m = nano(64, 192, 0);
        hs_train_config tc;
        hs_train_config_defaults(&tc);
        tc.model = m->cfg;
        snprintf(tc.recipe.name, sizeof tc.recipe.name, "%s", cases[c].recipe);
        tc.recipe.block = cases[c].block;
        hs_train_state ts = {.step = 1, .n_params = m->n_params, .val_loss = NAN};
        ts.m = calloc((size_t)m->n_params, sizeof(float));
        ts.v = calloc((size_t)m->n_params, sizeof(float));
        assert_int_equal(hs_checkpoint_save(run, m, &tc, &ts, tokp, 1, NULL, 0), HS_OK);
        free(ts.m), free(ts.v);
        if (cases[c].rule)
            util_expect_exit_ok(util_run(NULL, NULL, "export", run, "-o", out, "--rule",
                                         cases[c].rule, NULL));
        else
            util_expect_exit_ok(util_run(NULL, NULL, "export", run, "-o", out, NULL));
        hs_model *r = load(out);
        hs_quant_spec spec = mxfp4_spec(cases[c].want, HS_ROUND_RNE);
        const hs_param_tensor *t = hs_model_find_tensor(m, "model.layers.0.mlp.down_proj.weight");
        float *q = malloc((size_t)t->numel * sizeof *q);
        assert_int_equal(hs_qdq(&spec, m->params + t->offset, t->shape[0], t->shape[1],
                                t->shape[1], 0, q, t->shape[1]),
                         HS_OK);
        for (int64_t i = 0; i < t->numel; i++) /* equal values (−0 is written as +0) */
            assert_true(q[i] == r->params[t->offset + i]);
        free(q);
        hs_model_free(r);
        hs_model_free(m);
    }
    free(tj);
}

/* ---- llama.cpp's Python reader (tests/gguf_check.py) ---- */

static const char *python(void) {
    const char *p = getenv("HALFS_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* tests/gguf_check.py: next to the executable's ../../tests/, or from the working directory. */
static int find_check_script(char *out, size_t n) {
    char exe[PATH_MAX / 2];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *s = strrchr(exe, '/');
        if (s) {
            *s = '\0';
            if (snprintf(out, n, "%s/../../tests/gguf_check.py", exe) < (int)n &&
                access(out, R_OK) == 0)
                return 1;
        }
    }
    snprintf(out, n, "tests/gguf_check.py");
    return access(out, R_OK) == 0;
}

static void write_f32(const char *dir, const char *name, const char *ext, const float *x,
                      int64_t n) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s%s", dir, name, ext);
    util_write_file(p, x, (size_t)n * sizeof *x);
}

static void test_gguf_python(void **state) {
    (void)state;
    char cmd[9000], script[PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import gguf, numpy, pytest' >/dev/null 2>&1", python());
    if (system(cmd) != 0) {
        print_message("%s cannot import gguf, numpy and pytest; skipping\n", python());
        skip();
    }
    assert_true(find_check_script(script, sizeof script));
    char dir[4200];
    util_path(dir, sizeof dir, "pycheck");
    assert_int_equal(hs_mkdir_p(dir), HS_OK);
    char *tj = tok_json();
    hs_model *m = nano(64, 192, 0);
    hs_quant_spec spec = mxfp4_spec(HS_RULE_HALFS, HS_ROUND_RNE);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *t = &m->tensors[i];
        const float *w = m->params + t->offset;
        write_f32(dir, t->name, ".f32", w, t->numel);
        if (t->ndim == 2 && t->layer >= 0) {
            float *q = malloc((size_t)t->numel * sizeof *q);
            assert_int_equal(hs_qdq(&spec, w, t->shape[0], t->shape[1], t->shape[1], 0, q,
                                    t->shape[1]),
                             HS_OK);
            write_f32(dir, t->name, ".qdq.f32", q, t->numel);
            free(q);
        }
    }
    static const hs_gguf_type types[] = {HS_GGUF_MXFP4, HS_GGUF_F32, HS_GGUF_BF16, HS_GGUF_F16};
    char js[2048];
    int off = snprintf(js, sizeof js,
                       "{\"dim\": %d, \"layers\": %d, \"heads\": %d, \"ffn\": %d, \"vocab\": %d, "
                       "\"max_seq\": %d, \"eps\": %.9g, \"theta\": %.9g, \"n_merges\": %d, "
                       "\"exports\": {",
                       m->cfg.dim, m->cfg.n_layers, m->cfg.n_heads, m->cfg.ffn_dim, m->cfg.vocab,
                       m->cfg.max_seq, (double)m->cfg.norm_eps, (double)m->cfg.rope_theta,
                       300 - 256);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/m-%s.gguf", dir, hs_gguf_type_name(types[i]));
        hs_gguf_export_opts o = {.weights = types[i], .other = HS_GGUF_F32, .spec = spec};
        assert_int_equal(hs_gguf_export(m, tj, &o, p), HS_OK);
        off += snprintf(js + off, sizeof js - (size_t)off, "%s\"m-%s.gguf\": \"%s\"",
                        i ? ", " : "", hs_gguf_type_name(types[i]), hs_gguf_type_name(types[i]));
    }
    snprintf(js + off, sizeof js - (size_t)off, "}}\n");
    char p[4400];
    snprintf(p, sizeof p, "%s/model.json", dir);
    util_write_file(p, js, strlen(js));
    snprintf(cmd, sizeof cmd,
             "HALFS_GGUF_DIR='%s' '%s' -m pytest -q -p no:cacheprovider '%s' 2>&1", dir, python(),
             script);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[4096];
    int passed = 0;
    while (fgets(line, sizeof line, f)) {
        fputs(line, stdout);
        if (strstr(line, " passed") && !strstr(line, "failed")) passed = atoi(line);
    }
    int rc = pclose(f);
    assert_int_equal(rc, 0);
    assert_int_equal(passed, 8); /* keys and tensors of the four exports */
    hs_model_free(m);
    free(tj);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxfp4_table),
        cmocka_unit_test(test_mxfp4_vs_ggml),
        cmocka_unit_test(test_f32_roundtrip),
        cmocka_unit_test(test_mxfp4_eval_equals_role_override),
        cmocka_unit_test(test_bf16_f16),
        cmocka_unit_test(test_export_errors),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_cli_run_rule),
        cmocka_unit_test(test_gguf_python),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
