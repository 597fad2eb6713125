/* swiglu.c: the SwiGLU nonlinearity of the Llama MLP, h = silu(g)·u with silu(g) = g·σ(g).
 *
 * Backward: dg = dh·u·σ(g)·(1 + g·(1 − σ(g))),  du = dh·silu(g).
 */
#include <math.h>

#include "nn/ops.h"

void hs_swiglu_forward(float *h, const float *gu, int64_t N, int F) {
    // h: (N, F); gu: (N, 2F) = [gate | up]
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F, *u = g + F;
        float *o = h + i * F;
        for (int j = 0; j < F; j++) {
            float s = 1.0f / (1.0f + expf(-g[j]));
            o[j] = g[j] * s * u[j];
        }
    }
}

void hs_swiglu_backward(float *dgu, const float *dh, const float *gu, int64_t N, int F) {
    // dgu: (N, 2F) overwritten; dh: (N, F); gu: (N, 2F)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F, *u = g + F, *d = dh + i * F;
        float *dg = dgu + i * 2 * F, *du = dg + F;
        for (int j = 0; j < F; j++) {
            float s = 1.0f / (1.0f + expf(-g[j]));
            float silu = g[j] * s;
            dg[j] = d[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
            du[j] = d[j] * silu;
        }
    }
}
