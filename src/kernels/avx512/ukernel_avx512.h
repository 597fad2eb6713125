/* ukernel_avx512.h: what the AVX-512 GEMM micro-kernels (gemm_e2m1_avx512_ukernel.c,
 * gemm_bf16_avx512_ukernel.c) share: the full-unroll pragma that keeps their accumulator arrays
 * in registers, and the prefetch of C's lines for writing while the dot products run.
 * Include only from files compiled with AVX-512. */
#ifndef HALFS_KERNELS_UKERNEL_AVX512_H
#define HALFS_KERNELS_UKERNEL_AVX512_H

#include <stdint.h>

/* Full unrolling of the short constant loops (tile rows, column vectors, k-steps), so that the
 * accumulator arrays live in registers; clang needs its own spelling for that. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

/* Prefetch for writing the lines of C (row stride ldc) of a tile's first `rows` rows (those
 * below valid_rows) and first nv 16-float column vectors (rows and nv constants after
 * inlining). */
static inline __attribute__((always_inline)) void hs_prefetch_c_tile(const float *c, int64_t ldc,
                                                                     int valid_rows,
                                                                     const int rows,
                                                                     const int nv) {
UNROLL
    for (int r = 0; r < rows; r++)
        if (r < valid_rows)
UNROLL
            for (int j = 0; j < nv; j++) {
                const float *p = c + r * ldc + 16 * j;
                __builtin_prefetch(p, 1, 3);
                __builtin_prefetch(p + 15, 1, 3);
            }
}

#endif
