/* attention.c: causal multi-head self-attention, one (batch, head) per task, with its products
 * in fp32 (OpenBLAS) or in bf16 (halfs' bf16 GEMM: bf16 operands, fp32 accumulation).
 *
 * Per (b, h) the queries are taken in blocks of QB rows; a block [t0, t1) needs keys [0, t1):
 *   S = Q[t0:t1]·K[0:t1]ᵀ · 1/sqrt(hd),  P = softmax(S) with j > t masked,  O = P·V[0:t1],
 * where the forward multiplies exp(S − max)·V by 1/Σexp afterwards (one pass fewer over S).
 * Only one QB × T score block exists per thread (at most T×T floats; hs_workspace keeps it);
 * each row's log-sum-exp is kept so the backward rebuilds P = exp(S − lse) without storing the
 * T×T matrix:
 *   dP = dO·Vᵀ,  D_t = dO_t·O_t,  dS = P ∘ (dP − D) / sqrt(hd),
 *   dQ = dS·K,  dK += dSᵀ·Q,  dV += Pᵀ·dO          (accumulated over query blocks in order).
 * fp32: the products are single-threaded OpenBLAS sgemm calls on strided views of the (B, T, 3C)
 * qkv buffer (their bits depend on the CPU's OpenBLAS kernel). bf16 (the bf16 and FP4 recipes):
 * each task first rounds its head's q, k, v (and dO) to bf16 values, row-major or transposed as
 * the products need them (hs_kernels()->bf16v_tile), and each query block rounds P (and dS)
 * likewise; every product is then hs_kernels()->gemm_bf16v, the bf16 GEMM contract on operands
 * read in place (the same bits on every CPU: kernels/gemm_kernels.h). The softmax, its
 * log-sum-exp, D and the scaling stay fp32. The parallelism is over (b, h). Every task computes
 * its own head's slices with a fixed sequence of calls, so results do not depend on the number
 * of threads.
 * The _rope variants also apply RoPE (rope.c) to the task's own q, k slices before the forward
 * and to its dq, dk slices after the backward: the same elementwise operations as the separate
 * passes, on data that is in cache anyway.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "nn/ops.h"
#include "nn/vmath.h"

enum { QB = 64 }; // query rows per block

/* bf16 values (in fp32) of x (rows × cols, row stride ld): dr (rows × cols) and/or dt = xᵀ
 * (cols × rows), dense; either may be NULL. On the calling thread. */
static void to_bf16v(float *dr, float *dt, const float *x, int rows, int cols, int64_t ld) {
    hs_bf16v_tile_fn tile = hs_kernels()->bf16v_tile;
    for (int r0 = 0; r0 < rows; r0 += 32)
        for (int c0 = 0; c0 < cols; c0 += 16) tile(dr, dt, x, rows, cols, ld, r0, c0);
}

/* The bf16 forward of one (b, h): Q, K, V (T, hd) with row stride C3, O (T, hd) row stride C;
 * S: per-thread (QB, T) block; w: per-thread scratch of 3·T·hd + QB·T floats. */
static void head_forward_bf16(float *O, float *L, const float *Q, const float *K, const float *V,
                              int T, int hd, int64_t C3, int64_t C, float scale, float *S,
                              float *w) {
    const hs_gemm_bf16v_fn gemm = hs_kernels()->gemm_bf16v;
    const size_t th = (size_t)T * hd;
    float *Qv = w, *Kt = Qv + th, *Vv = Kt + th, *Pv = Vv + th; // (T,hd) (hd,T) (T,hd) (QB,T)
    to_bf16v(Qv, NULL, Q, T, hd, C3);
    to_bf16v(NULL, Kt, K, T, hd, C3);
    to_bf16v(Vv, NULL, V, T, hd, C3);
    for (int t0 = 0; t0 < T; t0 += QB) {
        int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
        gemm(nq, nk, hd, Qv + (size_t)t0 * hd, hd, Kt, T, 0.0f, S, nk); // Q·Kᵀ
        for (int64_t i = 0; i < (int64_t)nq * nk; i++) S[i] *= scale;
        float inv[QB];
        hs_softmax_causal_rows(S, nq, nk, t0, L + t0, inv);
        to_bf16v(Pv, NULL, S, nq, nk, nk);
        gemm(nq, hd, nk, Pv, nk, Vv, hd, 0.0f, O + (int64_t)t0 * C, C); // P·V
        for (int i = 0; i < nq; i++) {
            float *o = O + (int64_t)(t0 + i) * C, r = inv[i];
#pragma omp simd
            for (int d = 0; d < hd; d++) o[d] *= r;
        }
    }
}

/* The forward; rot = qkv (writable) and cos_t, sin_t non-NULL: RoPE on this head's q and k
 * first, inside its task (the slices are then in cache for the score products). */
static hs_status attn_forward(float *out, float *lse, const float *qkv, float *rot,
                              const float *cos_t, const float *sin_t, int B, int T, int C, int H,
                              int bf16) {
    // out: (B, T, C); lse: (B, H, T); qkv: (B, T, 3C)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem)
    {
        // per-thread blocks kept between calls (fresh pages would cost more than the work)
        float *S = hs_workspace(4, sizeof(float) * QB * (size_t)T); // (QB, T) score block
        float *w = bf16 ? hs_workspace(5, sizeof(float) * ((size_t)3 * T * hd + (size_t)QB * T))
                        : NULL;
        if (bf16 && !w) S = NULL;
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
                if (bf16) {
                    head_forward_bf16(O, L, Q, K, V, T, hd, C3, C, scale, S, w);
                    continue;
                }
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
    }
    return nomem ? hs_fail(HS_ERR_NOMEM, "attention: out of memory for a score block") : HS_OK;
}

