/* test_nn_grad.c: gradient checks of every layer of the model and of the whole nano model.
 *
 * Per op: the float forward is compared with a double-precision reference forward written
 * here, and the float backward with central finite differences of that double reference
 * (h = 1e-6 in double, so truncation and rounding errors are ~1e-9, far below float's
 * precision). Tolerances are float's: the ops accumulate O(C) terms in float, so relative
 * errors of a few ×1e-6 are expected; we allow 1e-4 of the vector's largest magnitude.
 * The whole model (fp32, recipe NULL) is checked by finite differences in float on a few
 * parameters of every tensor (see test_model_fd for its tolerance).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "kernels/kernels.h"
#include "nn/ops.h"
#include "nn/vmath.h"

static uint64_t rng_state = 0x1234567ull;
static double urand(void) { // uniform [-1, 1)
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng_state >> 11) * 0x1.0p-53) * 2.0 - 1.0;
}
static void fill(float *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(urand() * scale);
}
static double maxabs_d(const double *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}
/* Assert float a ≈ double ref within rel · max|ref| (+ a tiny absolute floor). */
static void assert_close(const char *what, const float *a, const double *ref, int64_t n,
                         double rel) {
    double scale = maxabs_d(ref, n) + 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)a[i] - ref[i]);
        if (err > rel * scale) {
            fail_msg("%s[%lld]: got %.9g, want %.9g (err %.3g > %.3g)", what, (long long)i,
                     (double)a[i], ref[i], err, rel * scale);
        }
    }
}

#define REL 1e-4
#define FD_H 1e-6

/* ---------------------------------------------------------------- rmsnorm */
static void rmsnorm_ref(double *out, const double *x, const double *w, int N, int C, double eps) {
    for (int i = 0; i < N; i++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x[i * C + c] * x[i * C + c];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) out[i * C + c] = w[c] * x[i * C + c] * r;
    }
}

static void test_rmsnorm(void **state) {
    (void)state;
    enum { N = 5, C = 24 };
    float x[N * C], w[C], g[N * C], out[N * C], rstd[N], dx[N * C], dw[C];
    float scratch[HS_NN_CHUNKS * C];
    fill(x, N * C, 2.0);
    fill(w, C, 1.5);
    fill(g, N * C, 1.0);
    double xd[N * C], wd[C], od[N * C], num_dx[N * C], num_dw[C];
    for (int i = 0; i < N * C; i++) xd[i] = x[i];
    for (int i = 0; i < C; i++) wd[i] = w[i];
    hs_rmsnorm_forward(out, rstd, x, w, N, C, 1e-5f);
    rmsnorm_ref(od, xd, wd, N, C, 1e-5);
    assert_close("rmsnorm out", out, od, N * C, REL);
    // loss = Σ g ∘ out
#define LOSS_RMS(res)                                                                        \
    do {                                                                                     \
        rmsnorm_ref(od, xd, wd, N, C, 1e-5);                                                 \
        res = 0;                                                                             \
        for (int q = 0; q < N * C; q++) res += g[q] * od[q];                                 \
    } while (0)
    for (int i = 0; i < N * C; i++) {
        double lp, lm, s = xd[i];
        xd[i] = s + FD_H; LOSS_RMS(lp);
        xd[i] = s - FD_H; LOSS_RMS(lm);
        xd[i] = s;
        num_dx[i] = (lp - lm) / (2 * FD_H);
    }
    for (int i = 0; i < C; i++) {
        double lp, lm, s = wd[i];
        wd[i] = s + FD_H; LOSS_RMS(lp);
        wd[i] = s - FD_H; LOSS_RMS(lm);
        wd[i] = s;
        num_dw[i] = (lp - lm) / (2 * FD_H);
    }
    // backward accumulates: start from a known nonzero value and subtract it
    for (int i = 0; i < N * C; i++) dx[i] = 0.5f;
    for (int i = 0; i < C; i++) dw[i] = -0.25f;
    hs_rmsnorm_backward(dx, dw, scratch, g, x, w, rstd, N, C);
    for (int i = 0; i < N * C; i++) dx[i] -= 0.5f;
    for (int i = 0; i < C; i++) dw[i] += 0.25f;
    assert_close("rmsnorm dx", dx, num_dx, N * C, REL);
    assert_close("rmsnorm dw", dw, num_dw, C, REL);
}

/* ---------------------------------------------------------------- rope */
static void rope_ref(double *qkv, int B, int T, int C, int H, double theta) {
    int hd = C / H, h = hd / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int part = 0; part < 2; part++)
                for (int hh = 0; hh < H; hh++) {
                    double *v = qkv + ((b * T + t) * 3 * C) + part * C + hh * hd;
                    for (int i = 0; i < h; i++) {
                        double inv = (float)(1.0 / pow(theta, (double)(2 * i) / hd));
                        double ang = (float)(t * inv);
                        double a = v[i], bb = v[i + h];
                        v[i] = a * cos(ang) - bb * sin(ang);
                        v[i + h] = bb * cos(ang) + a * sin(ang);
                    }
                }
}

