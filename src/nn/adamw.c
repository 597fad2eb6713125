/* adamw.c: the AdamW update, written as torch.optim.AdamW (PyTorch 1.13, single-tensor path)
 * computes it, operation by operation, so a PyTorch run from the same weights and gradients
 * follows the same trajectory (https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html).
 * Python scalars become float32 in PyTorch's CPU float kernels; we round them the same way.
 */
#include <math.h>

#include "nn/ops.h"

/* One contiguous span of the update. Elementwise IEEE operations only (no FMA contraction
 * under -std=c11, sqrt and division correctly rounded), so every clone gives identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
adamw_span(float *p, float *g, float *m, float *v, int64_t n, float decay, float b1,
           float omb1, float b2, float omb2, float step_size, float bc2_sqrt, float feps,
           int scaled, float gscale) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        if (scaled) g[i] = gi = gi * gscale;          // the clip's grad.mul_(coef), stored back
        float pi = p[i] * decay;
        float mi = m[i] * b1 + omb1 * gi;            // exp_avg.mul_(beta1).add_(grad, 1-beta1)
        float vi = v[i] * b2 + omb2 * gi * gi;       // exp_avg_sq.mul_(beta2).addcmul_(g, g)
        float denom = sqrtf(vi) / bc2_sqrt + feps;   // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        p[i] = pi + (-step_size) * mi / denom;       // param.addcdiv_(exp_avg, denom, -step)
        m[i] = mi;
        v[i] = vi;
    }
}

static void adamw_update(float *p, float *g, float *m, float *v, int64_t n, double lr,
                         double beta1, double beta2, double eps, double wd, int64_t t, int scaled,
                         float gscale) {
    // p, g, m, v: (n)
    float decay = (float)(1.0 - lr * wd);           // param.mul_(1 - lr * weight_decay)
    float b1 = (float)beta1, omb1 = (float)(1.0 - beta1);
    float b2 = (float)beta2, omb2 = (float)(1.0 - beta2);
    double bc1 = 1.0 - pow(beta1, (double)t);
    double bc2 = 1.0 - pow(beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float feps = (float)eps;
    enum { SPAN = 16384 }; // elements per task (64 KiB per array)
    int64_t nspan = (n + SPAN - 1) / SPAN;
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < nspan; s++) {
        int64_t i0 = s * SPAN, len = n - i0 < SPAN ? n - i0 : SPAN;
        adamw_span(p + i0, g + i0, m + i0, v + i0, len, decay, b1, omb1, b2, omb2, step_size,
                   bc2_sqrt, feps, scaled, gscale);
    }
}

void hs_adamw_update(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                     double beta1, double beta2, double eps, double wd, int64_t t) {
    // g is only read when not scaled (the cast keeps the one span kernel for both entries)
    adamw_update(p, (float *)g, m, v, n, lr, beta1, beta2, eps, wd, t, 0, 1.0f);
}

void hs_adamw_update_scaled(float *p, float *g, float *m, float *v, int64_t n, float gscale,
                            double lr, double beta1, double beta2, double eps, double wd,
                            int64_t t) {
    adamw_update(p, g, m, v, n, lr, beta1, beta2, eps, wd, t, 1, gscale);
}
