/* crossentropy.c: softmax cross-entropy over the vocabulary, and the token embedding.
 *
 * loss_i = lse_i − logit_i[target_i], lse = log Σ exp(logit) computed from the row maximum.
 * Backward (in place on the logits, which are not needed afterwards):
 *   dlogit_ij = dloss · (exp(logit_ij − lse_i) − [j = target_i]).
 */
#include <math.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/vmath.h"

void hs_crossentropy_forward(float *losses, float *lse, const float *logits,
                             const int32_t *targets, int64_t N, int V) {
    // losses, lse: (N); logits: (N, V); targets: (N)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *z = logits + i * V;
        float l = hs_logsumexp_row(z, V);
        lse[i] = l;
        losses[i] = targets[i] >= 0 ? l - z[targets[i]] : 0.0f;
    }
}

void hs_crossentropy_backward(float *logits, const float *lse, const int32_t *targets,
                              int64_t N, int V, float dloss) {
    // logits: (N, V) -> dlogits in place
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++) {
        float *z = logits + i * V;
        if (targets[i] < 0) {
            memset(z, 0, sizeof(float) * (size_t)V);
            continue;
        }
        hs_softmax_scaled_row(z, V, lse[i], dloss);
        z[targets[i]] -= dloss;
    }
}

void hs_embedding_forward(float *out, const int32_t *inputs, const float *wte, int64_t N, int C) {
    // out: (N, C); wte: (V, C)
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++)
        memcpy(out + i * C, wte + (int64_t)inputs[i] * C, sizeof(float) * (size_t)C);
}

void hs_embedding_backward(float *dwte, const float *dout, const int32_t *inputs, int64_t N,
                           int C) {
    // Why serial over tokens: a token id can repeat, so rows collide; visiting tokens in order
    // fixes the summation order (deterministic), and parallelising over channels keeps it so.
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += 16) {
        int c1 = c0 + 16 < C ? c0 + 16 : C;
        for (int64_t i = 0; i < N; i++) {
            float *d = dwte + (int64_t)inputs[i] * C;
            const float *g = dout + i * C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}