static void test_rope(void **state) {
    (void)state;
    enum { B = 2, T = 9, C = 16, H = 2, M = B * T * 3 * C };
    float x[M], g[M], cs[T * 4], sn[T * 4];
    double xd[M], yd[M], num[M];
    fill(x, M, 1.0);
    fill(g, M, 1.0);
    hs_rope_tables(cs, sn, T, C / H, 10000.0f);
    for (int i = 0; i < M; i++) xd[i] = yd[i] = x[i];
    rope_ref(yd, B, T, C, H, 10000.0);
    hs_rope_forward(x, cs, sn, B, T, C, H);
    assert_close("rope out", x, yd, M, REL);
    for (int i = 0; i < M; i++) {
        double s = xd[i], lp = 0, lm = 0;
        memcpy(yd, xd, sizeof yd);
        yd[i] = s + FD_H;
        rope_ref(yd, B, T, C, H, 10000.0);
        for (int q = 0; q < M; q++) lp += g[q] * yd[q];
        memcpy(yd, xd, sizeof yd);
        yd[i] = s - FD_H;
        rope_ref(yd, B, T, C, H, 10000.0);
        for (int q = 0; q < M; q++) lm += g[q] * yd[q];
        num[i] = (lp - lm) / (2 * FD_H);
    }
    hs_rope_backward(g, cs, sn, B, T, C, H);
    assert_close("rope dx", g, num, M, REL);
}

/* ---------------------------------------------------------------- attention */
static void attention_ref(double *out, const double *qkv, int B, int T, int C, int H) {
    int hd = C / H;
    double sc = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + (b * T + t) * 3 * C + h * hd;
                double s[256], mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *k = qkv + (b * T + j) * 3 * C + C + h * hd;
                    s[j] = 0;
                    for (int d = 0; d < hd; d++) s[j] += q[d] * k[d];
                    s[j] *= sc;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                double *o = out + (b * T + t) * C + h * hd;
                for (int d = 0; d < hd; d++) {
                    o[d] = 0;
                    for (int j = 0; j <= t; j++)
                        o[d] += s[j] / sum * qkv[(b * T + j) * 3 * C + 2 * C + h * hd + d];
                }
            }
}

static void test_attention(void **state) {
    (void)state;
    enum { B = 2, T = 7, C = 16, H = 2, M = B * T * 3 * C, O = B * T * C };
    float qkv[M], g[O], out[O], lse[B * H * T], dqkv[M];
    double qd[M], od[O], num[M];
    fill(qkv, M, 1.5);
    fill(g, O, 1.0);
    for (int i = 0; i < M; i++) qd[i] = qkv[i];
    assert_int_equal(hs_attention_forward(out, lse, qkv, B, T, C, H, 0), HS_OK);
    attention_ref(od, qd, B, T, C, H);
    assert_close("attention out", out, od, O, REL);
    for (int i = 0; i < M; i++) {
        double s = qd[i], lp = 0, lm = 0;
        qd[i] = s + FD_H;
        attention_ref(od, qd, B, T, C, H);
        for (int q = 0; q < O; q++) lp += g[q] * od[q];
        qd[i] = s - FD_H;
        attention_ref(od, qd, B, T, C, H);
        for (int q = 0; q < O; q++) lm += g[q] * od[q];
        qd[i] = s;
        num[i] = (lp - lm) / (2 * FD_H);
    }
    for (int i = 0; i < M; i++) dqkv[i] = 123.0f; // overwritten, not accumulated
    assert_int_equal(hs_attention_backward(dqkv, g, qkv, out, lse, B, T, C, H, 0), HS_OK);
    assert_close("attention dqkv", dqkv, num, M, REL);
}

/* A sequence longer than the kernel's query block (64): three blocks, the last partial, with
 * large scores (softmax saturation); forward and backward against the double reference. */
static void test_attention_long(void **state) {
    (void)state;
    enum { B = 1, T = 130, C = 8, H = 2, M = B * T * 3 * C, O = B * T * C };
    static float qkv[M], out[O], lse[B * H * T], g[O], dqkv[M];
    static double qd[M], od[O], num[M];
    fill(qkv, M, 3.0);
    fill(g, O, 1.0);
    for (int i = 0; i < M; i++) qd[i] = qkv[i];
    assert_int_equal(hs_attention_forward(out, lse, qkv, B, T, C, H, 0), HS_OK);
    attention_ref(od, qd, B, T, C, H);
    assert_close("attention out (T=130)", out, od, O, REL);
    for (int i = 0; i < M; i++) {
        double s = qd[i], lp = 0, lm = 0;
        qd[i] = s + FD_H;
        attention_ref(od, qd, B, T, C, H);
        for (int q = 0; q < O; q++) lp += g[q] * od[q];
        qd[i] = s - FD_H;
        attention_ref(od, qd, B, T, C, H);
        for (int q = 0; q < O; q++) lm += g[q] * od[q];
        qd[i] = s;
        num[i] = (lp - lm) / (2 * FD_H);
    }
    assert_int_equal(hs_attention_backward(dqkv, g, qkv, out, lse, B, T, C, H, 0), HS_OK);
    assert_close("attention dqkv (T=130)", dqkv, num, M, REL);
}

/* bf16 products (the bf16 and FP4 recipes' attention): within bf16 rounding of the fp32 result
 * (8 significant bits on the operands and on P, dS: 2⁻⁸ relative per rounding, a few of them
 * per product, so 2% of the largest magnitude), and bit-identical at every ISA level and thread
 * count: three query blocks, the last partial, head size 12 (odd k-pairs, not a multiple of
 * any vector). */
