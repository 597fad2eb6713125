/* attention.c: causal multi-head self-attention in fp32, one (batch, head) per task.
 *
 * Per (b, h) the queries are taken in blocks of QB rows; a block [t0, t1) needs keys [0, t1):
 *   S = Q[t0:t1]·K[0:t1]ᵀ · 1/sqrt(hd),  P = softmax(S) with j > t masked,  O = P·V[0:t1],
 * where the forward multiplies exp(S − max)·V by 1/Σexp afterwards (one pass fewer over S).
 * Only one QB × T score block exists per thread (at most T×T floats); each row's log-sum-exp
 * is kept so the backward rebuilds P = exp(S − lse) without storing the T×T matrix:
 *   dP = dO·Vᵀ,  D_t = dO_t·O_t,  dS = P ∘ (dP − D) / sqrt(hd),
 *   dQ = dS·K,  dK += dSᵀ·Q,  dV += Pᵀ·dO          (accumulated over query blocks in order).
 * The products are single-threaded OpenBLAS sgemm calls on strided views of the (B, T, 3C) qkv
 * buffer; the parallelism is over (b, h). Every task computes its own head's slices with a
 * fixed sequence of calls, so results do not depend on the number of threads.
 * The _rope variants also apply RoPE (rope.c) to the task's own q, k slices before the forward
 * and to its dq, dk slices after the backward: the same elementwise operations as the separate
 * passes, on data that is in cache anyway.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/vmath.h"

enum { QB = 64 }; // query rows per block

/* The forward; rot = qkv (writable) and cos_t, sin_t non-NULL: RoPE on this head's q and k
 * first, inside its task (the slices are then in cache for the score products). */
static hs_status attn_forward(float *out, float *lse, const float *qkv, float *rot,
                              const float *cos_t, const float *sin_t, int B, int T, int C, int H) {
    // out: (B, T, C); lse: (B, H, T); qkv: (B, T, 3C)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem)
    {
        float *S = malloc(sizeof(float) * QB * (size_t)T); // (QB, T) score block
        nomem |= !S;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                if (!S) continue;
                if (rot) { // q then k of head h, all T positions
                    float *q = rot + (int64_t)b * T * C3 + h * hd;
                    hs_rope_head_rows(q, C3, T, cos_t, sin_t, hd, 1.0f);
                    hs_rope_head_rows(q + C, C3, T, cos_t, sin_t, hd, 1.0f);
                }
                const float *Q = qkv + (int64_t)b * T * C3 + h * hd; // (T, hd), row stride 3C
                const float *K = Q + C, *V = Q + 2 * C;
                float *O = out + (int64_t)b * T * C + h * hd;      // (T, hd), row stride C
                float *L = lse + ((int64_t)b * H + h) * T;
                for (int t0 = 0; t0 < T; t0 += QB) {
                    int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                                Q + t0 * C3, (int)C3, K, (int)C3, 0.0f, S, nk);
                    float inv[QB]; // 1 / row sums: O = (exp(S − max)·V) / sum
                    hs_softmax_causal_rows(S, nq, nk, t0, L + t0, inv);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, S,
                                nk, V, (int)C3, 0.0f, O + (int64_t)t0 * C, C);
                    for (int i = 0; i < nq; i++) {
                        float *o = O + (int64_t)(t0 + i) * C, r = inv[i];
#pragma omp simd
                        for (int d = 0; d < hd; d++) o[d] *= r;
                    }
                }
            }
        free(S);
    }
    return nomem ? hs_fail(HS_ERR_NOMEM, "attention: out of memory for a score block") : HS_OK;
}

hs_status hs_attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C,
                               int H) {
    return attn_forward(out, lse, qkv, NULL, NULL, NULL, B, T, C, H);
}

hs_status hs_attention_forward_rope(float *out, float *lse, float *qkv, const float *cos_t,
                                    const float *sin_t, int B, int T, int C, int H) {
    return attn_forward(out, lse, qkv, qkv, cos_t, sin_t, B, T, C, H);
}

