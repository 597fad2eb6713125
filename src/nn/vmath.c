/* vmath.c: the vectorisable exponential of vmath.h. */
#include "nn/vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* no-trapping-math lets gcc if-convert the clamps (comparisons of floats whose exception flags
 * nobody reads); it changes no result. */
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_vexp(float *y, const float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float v = x[i];
        v = v > -87.0f ? v : -87.0f;
        v = v < 88.0f ? v : 88.0f;
        float kf = (v * 1.44269504f + 12582912.0f) - 12582912.0f; // round(v / ln 2)
        float r = v - kf * 0.693145752f - kf * 1.42860677e-6f;     // ln 2 = hi + lo
        float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
                  + r * (1.0f / 720 + r * (1.0f / 5040)))))));
        int32_t bits = ((int32_t)kf + 127) << 23; // 2^k
        float s;
        memcpy(&s, &bits, sizeof s);
        y[i] = p * s;
    }
}

/* The same exponential, inlined into the row kernels below. */
__attribute__((always_inline, optimize("no-trapping-math"))) static inline float vexp1(float v) {
    v = v > -87.0f ? v : -87.0f;
    v = v < 88.0f ? v : 88.0f;
    float kf = (v * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = v - kf * 0.693145752f - kf * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
              + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)kf + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_softmax_causal_rows(float *S, int nq, int nk, int t0, float *lse, float *inv) {
    for (int i = 0; i < nq; i++) {
        float *s = S + (int64_t)i * nk;
        int nj = t0 + i + 1; // keys 0..t
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < nj; j++) mx = s[j] > mx ? s[j] : mx;
        // Why two loops: the exponentials run over whole vectors up to ne (the masked entries in
        // [nj, ne) get one too and are overwritten with 0 below; nothing reads them), so no
        // scalar remainder evaluates them one at a time; the sum then runs over keys ≤ t only,
        // in the fixed lane order of vmath.h.
        int ne = (nj + 15) / 16 * 16 < nk ? (nj + 15) / 16 * 16 : nk;
#pragma omp simd
        for (int j = 0; j < ne; j++) s[j] = vexp1(s[j] - mx);
        float acc[HS_SUM_LANES] = {0};
        int j = 0;
        for (; j + HS_SUM_LANES <= nj; j += HS_SUM_LANES)
#pragma omp simd
            for (int l = 0; l < HS_SUM_LANES; l++) acc[l] += s[j + l];
        for (int l = 0; j + l < nj; l++) acc[l] += s[j + l];
        float sum = hs_sum_lanes(acc);
        inv[i] = 1.0f / sum;
        for (int j = nj; j < nk; j++) s[j] = 0.0f;
        lse[i] = mx + logf(sum);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_attn_bwd_rows(float *P, float *dS, int nq, int nk, int t0, const float *lse,
                      const float *D, float scale) {
    for (int i = 0; i < nq; i++) {
        float *p = P + (int64_t)i * nk, *ds = dS + (int64_t)i * nk;
        int nj = t0 + i + 1;
        float l = lse[i], d = D[i];
        int ne = (nj + 15) / 16 * 16 < nk ? (nj + 15) / 16 * 16 : nk; // whole vectors, as above
#pragma omp simd
        for (int j = 0; j < ne; j++) {
            float e = vexp1(p[j] - l);
            p[j] = e;
            ds[j] = e * (ds[j] - d) * scale;
        }
        for (int j = nj; j < nk; j++) p[j] = 0.0f, ds[j] = 0.0f;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_swiglu_row(float *h, const float *g, const float *u, int F) {
#pragma omp simd
    for (int j = 0; j < F; j++) {
        float s = 1.0f / (1.0f + vexp1(-g[j]));
        h[j] = g[j] * s * u[j];
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_swiglu_bwd_row(float *dg, float *du, const float *dh, const float *g, const float *u,
                       int F) {
#pragma omp simd
    for (int j = 0; j < F; j++) {
        float s = 1.0f / (1.0f + vexp1(-g[j]));
        float silu = g[j] * s;
        dg[j] = dh[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
        du[j] = dh[j] * silu;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_swiglu_row_save(float *h, float *sg, const float *g, const float *u, int F) {
#pragma omp simd
    for (int j = 0; j < F; j++) {
        float s = 1.0f / (1.0f + vexp1(-g[j]));
        sg[j] = s;
        h[j] = g[j] * s * u[j];
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void
hs_swiglu_bwd_row_saved(float *dg, float *du, const float *dh, const float *g, const float *u,
                        const float *sg, int F) {
#pragma omp simd
    for (int j = 0; j < F; j++) {
        float s = sg[j];
        float silu = g[j] * s;
        dg[j] = dh[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
        du[j] = dh[j] * silu;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
float hs_logsumexp_row(const float *z, int n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = z[j] > mx ? z[j] : mx;
    float acc[HS_SUM_LANES] = {0};
    int j = 0;
    for (; j + HS_SUM_LANES <= n; j += HS_SUM_LANES)
#pragma omp simd
        for (int l = 0; l < HS_SUM_LANES; l++) acc[l] += vexp1(z[j + l] - mx);
    for (int l = 0; j + l < n; l++) acc[l] += vexp1(z[j + l] - mx);
    return mx + logf(hs_sum_lanes(acc));
}

__attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-trapping-math")))
void hs_softmax_scaled_row(float *z, int n, float lse, float scale) {
#pragma omp simd
    for (int j = 0; j < n; j++) z[j] = scale * vexp1(z[j] - lse);
}