static void test_attention_bf16(void **state) {
    (void)state;
    enum { B = 2, T = 130, C = 24, H = 2, M = B * T * 3 * C, O = B * T * C };
    static float qkv[M], g[O], out[O], lse[B * H * T], dqkv[M], d32[M], o1[O], dq1[M];
    static double qd[M], od[O];
    fill(qkv, M, 1.5);
    fill(g, O, 1.0);
    for (int i = 0; i < M; i++) qd[i] = qkv[i];
    attention_ref(od, qd, B, T, C, H);
    assert_int_equal(hs_attention_forward(out, lse, qkv, B, T, C, H, 0), HS_OK);
    assert_int_equal(hs_attention_backward(d32, g, qkv, out, lse, B, T, C, H, 0), HS_OK);
    double omax = 0, dmax = 0;
    for (int i = 0; i < O; i++) omax = fmax(omax, fabs(od[i]));
    for (int i = 0; i < M; i++) dmax = fmax(dmax, fabs((double)d32[i]));
    int first = 1;
    for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
        if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            assert_int_equal(hs_attention_forward(out, lse, qkv, B, T, C, H, 1), HS_OK);
            for (int i = 0; i < M; i++) dqkv[i] = 123.0f; // overwritten, not accumulated
            assert_int_equal(hs_attention_backward(dqkv, g, qkv, out, lse, B, T, C, H, 1), HS_OK);
            if (first) {
                for (int i = 0; i < O; i++) assert_true(fabs(out[i] - od[i]) <= 0.02 * omax);
                for (int i = 0; i < M; i++) assert_true(fabs(dqkv[i] - d32[i]) <= 0.02 * dmax);
                memcpy(o1, out, sizeof out);
                memcpy(dq1, dqkv, sizeof dqkv);
                first = 0;
            } else {
                assert_memory_equal(out, o1, sizeof out);
                assert_memory_equal(dqkv, dq1, sizeof dqkv);
            }
        }
    }
    hs_isa_force(hs_isa_detect());
    omp_set_num_threads(2);
}

/* ---------------------------------------------------------------- swiglu */
static void swiglu_ref(double *h, const double *gu, int N, int F) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < F; j++) {
            double g = gu[i * 2 * F + j], u = gu[i * 2 * F + F + j];
            h[i * F + j] = g / (1 + exp(-g)) * u;
        }
}

static void test_swiglu(void **state) {
    (void)state;
    enum { N = 6, F = 10 };
    float gu[N * 2 * F], g[N * F], h[N * F], dgu[N * 2 * F];
    double gd[N * 2 * F], hd[N * F], num[N * 2 * F];
    fill(gu, N * 2 * F, 4.0);
    fill(g, N * F, 1.0);
    for (int i = 0; i < N * 2 * F; i++) gd[i] = gu[i];
    hs_swiglu_forward(h, gu, N, F);
    swiglu_ref(hd, gd, N, F);
    assert_close("swiglu out", h, hd, N * F, REL);
    for (int i = 0; i < N * 2 * F; i++) {
        double s = gd[i], lp = 0, lm = 0;
        gd[i] = s + FD_H;
        swiglu_ref(hd, gd, N, F);
        for (int q = 0; q < N * F; q++) lp += g[q] * hd[q];
        gd[i] = s - FD_H;
        swiglu_ref(hd, gd, N, F);
        for (int q = 0; q < N * F; q++) lm += g[q] * hd[q];
        gd[i] = s;
        num[i] = (lp - lm) / (2 * FD_H);
    }
    hs_swiglu_backward(dgu, g, gu, N, F);
    assert_close("swiglu dgu", dgu, num, N * 2 * F, REL);
}

/* ---------------------------------------------------------------- cross-entropy */
static double ce_ref(const double *z, const int32_t *tg, int N, int V) {
    double L = 0;
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0) continue;
        double mx = -1e300, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, z[i * V + j]);
        for (int j = 0; j < V; j++) s += exp(z[i * V + j] - mx);
        L += mx + log(s) - z[i * V + tg[i]];
    }
    return L;
}

static void test_crossentropy(void **state) {
    (void)state;
    enum { N = 5, V = 11 };
    float z[N * V], losses[N], lse[N];
    int32_t tg[N] = {3, 0, -1, 10, 7};
    double zd[N * V], num[N * V];
    fill(z, N * V, 5.0);
    for (int i = 0; i < N * V; i++) zd[i] = z[i];
    hs_crossentropy_forward(losses, lse, z, tg, N, V);
    double tot = 0;
    for (int i = 0; i < N; i++) tot += losses[i];
    assert_float_equal(losses[2], 0.0f, 0.0f);
    double want = ce_ref(zd, tg, N, V);
    assert_true(fabs(tot - want) <= 1e-5 * fabs(want));
    for (int i = 0; i < N * V; i++) {
        double s = zd[i];
        zd[i] = s + FD_H;
        double lp = ce_ref(zd, tg, N, V);
        zd[i] = s - FD_H;
        double lm = ce_ref(zd, tg, N, V);
        zd[i] = s;
        num[i] = 0.5 * (lp - lm) / (2 * FD_H); // dloss = 0.5 below
    }
    hs_crossentropy_backward(z, lse, tg, N, V, 0.5f);
    assert_close("crossentropy dlogits", z, num, N * V, REL);
}

