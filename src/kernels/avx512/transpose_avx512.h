/* transpose_avx512.h: the 16 × 16 transpose of 32-bit lanes shared by the AVX-512 kernels that
 * turn rows into columns (packing B of the FP4 and bf16 GEMMs, the bf16 operand conversion).
 * Include only from files compiled with AVX-512. */
#ifndef HALFS_KERNELS_TRANSPOSE_AVX512_H
#define HALFS_KERNELS_TRANSPOSE_AVX512_H

#include <immintrin.h>

/* out[j] lane i ← r[i] lane j: three rounds (32-bit unpacks, 64-bit unpacks, 128-bit shuffles). */
static inline void hs_transpose16x16_epi32(const __m512i r[16], __m512i out[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);     /* lane L: r_i[4L] r_i+1[4L] ... [4L+1] */
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]); /* [4L+2], [4L+3] */
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + e], lane L: rows g..g+3 of column 4L + e */
        u[g + 0] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int e = 0; e < 4; e++) { /* gather lane L of the four row groups: column 4L + e */
        __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88); /* lanes 0, 2 of each */
        __m512i w0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xDD); /* lanes 1, 3 */
        __m512i v1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
        __m512i w1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xDD);
        out[0 + e] = _mm512_shuffle_i32x4(v0, v1, 0x88);
        out[8 + e] = _mm512_shuffle_i32x4(v0, v1, 0xDD);
        out[4 + e] = _mm512_shuffle_i32x4(w0, w1, 0x88);
        out[12 + e] = _mm512_shuffle_i32x4(w0, w1, 0xDD);
    }
}

#endif
