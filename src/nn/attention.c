/* attention.c: causal multi-head self-attention in fp32, one (batch, head) per task.
 *
 * Per (b, h) the queries are taken in blocks of QB rows; a block [t0, t1) needs keys [0, t1):
 *   S = Q[t0:t1]·K[0:t1]ᵀ · 1/sqrt(hd),  P = softmax(S) with j > t masked,  O = P·V[0:t1].
 * Only one QB × T score block exists per thread (at most T×T floats); each row's log-sum-exp
 * is kept so the backward rebuilds P = exp(S − lse) without storing the T×T matrix:
 *   dP = dO·Vᵀ,  D_t = dO_t·O_t,  dS = P ∘ (dP − D) / sqrt(hd),
 *   dQ = dS·K,  dK += dSᵀ·Q,  dV += Pᵀ·dO          (accumulated over query blocks in order).
 * The products are single-threaded OpenBLAS sgemm calls on strided views of the (B, T, 3C) qkv
 * buffer; the parallelism is over (b, h). Every task computes its own head's slices with a
 * fixed sequence of calls, so results do not depend on the number of threads.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

enum { QB = 64 }; // query rows per block

/* e^x for a row of values, vectorisable and accurate to ~1 ulp on the range softmax uses
 * (x ≤ 0 after subtracting the row max; below −87 the result flushes towards 0).
 * Why not expf: glibc's expf is not vectorised without -ffast-math, and attention evaluates
 * B·H·T² exponentials per step: the scalar call dominated the layer. */
static void exp_row(float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float v = x[i] < -87.0f ? -87.0f : x[i];
        float kf = (v * 1.44269504f + 12582912.0f) - 12582912.0f; // round(v / ln 2)
        float r = v - kf * 0.693145752f - kf * 1.42860677e-6f;     // Cody-Waite: ln2 hi + lo
        float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
                  + r * (1.0f / 720 + r * (1.0f / 5040)))))));     // |r| ≤ ln2/2: error < 1e-8
        int k = (int)kf;
        union { int32_t i; float f; } s = {.i = (k + 127) << 23};
        x[i] = p * s.f;
    }
}

void hs_attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
    // out: (B, T, C); lse: (B, H, T); qkv: (B, T, 3C)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
#pragma omp parallel
    {
        float *S = malloc(sizeof(float) * QB * (size_t)T); // (QB, T) score block
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const float *Q = qkv + (int64_t)b * T * C3 + h * hd; // (T, hd), row stride 3C
                const float *K = Q + C, *V = Q + 2 * C;
                float *O = out + (int64_t)b * T * C + h * hd;      // (T, hd), row stride C
                float *L = lse + ((int64_t)b * H + h) * T;
                for (int t0 = 0; t0 < T; t0 += QB) {
                    int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                                Q + t0 * C3, (int)C3, K, (int)C3, 0.0f, S, nk);
                    for (int i = 0; i < nq; i++) {
                        float *s = S + (int64_t)i * nk;
                        int nj = t0 + i + 1; // keys 0..t
                        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
                        for (int j = 0; j < nj; j++) mx = s[j] > mx ? s[j] : mx;
                        for (int j = 0; j < nj; j++) s[j] -= mx;
                        exp_row(s, nj);
                        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                        for (int j = 0; j < nj; j++) sum += s[j];
                        float inv = 1.0f / sum;
                        for (int j = 0; j < nj; j++) s[j] *= inv;
                        for (int j = nj; j < nk; j++) s[j] = 0.0f; // causal mask
                        L[t0 + i] = mx + logf(sum);
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, S,
                                nk, V, (int)C3, 0.0f, O + (int64_t)t0 * C, C);
                }
            }
        free(S);
    }
}

void hs_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                           const float *lse, int B, int T, int C, int H) {
    // dqkv: (B, T, 3C) overwritten; dout, out: (B, T, C); qkv: (B, T, 3C); lse: (B, H, T)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
#pragma omp parallel
    {
        float *P = malloc(sizeof(float) * QB * (size_t)T);  // (QB, T) probabilities
        float *dS = malloc(sizeof(float) * QB * (size_t)T); // (QB, T) dP, then dS in place
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const float *Q = qkv + (int64_t)b * T * C3 + h * hd;
                const float *K = Q + C, *V = Q + 2 * C;
                const float *dO = dout + (int64_t)b * T * C + h * hd;
                const float *O = out + (int64_t)b * T * C + h * hd;
                const float *L = lse + ((int64_t)b * H + h) * T;
                float *dQ = dqkv + (int64_t)b * T * C3 + h * hd, *dK = dQ + C, *dV = dQ + 2 * C;
                for (int t0 = 0; t0 < T; t0 += QB) {
                    int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
                    // P = exp(S − lse), masked
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                                Q + t0 * C3, (int)C3, K, (int)C3, 0.0f, P, nk);
                    // dP = dO·Vᵀ
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, 1.0f,
                                dO + (int64_t)t0 * C, C, V, (int)C3, 0.0f, dS, nk);
                    for (int i = 0; i < nq; i++) {
                        float *p = P + (int64_t)i * nk, *ds = dS + (int64_t)i * nk;
                        int t = t0 + i, nj = t + 1;
                        float l = L[t];
                        for (int j = 0; j < nj; j++) p[j] -= l;
                        exp_row(p, nj);
                        for (int j = nj; j < nk; j++) p[j] = 0.0f;
                        const float *dot = dO + (int64_t)t * C, *o = O + (int64_t)t * C;
                        float D = 0.0f;
#pragma omp simd reduction(+ : D)
                        for (int d = 0; d < hd; d++) D += dot[d] * o[d];
                        for (int j = 0; j < nk; j++) ds[j] = p[j] * (ds[j] - D) * scale;
                    }
                    // keys [t0, nk) see their first contribution in this block: overwrite them
                    // (rows [0, t0) were written by earlier blocks and accumulate)
                    if (t0 > 0) {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t0, hd, nq, 1.0f, P,
                                    nk, dO + (int64_t)t0 * C, C, 1.0f, dV, (int)C3);
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t0, hd, nq, 1.0f, dS,
                                    nk, Q + t0 * C3, (int)C3, 1.0f, dK, (int)C3);
                    }
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nq, hd, nq, 1.0f,
                                P + t0, nk, dO + (int64_t)t0 * C, C, 0.0f, dV + t0 * C3, (int)C3);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nq, hd, nq, 1.0f,
                                dS + t0, nk, Q + t0 * C3, (int)C3, 0.0f, dK + t0 * C3, (int)C3);
                    // dQ = dS·K
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, dS,
                                nk, K, (int)C3, 0.0f, dQ + t0 * C3, (int)C3);
                }
            }
        free(P);
        free(dS);
    }
}