/* ---------------------------------------------------------------- embedding + AdamW */
static void test_embedding(void **state) {
    (void)state;
    enum { V = 5, C = 20, N = 6 };
    float wte[V * C], out[N * C], g[N * C], dw[V * C];
    int32_t in[N] = {1, 4, 1, 0, 1, 3};
    fill(wte, V * C, 1.0);
    fill(g, N * C, 1.0);
    hs_embedding_forward(out, in, wte, N, C);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) assert_true(out[i * C + c] == wte[in[i] * C + c]);
    memset(dw, 0, sizeof dw);
    hs_embedding_backward(dw, g, in, N, C);
    for (int v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            float want = 0.0f;
            for (int i = 0; i < N; i++)
                if (in[i] == v) want += g[i * C + c];
            assert_true(dw[v * C + c] == want);
        }
}

static void test_adamw(void **state) {
    (void)state;
    enum { n = 7 };
    float p[n], g[n], m[n], v[n];
    double pd[n], md[n], vd[n];
    fill(p, n, 1.0);
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    for (int i = 0; i < n; i++) pd[i] = p[i], md[i] = vd[i] = 0;
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    for (int t = 1; t <= 5; t++) {
        fill(g, n, 1.0);
        hs_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, t);
        for (int i = 0; i < n; i++) { // the formula of the PyTorch docs, in double
            pd[i] -= lr * wd * pd[i];
            md[i] = b1 * md[i] + (1 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(b1, t)), vh = vd[i] / (1 - pow(b2, t));
            pd[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    assert_close("adamw p", p, pd, n, 1e-5);
    assert_close("adamw m", m, md, n, 1e-5);
    assert_close("adamw v", v, vd, n, 1e-5);
}

/* The vectorised, span-parallel update (adamw.c) equals the same float operations done one
 * element at a time here, bit for bit, on a length that is not a multiple of its span or of
 * any vector width; and it is the same at 1 and 2 threads. */
static void test_adamw_large(void **state) {
    (void)state;
    enum { n = 2 * 16384 + 37 };
    float *p = malloc(4 * sizeof(float) * n), *g = p + n, *m = p + 2 * n, *v = p + 3 * n;
    float *q = malloc(3 * sizeof(float) * n), *mq = q + n, *vq = q + 2 * n;
    assert_non_null(p);
    assert_non_null(q);
    fill(p, n, 1.0);
    fill(g, n, 0.1);
    fill(m, n, 0.01);
    fill(v, n, 1e-4);
    for (int i = 0; i < n; i++) v[i] = fabsf(v[i]), q[i] = p[i], mq[i] = m[i], vq[i] = v[i];
    double lr = 3e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    int64_t t = 3;
    hs_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, t);
    float decay = (float)(1.0 - lr * wd), step = (float)(lr / (1.0 - pow(b1, 3)));
    float bc2s = (float)sqrt(1.0 - pow(b2, 3));
    for (int i = 0; i < n; i++) {
        float pi = q[i] * decay;
        float mi = mq[i] * (float)b1 + (float)(1.0 - b1) * g[i];
        float vi = vq[i] * (float)b2 + (float)(1.0 - b2) * g[i] * g[i];
        float den = sqrtf(vi) / bc2s + (float)eps;
        float pw = pi + (-step) * mi / den;
        if (p[i] != pw || m[i] != mi || v[i] != vi)
            fail_msg("adamw[%d]: got p %.9g m %.9g v %.9g, want %.9g %.9g %.9g", i, (double)p[i],
                     (double)m[i], (double)v[i], (double)pw, (double)mi, (double)vi);
    }
    free(p);
    free(q);
}

/* Row kernels with vector reductions (rmsnorm, attention, rope) give identical bits at 1 and
 * 2 threads, on sizes that do not divide evenly into chunks or vectors. */
static void test_ops_thread_invariant(void **state) {
    (void)state;
    enum { B = 2, T = 37, C = 48, H = 3, N = B * T };
    float *x = malloc(sizeof(float) * N * 3 * C * 4), *w = malloc(sizeof(float) * C);
    float *dy = malloc(sizeof(float) * N * 3 * C);
    float *res[2][5]; // per thread count: rms out, rms dx, rms dw, att out, att dqkv
    assert_non_null(x);
    assert_non_null(w);
    assert_non_null(dy);
    fill(x, (int64_t)N * 3 * C, 1.0);
    fill(w, C, 1.0);
    fill(dy, (int64_t)N * 3 * C, 1.0);
    float cs[T * 8], sn[T * 8], scratch[HS_NN_CHUNKS * C], rstd[N], lse[N * H];
    hs_rope_tables(cs, sn, T, C / H, 10000.0f);
    int saved = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        for (int j = 0; j < 5; j++) {
            res[k][j] = calloc((size_t)N * 3 * C, sizeof(float));
            assert_non_null(res[k][j]);
        }
        hs_rmsnorm_forward(res[k][0], rstd, x, w, N, C, 1e-5f);
        hs_rmsnorm_backward(res[k][1], res[k][2], scratch, dy, x, w, rstd, N, C);
        float *qkv = res[k][4]; // rope then attention on a copy of x
        memcpy(qkv, x, sizeof(float) * N * 3 * C);
        hs_rope_forward(qkv, cs, sn, B, T, C, H);
        assert_int_equal(hs_attention_forward(res[k][3], lse, qkv, B, T, C, H, 0), HS_OK);
        float *dqkv = malloc(sizeof(float) * N * 3 * C);
        assert_non_null(dqkv);
        assert_int_equal(hs_attention_backward(dqkv, dy, qkv, res[k][3], lse, B, T, C, H, 0),
                         HS_OK);
        hs_rope_backward(dqkv, cs, sn, B, T, C, H);
        memcpy(qkv, dqkv, sizeof(float) * N * 3 * C);
        free(dqkv);
    }
    omp_set_num_threads(saved);
    const char *names[5] = {"rmsnorm out", "rmsnorm dx", "rmsnorm dw", "attention out",
                            "attention+rope dqkv"};
    int64_t sizes[5] = {N * C, N * C, C, N * C, N * 3 * C};
    for (int j = 0; j < 5; j++) {
        if (memcmp(res[0][j], res[1][j], sizeof(float) * (size_t)sizes[j]))
            fail_msg("%s differs between 1 and 2 threads", names[j]);
        free(res[0][j]);
        free(res[1][j]);
    }
    free(x);
    free(w);
    free(dy);
}

