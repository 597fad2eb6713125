/* gemm_bf16_avx512_ukernel.c: the AVX512-BF16 micro-kernel of the bf16 GEMM
 * (gemm_bf16_avx512.c holds the packing, blocking and threading, and describes the layouts).
 *
 * Compiled with clang where available (Makefile: *_ukernel.c); gcc 12 spills the 24
 * accumulators. Tile: MR = 8 rows × NB = 48 columns, 24 fp32 accumulators; per pair of k:
 * 3 loads of B, 8 broadcasts of A, 24 vdpbf16ps (`objdump -d`: nothing else in the k-loop).
 * The kernel starts its accumulators at +0 on a tile's first K chunk and, on its last, writes C
 * itself (acc, or fma(beta, C, acc)) after prefetching C's lines for writing when it starts:
 * with K ≤ KC the accumulators never leave registers. A last panel narrower than NB runs only
 * its 1 or 2 valid column vectors (N = 256 leaves a 16-column last panel).
 * Per output element the operations are those of the tile-and-store-pass organisation it
 * replaces: vdpbf16ps over the k-pairs in increasing order from +0, then, if beta ≠ 0,
 * fma(beta, C_old, acc); so the bits do not change.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx512/ukernel_avx512.h"
#include "kernels/kernels.h"

enum { MR = HS_BF16_MR, NB = HS_BF16_NB };

#define BH(v) ((__m512bh)(v))

/* One micro-tile on its first NV column vectors (a constant after inlining). */
static inline __attribute__((always_inline)) void bf16_tile(
    const void *ap, int64_t arow /* bytes */, const uint32_t *bp /* (steps, NB) */, int64_t steps,
    float *acc /* (MR, NB) */, int first, const hs_bf16_out *out, const int NV, const int DIRECT) {
    __m512 c[MR][3];
UNROLL
    for (int r = 0; r < MR; r++)
UNROLL
        for (int j = 0; j < NV; j++)
            c[r][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * NB + 16 * j);
    if (out) /* C's lines, for writing, while the dot products run */
        hs_prefetch_c_tile(out->c, out->ldc, out->rows, MR, NV);
    const char *a8 = ap; /* DIRECT: row r's pair s at a8 + r·arow + 4s; else [s][r] dwords */
    for (int64_t s = 0; s < steps; s++, a8 += DIRECT ? 4 : 4 * MR, bp += NB) {
        __m512i bv[3]; /* every element set: clang keeps a partly set array in memory */
UNROLL
        for (int j = 0; j < 3; j++)
            bv[j] = j < NV ? _mm512_loadu_si512(bp + 16 * j) : _mm512_setzero_si512();
UNROLL
        for (int r = 0; r < MR; r++) {
            int32_t w;
            memcpy(&w, a8 + (DIRECT ? r * arow : 4 * r), 4); /* rows need not be 4-aligned */
            __m512i av = _mm512_set1_epi32(w);
UNROLL
            for (int j = 0; j < NV; j++) c[r][j] = _mm512_dpbf16_ps(c[r][j], BH(av), BH(bv[j]));
        }
    }
    if (!out) {
UNROLL
        for (int r = 0; r < MR; r++)
UNROLL
            for (int j = 0; j < NV; j++) _mm512_storeu_ps(acc + r * NB + 16 * j, c[r][j]);
        return;
    }
    const __m512 vbeta = _mm512_set1_ps(out->beta);
    const int beta0 = out->beta == 0.0f;
UNROLL
    for (int r = 0; r < MR; r++) {
        if (r >= out->rows) break;
UNROLL
        for (int j = 0; j < NV; j++) {
            int w = out->cols - 16 * j;
            if (w <= 0) break;
            float *dst = out->c + r * out->ldc + 16 * j;
            __m512 v = c[r][j];
            if (w >= 16) { /* whole vectors unmasked: masked stores cost more on some cores */
                if (!beta0) v = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(dst), v);
                _mm512_storeu_ps(dst, v);
                continue;
            }
            __mmask16 m = (__mmask16)((1u << w) - 1);
            if (!beta0) v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m, dst), v);
            _mm512_mask_storeu_ps(dst, m, v);
        }
    }
}

void hs_ukernel_bf16_avx512(const void *ap, int64_t arow, const uint32_t *bp, int64_t steps,
                            float *acc, int nv, int first, const hs_bf16_out *out) {
#define TILE(V, D) bf16_tile(ap, arow, bp, steps, acc, first, out, V, D)
    if (arow) {
        if (nv >= 3) TILE(3, 1); else if (nv == 2) TILE(2, 1); else TILE(1, 1);
    } else {
        if (nv >= 3) TILE(3, 0); else if (nv == 2) TILE(2, 0); else TILE(1, 0);
    }
#undef TILE
}
