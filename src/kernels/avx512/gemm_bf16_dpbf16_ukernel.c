/* gemm_bf16_dpbf16_ukernel.c: the AVX512-BF16 micro-kernel of the bf16 GEMM
 * (gemm_bf16_dpbf16.c holds the packing, blocking and threading).
 *
 * Compiled with clang where available (Makefile: *_ukernel.c); gcc 12 spills the 24
 * accumulators. Tile: MR = 8 rows × NB = 48 columns, 24 fp32 accumulators; per pair of k:
 * 3 loads of B, 8 broadcasts of A, 24 vdpbf16ps.
 */
#include <immintrin.h>

#include "kernels/kernels.h"

enum { MR = HS_BF16_MR, NB = HS_BF16_NB };

#define BH(v) ((__m512bh)(v))

void hs_ukernel_bf16_avx512(const uint32_t *ap /* (steps, MR) */, const uint32_t *bp /* (steps, NB) */,
                    int64_t steps, float *acc /* (MR, NB) */) {
    __m512 c[MR][3];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 3; j++) c[r][j] = _mm512_loadu_ps(acc + r * NB + 16 * j);
    for (int64_t s = 0; s < steps; s++, ap += MR, bp += NB) {
        __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 16),
                b2 = _mm512_loadu_si512(bp + 32);
        for (int r = 0; r < MR; r++) {
            __m512i av = _mm512_set1_epi32((int)ap[r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], BH(av), BH(b0));
            c[r][1] = _mm512_dpbf16_ps(c[r][1], BH(av), BH(b1));
            c[r][2] = _mm512_dpbf16_ps(c[r][2], BH(av), BH(b2));
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 3; j++) _mm512_storeu_ps(acc + r * NB + 16 * j, c[r][j]);
}