/* Scalar statements of the row kernels' definitions (the exponential of vmath.c, sums in the
 * fixed lane order of vmath.h): the reference the vectorised kernels must match bit for bit. */
__attribute__((always_inline, optimize("no-trapping-math"))) static inline float
vexp1_v1(float v) {
    v = v > -87.0f ? v : -87.0f;
    v = v < 88.0f ? v : 88.0f;
    float kf = (v * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = v - kf * 0.693145752f - kf * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
              + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)kf + 127) << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

/* Σ v[0..n) in the fixed lane order of vmath.h, written as its definition: term j into lane
 * j mod 16 in increasing j, then the lanes pairwise 8, 4, 2, 1 apart. Scalar code, so the
 * comparisons below check that the clone the CPU runs keeps that order. */
static float sum_lanes_spec(const float *v, int n) {
    float acc[16] = {0};
    for (int j = 0; j < n; j++) acc[j % 16] += v[j];
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

static void softmax_causal_rows_v1(float *S, int nq, int nk, int t0, float *lse, float *inv) {
    for (int i = 0; i < nq; i++) {
        float *s = S + (int64_t)i * nk;
        int nj = t0 + i + 1;
        float mx = -INFINITY;
        for (int j = 0; j < nj; j++) mx = s[j] > mx ? s[j] : mx;
        for (int j = 0; j < nj; j++) s[j] = vexp1_v1(s[j] - mx);
        float sum = sum_lanes_spec(s, nj);
        inv[i] = 1.0f / sum;
        for (int j = nj; j < nk; j++) s[j] = 0.0f;
        lse[i] = mx + logf(sum);
    }
}

/* Row sums of the loss and RMSNorm against the same definition, every length 1..300. */
static void test_row_sums_fixed_order(void **state) {
    (void)state;
    enum { N = 300 };
    float z[N], e[N], y[N], w[N], sq[N], rstd;
    for (int n = 1; n <= N; n++) {
        fill(z, n, 6.0);
        float mx = -INFINITY;
        for (int j = 0; j < n; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < n; j++) e[j] = vexp1_v1(z[j] - mx);
        float want = mx + logf(sum_lanes_spec(e, n));
        float got = hs_logsumexp_row(z, n);
        assert_memory_equal(&got, &want, 4);
        for (int j = 0; j < n; j++) w[j] = 1.0f, sq[j] = z[j] * z[j];
        hs_rmsnorm_forward(y, &rstd, z, w, 1, n, 1e-5f);
        float r = 1.0f / sqrtf(sum_lanes_spec(sq, n) / (float)n + 1e-5f);
        assert_memory_equal(&rstd, &r, 4);
    }
}

static void attn_bwd_rows_v1(float *P, float *dS, int nq, int nk, int t0, const float *lse,
                             const float *D, float scale) {
    for (int i = 0; i < nq; i++) {
        float *p = P + (int64_t)i * nk, *ds = dS + (int64_t)i * nk;
        int nj = t0 + i + 1;
        float l = lse[i], d = D[i];
#pragma omp simd
        for (int j = 0; j < nj; j++) {
            float e = vexp1_v1(p[j] - l);
            p[j] = e;
            ds[j] = e * (ds[j] - d) * scale;
        }
        for (int j = nj; j < nk; j++) p[j] = 0.0f, ds[j] = 0.0f;
    }
}

/* Attention's row kernels against scalar versions of their definition: every row length 1..300
 * (all remainders of every vector width), blocks whose width is and is not a multiple of 16. */
static void test_attention_rows_same_bits(void **state) {
    (void)state;
    enum { QB = 64, MAXK = 300 };
    float *a = malloc(sizeof(float) * QB * MAXK), *b = malloc(sizeof(float) * QB * MAXK);
    float *da = malloc(sizeof(float) * QB * MAXK), *db = malloc(sizeof(float) * QB * MAXK);
    assert_true(a && b && da && db);
    float la[QB], lb[QB], ia[QB], ib[QB], D[QB];
    for (int t0 = 0; t0 + 1 <= MAXK - 1; t0 += 37) {
        for (int nq = 1; nq <= QB && t0 + nq <= MAXK; nq += 21) {
            int nk = t0 + nq;
            fill(a, (int64_t)nq * nk, 6.0);
            memcpy(b, a, sizeof(float) * nq * nk);
            softmax_causal_rows_v1(a, nq, nk, t0, la, ia);
            hs_softmax_causal_rows(b, nq, nk, t0, lb, ib);
            assert_memory_equal(a, b, sizeof(float) * nq * nk);
            assert_memory_equal(la, lb, sizeof(float) * nq);
            assert_memory_equal(ia, ib, sizeof(float) * nq);
            fill(a, (int64_t)nq * nk, 6.0);
            memcpy(b, a, sizeof(float) * nq * nk);
            fill(da, (int64_t)nq * nk, 1.0);
            memcpy(db, da, sizeof(float) * nq * nk);
            fill(D, nq, 1.0);
            attn_bwd_rows_v1(a, da, nq, nk, t0, la, D, 0.17f);
            hs_attn_bwd_rows(b, db, nq, nk, t0, la, D, 0.17f);
            assert_memory_equal(a, b, sizeof(float) * nq * nk);
            assert_memory_equal(da, db, sizeof(float) * nq * nk);
        }
    }
    // one row of every length (t0 = nj − 1), the sums' scalar remainders included
    for (int nj = 1; nj <= MAXK; nj++) {
        int nk = nj + (nj % 3); // a block wider than the row: masked entries beyond it
        if (nk > MAXK) nk = MAXK;
        fill(a, nk, 6.0);
        memcpy(b, a, sizeof(float) * nk);
        softmax_causal_rows_v1(a, 1, nk, nj - 1, la, ia);
        hs_softmax_causal_rows(b, 1, nk, nj - 1, lb, ib);
        assert_memory_equal(a, b, sizeof(float) * nk);
        assert_true(la[0] == lb[0] && ia[0] == ib[0]);
    }
    free(a), free(b), free(da), free(db);
}

/* The fused ops (attention with RoPE, residual add + RMSNorm, SwiGLU with σ kept, clip +
 * AdamW) must give the same bits as the separate ops they replace, on sizes that do not divide
 * into vectors or blocks. */
static void test_fused_same_bits(void **state) {
    (void)state;
    enum { B = 2, T = 70, C = 48, H = 3, N = B * T, V = 37 };
    size_t nq = (size_t)N * 3 * C;
    float *x = malloc(sizeof(float) * nq), *q1 = malloc(sizeof(float) * nq);
    float *q2 = malloc(sizeof(float) * nq), *d1 = malloc(sizeof(float) * nq);
    float *d2 = malloc(sizeof(float) * nq), *dy = malloc(sizeof(float) * nq);
    float *o1 = malloc(sizeof(float) * N * C), *o2 = malloc(sizeof(float) * N * C);
    float *l1 = malloc(sizeof(float) * N * H), *l2 = malloc(sizeof(float) * N * H);
    float cs[T * 8], sn[T * 8];
    assert_true(x && q1 && q2 && d1 && d2 && dy && o1 && o2 && l1 && l2);
    fill(x, (int64_t)nq, 1.0);
    fill(dy, (int64_t)nq, 1.0);
    hs_rope_tables(cs, sn, T, C / H, 10000.0f);
    memcpy(q1, x, sizeof(float) * nq);
    memcpy(q2, x, sizeof(float) * nq);
    hs_rope_forward(q1, cs, sn, B, T, C, H);
    assert_int_equal(hs_attention_forward(o1, l1, q1, B, T, C, H, 0), HS_OK);
    assert_int_equal(hs_attention_forward_rope(o2, l2, q2, cs, sn, B, T, C, H, 0), HS_OK);
    assert_memory_equal(q1, q2, sizeof(float) * nq); // qkv left rotated, as by hs_rope_forward
    assert_memory_equal(o1, o2, sizeof(float) * N * C);
    assert_memory_equal(l1, l2, sizeof(float) * N * H);
    assert_int_equal(hs_attention_backward(d1, dy, q1, o1, l1, B, T, C, H, 0), HS_OK);
    hs_rope_backward(d1, cs, sn, B, T, C, H);
    assert_int_equal(hs_attention_backward_rope(d2, dy, q2, o2, l2, cs, sn, B, T, C, H, 0), HS_OK);
    assert_memory_equal(d1, d2, sizeof(float) * nq);
    assert_true(memcmp(d1, dy, sizeof(float) * nq) != 0); // something was computed

    // residual add + RMSNorm: q1/q2 as (N, C) residuals, x as the added branch
    float w[C], r1[N], r2[N];
    fill(w, C, 1.5);
    memcpy(q1, dy, sizeof(float) * N * C);
    memcpy(q2, dy, sizeof(float) * N * C);
    for (int i = 0; i < N * C; i++) q1[i] += x[i];
    hs_rmsnorm_forward(o1, r1, q1, w, N, C, 1e-5f);
    hs_rmsnorm_residual_forward(o2, r2, q2, x, w, N, C, 1e-5f);
    assert_memory_equal(q1, q2, sizeof(float) * N * C);
    assert_memory_equal(o1, o2, sizeof(float) * N * C);
    assert_memory_equal(r1, r2, sizeof(float) * N);

    // SwiGLU with σ(gate) kept by the forward vs recomputed by the backward (F not a multiple
    // of any vector width; gates far beyond the exponential's clamps too)
    enum { F = 37 };
    fill(q1, (int64_t)N * 2 * F, 12.0);
    q1[0] = 200.0f, q1[1] = -200.0f;
    float *sg = malloc(sizeof(float) * N * F);
    assert_non_null(sg);
    hs_swiglu_forward(o1, q1, N, F);
    hs_swiglu_forward_save(o2, sg, q1, N, F);
    assert_memory_equal(o1, o2, sizeof(float) * N * F);
    hs_swiglu_backward(d1, dy, q1, N, F);
    hs_swiglu_backward_saved(d2, dy, q1, sg, N, F);
    assert_memory_equal(d1, d2, sizeof(float) * N * 2 * F);
    assert_true(sg[0] == 1.0f && o1[0] != 0.0f && d1[2] != 0.0f);
    free(sg);

    // gradient clipping then AdamW vs AdamW with the clip's scale fused in
    enum { P = 40000 }; // more than one span of the update
    float *p1 = malloc(sizeof(float) * P * 4), *p2 = malloc(sizeof(float) * P * 4);
    assert_true(p1 && p2);
    fill(p1, 4 * P, 1.0);
    for (int i = 0; i < P; i++) p1[3 * P + i] = fabsf(p1[3 * P + i]); // v ≥ 0
    memcpy(p2, p1, sizeof(float) * P * 4);
    float fc = 0.37f;
    for (int i = 0; i < P; i++) p1[P + i] *= fc;
    for (int t = 1; t <= 2; t++) {
        hs_adamw_update(p1, p1 + P, p1 + 2 * P, p1 + 3 * P, P, 1e-3, 0.9, 0.95, 1e-8, 0.1, t);
        hs_adamw_update_scaled(p2, p2 + P, p2 + 2 * P, p2 + 3 * P, P, t == 1 ? fc : 1.0f, 1e-3,
                               0.9, 0.95, 1e-8, 0.1, t);
    }
    assert_memory_equal(p1, p2, sizeof(float) * P * 4); // g stored back scaled, too
    free(p1);
    free(p2);
    free(x), free(q1), free(q2), free(d1), free(d2), free(dy);
    free(o1), free(o2), free(l1), free(l2);
}

/* ---------------------------------------------------------------- linear (fp32 recipe) */
static void test_linear_fp32(void **state) {
    (void)state;
    enum { M = 6, K = 10, N = 7 };
    float x[M * K], w[N * K], y[M * N], dy[M * N], dx[M * K], dw[N * K];
    double yr[M * N], dxr[M * K], dwr[N * K];
    fill(x, M * K, 1.0);
    fill(w, N * K, 1.0);
    fill(dy, M * N, 1.0);
    hs_quant_spec spec[6];
    memset(spec, 0, sizeof spec);
    for (int i = 0; i < 6; i++) spec[i].elem = HS_ELEM_FP32;
    hs_linear_ws *ws;
    assert_int_equal(hs_linear_ws_create(&ws), HS_OK);
    assert_int_equal(hs_linear_forward(ws, 0, spec, y, x, w, M, K, N, NULL, NULL), HS_OK);
    for (int i = 0; i < N * K; i++) dw[i] = 1.0f; // accumulates
    assert_int_equal(hs_linear_backward(ws, 0, spec, dx, dw, dy, x, w, M, K, N, NULL, NULL),
                     HS_OK);
    for (int i = 0; i < N * K; i++) dw[i] -= 1.0f;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            yr[i * N + j] = 0;
            for (int k = 0; k < K; k++) yr[i * N + j] += (double)x[i * K + k] * w[j * K + k];
        }
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            dxr[i * K + k] = 0;
            for (int j = 0; j < N; j++) dxr[i * K + k] += (double)dy[i * N + j] * w[j * K + k];
        }
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) {
            dwr[j * K + k] = 0;
            for (int i = 0; i < M; i++) dwr[j * K + k] += (double)dy[i * N + j] * x[i * K + k];
        }
    assert_close("linear y", y, yr, M * N, 1e-5);
    assert_close("linear dx", dx, dxr, M * K, 1e-5);
    assert_close("linear dw", dw, dwr, N * K, 1e-5);
    hs_linear_ws_free(ws);
}

