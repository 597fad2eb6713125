/* swiglu.c: the SwiGLU nonlinearity of the Llama MLP, h = silu(g)·u with silu(g) = g·σ(g).
 *
 * Backward: dg = dh·u·σ(g)·(1 + g·(1 − σ(g))),  du = dh·silu(g).
 */
#include "nn/ops.h"
#include "nn/vmath.h"

void hs_swiglu_forward(float *h, const float *gu, int64_t N, int F) {
    // h: (N, F); gu: (N, 2F) = [gate | up]
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F;
        hs_swiglu_row(h + i * F, g, g + F, F);
    }
}

void hs_swiglu_backward(float *dgu, const float *dh, const float *gu, int64_t N, int F) {
    // dgu: (N, 2F) overwritten; dh: (N, F); gu: (N, 2F)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F;
        float *dg = dgu + i * 2 * F;
        hs_swiglu_bwd_row(dg, dg + F, dh + i * F, g, g + F, F);
    }
}
