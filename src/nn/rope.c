/* rope.c: rotary position embedding, Hugging Face Llama convention.
 *
 * For a head vector q of size hd and position t, with h = hd/2 and angle_i = t·theta^(−2i/hd):
 *   q'[i]     = q[i]·cos_i − q[i+h]·sin_i
 *   q'[i+h]   = q[i+h]·cos_i + q[i]·sin_i          (rotate_half on the two halves)
 * The backward applies the transposed rotation (angle −angle_i) to the gradient.
 */
#include <math.h>

#include "nn/ops.h"

void hs_rope_tables(float *cos_t, float *sin_t, int max_seq, int hd, float theta) {
    // cos_t, sin_t: (max_seq, hd/2)
    int h = hd / 2;
    for (int i = 0; i < h; i++) {
        // Why float inv_freq: HF computes inv_freq in float32, then t·inv_freq in float32;
        // we take the angle from the same float32 inv_freq (product in double, rounded once).
        float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / hd));
        for (int t = 0; t < max_seq; t++) {
            float ang = (float)t * inv;
            cos_t[(int64_t)t * h + i] = (float)cos((double)ang);
            sin_t[(int64_t)t * h + i] = (float)sin((double)ang);
        }
    }
}

/* n rows of one head (hd values each, rows `stride` floats apart) at positions 0..n−1.
 * Elementwise (bit-identical per clone). Used by rope_apply below and inside attention's
 * per-head tasks (there the rotation runs on a slice that is in cache for the attention
 * products that follow or precede it). */
__attribute__((target_clones("avx512f", "avx2", "default"))) void
hs_rope_head_rows(float *v0, int64_t stride, int n, const float *cos_t, const float *sin_t,
                  int hd, float sign) {
    int h = hd / 2;
    for (int t = 0; t < n; t++) {
        float *v = v0 + (int64_t)t * stride;
        const float *cs = cos_t + (int64_t)t * h, *sn = sin_t + (int64_t)t * h;
#pragma omp simd
        for (int i = 0; i < h; i++) {
            float a = v[i], bb = v[i + h], c = cs[i], s = sign * sn[i];
            v[i] = a * c - bb * s;
            v[i + h] = bb * c + a * s;
        }
    }
}

static void rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                       int H, float sign) {
    // qkv: (B, T, 3C); q and k of every (batch, head)
    int hd = C / H;
    int64_t C3 = 3 * (int64_t)C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int hh = 0; hh < H; hh++) {
            float *q = qkv + (int64_t)b * T * C3 + hh * hd;
            hs_rope_head_rows(q, C3, T, cos_t, sin_t, hd, sign);
            hs_rope_head_rows(q + C, C3, T, cos_t, sin_t, hd, sign);
        }
}

void hs_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                     int H) {
    rope_apply(qkv, cos_t, sin_t, B, T, C, H, 1.0f);
}

void hs_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                      int H) {
    rope_apply(dqkv, cos_t, sin_t, B, T, C, H, -1.0f);
}