/* ---------------------------------------------------------------- whole model */
/* Finite differences in float through the whole fp32 model. The loss (≈ log V) carries float
 * rounding noise of ~1e-6 per evaluation; with h = 1e-2 the difference quotient's noise is
 * ~1e-4, so we check the entries whose analytic gradient is largest (|g| well above that floor)
 * to 3% and a few random entries to 3% + 3e-4 absolute. Weights are scaled up (×5) from the
 * default init so the gradients are not all at the noise floor. */
static void check_model(int tied) {
    hs_model_config c = {16, 32, 2, 4, 64, 16, 10000.0f, 1e-5f, tied};
    hs_model *m;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    hs_model_init_weights(m, 7);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const hs_param_tensor *t = &m->tensors[ti];
        float *p = m->params + t->offset;
        for (int64_t i = 0; i < t->numel; i++)
            p[i] = t->ndim == 2 ? p[i] * 5.0f : 1.0f + 0.3f * (float)urand();
    }
    enum { B = 2, T = 8 };
    int32_t in[B * T], tg[B * T];
    // every token id occurs as an input and as a target, so every embedding / lm_head row
    // has a gradient and a random entry is unlikely to sit at zero
    for (int i = 0; i < B * T; i++) in[i] = (i * 5) % 16, tg[i] = (i * 7 + 3) % 16;
    float loss;
    hs_model_zero_grad(m);
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, B, T, &loss), HS_OK);
    assert_true(isfinite(loss));
    assert_int_equal(hs_model_backward(m, NULL, 0, 1.0f), HS_OK);
    const double h = 1e-2;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const hs_param_tensor *t = &m->tensors[ti];
        float *p = m->params + t->offset, *g = m->grads + t->offset;
        int64_t pick[6];
        // the 3 largest |g| entries, then 3 random ones
        for (int k = 0; k < 3; k++) {
            int64_t best = 0;
            double bv = -1;
            for (int64_t i = 0; i < t->numel; i++) {
                int used = 0;
                for (int q = 0; q < k; q++) used |= pick[q] == i;
                if (!used && fabs(g[i]) > bv) bv = fabs(g[i]), best = i;
            }
            pick[k] = best;
        }
        for (int k = 3; k < 6; k++) pick[k] = (int64_t)((urand() + 1) * 0.5 * t->numel) % t->numel;
        for (int k = 0; k < 6; k++) {
            int64_t i = pick[k];
            float s = p[i];
            float lp, lm;
            p[i] = s + (float)h;
            assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, B, T, &lp), HS_OK);
            p[i] = s - (float)h;
            assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, B, T, &lm), HS_OK);
            p[i] = s;
            double num = ((double)lp - lm) / (2 * h), ana = g[i];
            double tol = 0.03 * fabs(ana) + (k < 3 ? 0.0 : 3e-4);
            if (k < 3 && fabs(ana) < 1e-3) tol = 3e-4 + 0.03 * fabs(ana);
            if (fabs(num - ana) > tol)
                fail_msg("model %s[%lld] (tied=%d): numeric %.6g, analytic %.6g", t->name,
                         (long long)i, tied, num, ana);
        }
    }
    hs_model_free(m);
}