/* The backward; cos_t, sin_t non-NULL: the transposed RoPE on this head's dq and dk at the end
 * of its task (still in cache from the products that wrote them). */
static hs_status attn_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                               const float *lse, const float *cos_t, const float *sin_t, int B,
                               int T, int C, int H) {
    // dqkv: (B, T, 3C) overwritten; dout, out: (B, T, C); qkv: (B, T, 3C); lse: (B, H, T)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem)
    {
        float *P = malloc(sizeof(float) * QB * (size_t)T);  // (QB, T) probabilities
        float *dS = malloc(sizeof(float) * QB * (size_t)T); // (QB, T) dP, then dS in place
        nomem |= !P || !dS;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                if (!P || !dS) continue;
                const float *Q = qkv + (int64_t)b * T * C3 + h * hd;
                const float *K = Q + C, *V = Q + 2 * C;
                const float *dO = dout + (int64_t)b * T * C + h * hd;
                const float *O = out + (int64_t)b * T * C + h * hd;
                const float *L = lse + ((int64_t)b * H + h) * T;
                float *dQ = dqkv + (int64_t)b * T * C3 + h * hd, *dK = dQ + C, *dV = dQ + 2 * C;
                for (int t = 0; t < T; t++) { // this head's dK, dV accumulate over query blocks
                    memset(dK + t * C3, 0, sizeof(float) * (size_t)hd);
                    memset(dV + t * C3, 0, sizeof(float) * (size_t)hd);
                }
                for (int t0 = 0; t0 < T; t0 += QB) {
                    int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
                    // P = exp(S − lse), masked
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale,
                                Q + t0 * C3, (int)C3, K, (int)C3, 0.0f, P, nk);
                    // dP = dO·Vᵀ
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, 1.0f,
                                dO + (int64_t)t0 * C, C, V, (int)C3, 0.0f, dS, nk);
                    float D[QB]; // D_t = dO_t·O_t
                    for (int i = 0; i < nq; i++) {
                        const float *dot = dO + (int64_t)(t0 + i) * C, *o = O + (int64_t)(t0 + i) * C;
                        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                        for (int d = 0; d < hd; d++) acc += dot[d] * o[d];
                        D[i] = acc;
                    }
                    hs_attn_bwd_rows(P, dS, nq, nk, t0, L + t0, D, scale);
                    // dV[0:nk] += Pᵀ·dO,  dK[0:nk] += dSᵀ·Q  (zeroed before the first block)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, P, nk,
                                dO + (int64_t)t0 * C, C, 1.0f, dV, (int)C3);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, dS, nk,
                                Q + t0 * C3, (int)C3, 1.0f, dK, (int)C3);
                    // dQ = dS·K
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, dS,
                                nk, K, (int)C3, 0.0f, dQ + t0 * C3, (int)C3);
                }
                if (cos_t) {
                    hs_rope_head_rows(dQ, C3, T, cos_t, sin_t, hd, -1.0f);
                    hs_rope_head_rows(dK, C3, T, cos_t, sin_t, hd, -1.0f);
                }
            }
        free(P);
        free(dS);
    }
    return nomem ? hs_fail(HS_ERR_NOMEM, "attention: out of memory for a score block") : HS_OK;
}

hs_status hs_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                                const float *lse, int B, int T, int C, int H) {
    return attn_backward(dqkv, dout, qkv, out, lse, NULL, NULL, B, T, C, H);
}

hs_status hs_attention_backward_rope(float *dqkv, const float *dout, const float *qkv,
                                     const float *out, const float *lse, const float *cos_t,
                                     const float *sin_t, int B, int T, int C, int H) {
    return attn_backward(dqkv, dout, qkv, out, lse, cos_t, sin_t, B, T, C, H);
}