hs_status hs_attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C,
                               int H, int bf16) {
    return attn_forward(out, lse, qkv, NULL, NULL, NULL, B, T, C, H, bf16);
}

hs_status hs_attention_forward_rope(float *out, float *lse, float *qkv, const float *cos_t,
                                    const float *sin_t, int B, int T, int C, int H, int bf16) {
    return attn_forward(out, lse, qkv, qkv, cos_t, sin_t, B, T, C, H, bf16);
}

/* The bf16 backward of one (b, h) (operands as in attn_backward); P, dS: per-thread (QB, T)
 * fp32 blocks; w: per-thread scratch of 5·T·hd + 3·QB·T floats. dK, dV must be zero on entry. */
static void head_backward_bf16(float *dQ, float *dK, float *dV, const float *Q, const float *K,
                               const float *V, const float *dO, const float *O, const float *L,
                               int T, int hd, int64_t C3, int64_t C, float scale, float *P,
                               float *dS, float *w) {
    const hs_gemm_bf16v_fn gemm = hs_kernels()->gemm_bf16v;
    const size_t th = (size_t)T * hd, qt = (size_t)QB * T;
    float *Qv = w, *Kv = Qv + th, *dOv = Kv + th; // (T, hd)
    float *Kt = dOv + th, *Vt = Kt + th;          // (hd, T)
    float *Pt = Vt + th, *dSv = Pt + qt, *dSt = dSv + qt; // (nk, nq), (nq, nk), (nk, nq)
    to_bf16v(Qv, NULL, Q, T, hd, C3);
    to_bf16v(Kv, Kt, K, T, hd, C3);
    to_bf16v(NULL, Vt, V, T, hd, C3);
    to_bf16v(dOv, NULL, dO, T, hd, C);
    for (int t0 = 0; t0 < T; t0 += QB) {
        int nq = T - t0 < QB ? T - t0 : QB, nk = t0 + nq;
        // S = Q·Kᵀ·scale (P = exp(S − lse) below), dP = dO·Vᵀ
        gemm(nq, nk, hd, Qv + (size_t)t0 * hd, hd, Kt, T, 0.0f, P, nk);
        gemm(nq, nk, hd, dOv + (size_t)t0 * hd, hd, Vt, T, 0.0f, dS, nk);
        for (int64_t i = 0; i < (int64_t)nq * nk; i++) P[i] *= scale;
        float D[QB]; // D_t = dO_t·O_t (fp32)
        for (int i = 0; i < nq; i++) {
            const float *dot = dO + (int64_t)(t0 + i) * C, *o = O + (int64_t)(t0 + i) * C;
            float acc = 0.0f;
            for (int d = 0; d < hd; d++) acc += dot[d] * o[d];
            D[i] = acc;
        }
        hs_attn_bwd_rows(P, dS, nq, nk, t0, L + t0, D, scale);
        to_bf16v(NULL, Pt, P, nq, nk, nk);
        to_bf16v(dSv, dSt, dS, nq, nk, nk);
        // dV[0:nk] += Pᵀ·dO,  dK[0:nk] += dSᵀ·Q,  dQ = dS·K
        gemm(nk, hd, nq, Pt, nq, dOv + (size_t)t0 * hd, hd, 1.0f, dV, C3);
        gemm(nk, hd, nq, dSt, nq, Qv + (size_t)t0 * hd, hd, 1.0f, dK, C3);
        gemm(nq, hd, nk, dSv, nk, Kv, hd, 0.0f, dQ + (int64_t)t0 * C3, C3);
    }
}

/* The backward; cos_t, sin_t non-NULL: the transposed RoPE on this head's dq and dk at the end
 * of its task (still in cache from the products that wrote them). */
static hs_status attn_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                               const float *lse, const float *cos_t, const float *sin_t, int B,
                               int T, int C, int H, int bf16) {
    // dqkv: (B, T, 3C) overwritten; dout, out: (B, T, C); qkv: (B, T, 3C); lse: (B, H, T)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem)
    {
        float *P = hs_workspace(4, sizeof(float) * 2 * QB * (size_t)T); // (QB, T) probabilities
        float *dS = P ? P + (size_t)QB * T : NULL; // (QB, T) dP, then dS in place
        float *w = bf16 ? hs_workspace(5, sizeof(float) * ((size_t)5 * T * hd + (size_t)3 * QB * T))
                        : NULL;
        if (bf16 && !w) P = NULL;
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
                if (bf16)
                    head_backward_bf16(dQ, dK, dV, Q, K, V, dO, O, L, T, hd, C3, C, scale, P, dS,
                                       w);
                for (int t0 = 0; !bf16 && t0 < T; t0 += QB) {
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
    }
    return nomem ? hs_fail(HS_ERR_NOMEM, "attention: out of memory for a score block") : HS_OK;
}

hs_status hs_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                                const float *lse, int B, int T, int C, int H, int bf16) {
    return attn_backward(dqkv, dout, qkv, out, lse, NULL, NULL, B, T, C, H, bf16);
}

hs_status hs_attention_backward_rope(float *dqkv, const float *dout, const float *qkv,
                                     const float *out, const float *lse, const float *cos_t,
                                     const float *sin_t, int B, int T, int C, int H, int bf16) {
    return attn_backward(dqkv, dout, qkv, out, lse, cos_t, sin_t, B, T, C, H, bf16);
}