static void test_model_fd(void **state) {
    (void)state;
    check_model(0);
    check_model(1);
}

/* Parameter table: HF names, shapes, contiguity of the fused pairs, counts. */
static void test_param_table(void **state) {
    (void)state;
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("small", &c), HS_OK);
    int64_t ne = hs_model_config_params_nonembed(&c);
    assert_true(ne > 4500000 && ne < 5500000);
    assert_int_equal(hs_model_config_preset("medium", &c), HS_OK);
    ne = hs_model_config_params_nonembed(&c);
    assert_true(ne > 23000000 && ne < 27000000);
    assert_int_equal(hs_model_config_preset("nano", &c), HS_OK);
    hs_model *m;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    assert_int_equal(m->n_params, hs_model_config_params(&c));
    const hs_param_tensor *q = hs_model_find_tensor(m, "model.layers.1.self_attn.q_proj.weight");
    const hs_param_tensor *k = hs_model_find_tensor(m, "model.layers.1.self_attn.k_proj.weight");
    const hs_param_tensor *v = hs_model_find_tensor(m, "model.layers.1.self_attn.v_proj.weight");
    const hs_param_tensor *gt = hs_model_find_tensor(m, "model.layers.0.mlp.gate_proj.weight");
    const hs_param_tensor *up = hs_model_find_tensor(m, "model.layers.0.mlp.up_proj.weight");
    const hs_param_tensor *dn = hs_model_find_tensor(m, "model.layers.0.mlp.down_proj.weight");
    assert_non_null(q);
    assert_non_null(v);
    assert_int_equal(k->offset, q->offset + q->numel);
    assert_int_equal(v->offset, k->offset + k->numel);
    assert_int_equal(up->offset, gt->offset + gt->numel);
    assert_int_equal(gt->shape[0], c.ffn_dim);
    assert_int_equal(gt->shape[1], c.dim);
    assert_int_equal(dn->shape[0], c.dim);
    assert_int_equal(dn->shape[1], c.ffn_dim);
    assert_non_null(hs_model_find_tensor(m, "lm_head.weight"));
    assert_non_null(hs_model_find_tensor(m, "model.norm.weight"));
    assert_int_equal(hs_model_find_tensor(m, "model.layers.0.input_layernorm.weight")->decay, 0);
    assert_null(hs_model_find_tensor(m, "model.layers.2.input_layernorm.weight"));
    hs_model_free(m);
    c.tied_embeddings = 1;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    assert_null(hs_model_find_tensor(m, "lm_head.weight"));
    hs_model_free(m);
    // impossible configurations are refused
    c.n_heads = 5;
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARG);
    c.n_heads = 64; // head dim 1: odd
    assert_int_equal(hs_model_config_validate(&c), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_model_config_preset("huge", &c), HS_ERR_INVALID_ARG);
}

static void test_forward_refuses(void **state) {
    (void)state;
    hs_model_config c;
    hs_model_config_preset("nano", &c);
    c.max_seq = 8;
    hs_model *m;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    int32_t in[16] = {0}, tg[16] = {0};
    float loss;
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, 1, 16, &loss), HS_ERR_INVALID_ARG);
    in[3] = c.vocab;
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, 1, 8, &loss), HS_ERR_INVALID_ARG);
    in[3] = 0;
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, 0, 8, &loss), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, 2, 8, &loss), HS_OK);
    hs_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),      cmocka_unit_test(test_attention_long),
        cmocka_unit_test(test_swiglu),         cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_embedding),      cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adamw_large),    cmocka_unit_test(test_ops_thread_invariant),
        cmocka_unit_test(test_linear_fp32),    cmocka_unit_test(test_model_fd),
        cmocka_unit_test(test_param_table),    cmocka_unit_test(test_forward_refuses),
        cmocka_unit_test(test_fused_same_bits), cmocka_unit_test(test_attention_rows_same_bits),
        cmocka_unit_test(test_row_sums_fixed_order), cmocka_unit_test(test_attention_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
