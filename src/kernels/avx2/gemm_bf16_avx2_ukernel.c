/* gemm_bf16_avx2_ukernel.c: the AVX2 micro-kernel of the bf16 GEMM (layouts in gemm_bf16_avx2.c):
 * MR × NB = 6 × 16 fp32 outputs over kc panel steps, acc = fma(a_t, b_t, acc) in increasing t,
 * 12 ymm accumulators + 2 B vectors + 1 A broadcast. Compiled with clang where installed
 * (Makefile), like the other micro-kernels: it keeps every accumulator in a register. */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"

enum { MR = HS_BF16_AVX2_MR, NB = HS_BF16_AVX2_NB };

void hs_ukernel_bf16_avx2(const float *ap, const float *bp, int64_t kc, float *tile, int64_t ldt,
                          int first) {
    __m256 acc[MR][2];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(tile + r * ldt);
        acc[r][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(tile + r * ldt + 8);
    }
    for (int64_t t = 0; t < kc; t++) {
        const __m256 b0 = _mm256_loadu_ps(bp + t * NB), b1 = _mm256_loadu_ps(bp + t * NB + 8);
        for (int r = 0; r < MR; r++) {
            const __m256 a = _mm256_broadcast_ss(ap + t * MR + r);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(tile + r * ldt, acc[r][0]);
        _mm256_storeu_ps(tile + r * ldt + 8, acc[r][1]);
    }
}
