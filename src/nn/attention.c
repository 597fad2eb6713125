/* attention.c: causal multi-head self-attention in fp32, one (batch, head) per task.
 *
 * Forward, per query row t: s_j = q_t·k_j / sqrt(hd) for j ≤ t, p = softmax(s), o_t = Σ p_j v_j.
 * Only the row of scores is materialised (T floats per thread); the row's log-sum-exp is kept
 * so the backward can rebuild p_j = exp(s_j − lse_t) without storing the T×T matrix:
 *   D_t = dO_t·o_t,  dp_j = dO_t·v_j,  ds_j = p_j (dp_j − D_t),
 *   dq_t = Σ ds_j k_j / sqrt(hd),  dk_j += ds_j q_t / sqrt(hd),  dv_j += p_j dO_t.
 * Each (b, h) task writes only its own head's slices, and walks t and j in a fixed order,
 * so results do not depend on the number of threads.
 */
#include <math.h>
#include <string.h>

#include "nn/ops.h"

static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    // Why omp simd: lets the compiler vectorise the reduction with a fixed (compile-time)
    // lane order, so the sum is the same on every run and every thread count.
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void hs_attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
    // out: (B, T, C); lse: (B, H, T); qkv: (B, T, 3C)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            float s[T]; // one row of scores: the only T-sized buffer
            const float *base = qkv + (int64_t)b * T * C3;
            for (int t = 0; t < T; t++) {
                const float *q = base + t * C3 + h * hd;
                float mx = -INFINITY;
                for (int j = 0; j <= t; j++) {
                    s[j] = dot(q, base + j * C3 + C + h * hd, hd) * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                float sum = 0.0f;
                for (int j = 0; j <= t; j++) {
                    s[j] = expf(s[j] - mx);
                    sum += s[j];
                }
                float *o = out + ((int64_t)b * T + t) * C + h * hd;
                memset(o, 0, sizeof(float) * (size_t)hd);
                for (int j = 0; j <= t; j++) {
                    const float *v = base + j * C3 + 2 * C + h * hd;
                    float p = s[j];
                    for (int d = 0; d < hd; d++) o[d] += p * v[d];
                }
                float inv = 1.0f / sum;
                for (int d = 0; d < hd; d++) o[d] *= inv;
                lse[((int64_t)b * H + h) * T + t] = mx + logf(sum);
            }
        }
}

void hs_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                           const float *lse, int B, int T, int C, int H) {
    // dqkv: (B, T, 3C) overwritten; dout, out: (B, T, C); qkv: (B, T, 3C); lse: (B, H, T)
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t C3 = 3 * (int64_t)C;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *base = qkv + (int64_t)b * T * C3;
            float *dbase = dqkv + (int64_t)b * T * C3;
            for (int t = 0; t < T; t++) { // this head's dk, dv accumulate below: zero them
                memset(dbase + t * C3 + C + h * hd, 0, sizeof(float) * (size_t)hd);
                memset(dbase + t * C3 + 2 * C + h * hd, 0, sizeof(float) * (size_t)hd);
            }
            for (int t = 0; t < T; t++) {
                const float *q = base + t * C3 + h * hd;
                const float *dO = dout + ((int64_t)b * T + t) * C + h * hd;
                const float *o = out + ((int64_t)b * T + t) * C + h * hd;
                float l = lse[((int64_t)b * H + h) * T + t];
                float D = dot(dO, o, hd);
                float *dq = dbase + t * C3 + h * hd;
                memset(dq, 0, sizeof(float) * (size_t)hd);
                for (int j = 0; j <= t; j++) {
                    const float *k = base + j * C3 + C + h * hd;
                    const float *v = base + j * C3 + 2 * C + h * hd;
                    float p = expf(dot(q, k, hd) * scale - l);
                    float dp = dot(dO, v, hd);
                    float ds = p * (dp - D) * scale;
                    float *dk = dbase + j * C3 + C + h * hd;
                    float *dv = dbase + j * C3 + 2 * C + h * hd;
                    for (int d = 0; d < hd; d++) {
                        dq[d] += ds * k[d];
                        dk[d] += ds * q[d];
                        dv[d] += p * dO[d];
                    }
                }
            }
        }
}
