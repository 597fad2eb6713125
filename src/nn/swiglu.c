/* swiglu.c: the SwiGLU nonlinearity of the Llama MLP, h = silu(g)·u with silu(g) = g·σ(g).
 *
 * Backward: dg = dh·u·σ(g)·(1 + g·(1 − σ(g))),  du = dh·silu(g).
 * The _save / _saved pair keeps σ(g) from the forward for the backward: one (N, F) buffer more
 * per layer, and the backward no longer evaluates an exponential and a division per element
 * (it took about half of the backward's time and as long as the forward).
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

void hs_swiglu_forward_save(float *h, float *sg, const float *gu, int64_t N, int F) {
    // h, sg: (N, F); gu: (N, 2F) = [gate | up]
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F;
        hs_swiglu_row_save(h + i * F, sg + i * F, g, g + F, F);
    }
}

void hs_swiglu_backward_saved(float *dgu, const float *dh, const float *gu, const float *sg,
                              int64_t N, int F) {
    // dgu: (N, 2F) overwritten; dh, sg: (N, F); gu: (N, 2F)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *g = gu + i * 2 * F;
        float *dg = dgu + i * 2 * F;
        hs_swiglu_bwd_row_saved(dg, dg + F, dh + i * F, g, g + F, sg + i * F, F);
    }
}
