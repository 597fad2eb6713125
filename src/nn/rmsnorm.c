/* rmsnorm.c: RMSNorm forward and backward (Hugging Face LlamaRMSNorm).
 *
 *   out = w ∘ x · rstd,   rstd = 1 / sqrt(mean(x²) + eps)
 * Row sums are float reductions vectorised with a fixed lane order (omp simd): the same
 * result for any thread count.
 */
#include <math.h>
#include <string.h>

#include "nn/ops.h"

void hs_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                        int C, float eps) {
    // out, inp: (N, C); rstd: (N); w: (C)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *y = out + i * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
        rstd[i] = r;
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
        for (int64_t i = i0; i < i1; i++) {
            const float *x = inp + i * C, *dy = dout + i * C;
            float *dx = dinp + i * C;
            float r = rstd[i];
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += (w[c] * dy[c]) * (x[c] * r);
            float mean = dot / (float)C;
            for (int c = 0; c < C; c++) {
                float xh = x[c] * r;
                dx[c] += r * (w[c] * dy[c] - xh * mean);
                part[c] += dy[c] * xh;
            }
        }
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float s = 0.0f;
        for (int ch = 0; ch < HS_NN_CHUNKS; ch++) s += scratch[(int64_t)ch * C + c];
        dw[c] += s;
    }
}
