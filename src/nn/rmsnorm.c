/* rmsnorm.c: RMSNorm forward and backward (Hugging Face LlamaRMSNorm).
 *
 *   out = w ∘ x · rstd,   rstd = 1 / sqrt(mean(x²) + eps)
 * The row kernels are compiled for AVX-512, AVX2 and baseline x86-64 (gcc target_clones,
 * picked once at load time); their row sums use the fixed lane order of vmath.h
 * (hs_sum_lanes), so every clone, thread count and CPU gives the same bits.
 */
#include <math.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/vmath.h"

/* y (C) = w ∘ x · r, r = 1 / sqrt(mean(x²) + eps); returns r. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static float
rms_row(float *y, const float *x, const float *w, int C, float eps) {
    float acc[HS_SUM_LANES] = {0};
    int c = 0;
    for (; c + HS_SUM_LANES <= C; c += HS_SUM_LANES)
#pragma omp simd
        for (int l = 0; l < HS_SUM_LANES; l++) acc[l] += x[c + l] * x[c + l];
    for (int l = 0; c + l < C; l++) acc[l] += x[c + l] * x[c + l];
    float ss = hs_sum_lanes(acc);
    float r = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
    for (c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
    return r;
}

/* One row of the backward: dx (C) +=, part (C) += dy ∘ x̂. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
rms_bwd_row(float *dx, float *part, const float *dy, const float *x, const float *w, float r,
            int C) {
    float acc[HS_SUM_LANES] = {0};
    int c = 0;
    for (; c + HS_SUM_LANES <= C; c += HS_SUM_LANES)
#pragma omp simd
        for (int l = 0; l < HS_SUM_LANES; l++) acc[l] += (w[c + l] * dy[c + l]) * (x[c + l] * r);
    for (int l = 0; c + l < C; l++) acc[l] += (w[c + l] * dy[c + l]) * (x[c + l] * r);
    float mean = hs_sum_lanes(acc) / (float)C;
#pragma omp simd
    for (c = 0; c < C; c++) {
        float xh = x[c] * r;
        dx[c] += r * (w[c] * dy[c] - xh * mean);
        part[c] += dy[c] * xh;
    }
}

void hs_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                        int C, float eps) {
    // out, inp: (N, C); rstd: (N); w: (C)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) rstd[i] = rms_row(out + i * C, inp + i * C, w, C, eps);
}

void hs_rmsnorm_residual_forward(float *out, float *rstd, float *res, const float *add,
                                 const float *w, int64_t N, int C, float eps) {
    // out, res, add: (N, C); rstd: (N); w: (C). Row by row: the row is in L1 for the norm.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        float *r = res + i * C;
        const float *a = add + i * C;
#pragma omp simd
        for (int c = 0; c < C; c++) r[c] += a[c];
        rstd[i] = rms_row(out + i * C, r, w, C, eps);
    }
}

void hs_rmsnorm_backward(float *dinp, float *dw, float *scratch, const float *dout,
                         const float *inp, const float *w, const float *rstd, int64_t N, int C) {
    // dinp, dout, inp: (N, C); dw, w: (C); rstd: (N); scratch: (HS_NN_CHUNKS, C)
    // dx_j = rstd · (dn_j − x̂_j · mean(dn ∘ x̂)), dn = w ∘ dy, x̂ = x · rstd
    int64_t per = (N + HS_NN_CHUNKS - 1) / HS_NN_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < HS_NN_CHUNKS; ch++) {
        float *part = scratch + (int64_t)ch * C; // this chunk's share of dw, summed in order below
        memset(part, 0, sizeof(float) * (size_t)C);
        int64_t i0 = ch * per, i1 = i0 + per < N ? i0 + per : N;
        for (int64_t i = i0; i < i1; i++)
            rms_bwd_row(dinp + i * C, part, dout + i * C, inp + i * C, w, rstd[i], C);
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float s = 0.0f;
        for (int ch = 0; ch < HS_NN_CHUNKS; ch++) s += scratch[(int64_t)ch * C + c];
        dw[c] += s;
    }
}
