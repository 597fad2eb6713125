/* kernels.h: ISA levels, the internal kernel table (GEMMs and the bf16 conversion) and the
 * per-thread workspace; GEMM kernels are declared in gemm_kernels.h, quantizer plans and kernel
 * lists in quant_kernels.h.
 *
 * Organisation (docs/KERNELS.md): src/kernels/ref/ holds the scalar twins (the contract),
 * src/kernels/avx2/ and src/kernels/avx512/ one file per kernel family and ISA, compiled with
 * that ISA's flags only. dispatch.c fills one table with the reference kernels, then overrides
 * the slots the CPU supports (BLIS-style), so every slot is always valid. Nothing here is public:
 * the library's users see include/halfs/ only; tests include this header to force an ISA.
 */
#ifndef HALFS_KERNELS_H
#define HALFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/gemm.h"
#include "halfs/quant.h"
#include "kernels/gemm_kernels.h" /* the GEMM plan, GEMM slots and GEMM kernels */

/* ---- ISA levels ---- */
typedef enum { HS_ISA_REF = 0, HS_ISA_AVX2 = 1, HS_ISA_AVX512 = 2, HS_ISA_COUNT } hs_isa;

/* ---- the bf16 operand conversion slot ---- */
/* fp32 → bf16 (RNE, quiet NaN) of one tile of at most 32 rows × 16 columns of x (rows × cols,
 * row stride ld) at rows r0.., columns c0..: into dr (rows × cols) as is and/or into dt (cols ×
 * rows) transposed; either may be NULL. */
typedef void (*hs_bf16_tile_fn)(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows,
                                int64_t cols, int64_t ld, int64_t r0, int64_t c0);
void hs_bf16_tile_ref(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int64_t r0, int64_t c0);
void hs_bf16_tile_avx2(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                       int64_t ld, int64_t r0, int64_t c0);
void hs_bf16_tile_avx512(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                         int64_t ld, int64_t r0, int64_t c0);

/* fp32 → bf16 values kept in fp32 (RNE as above, then a subnormal result becomes a zero of its
 * sign, as the bf16 GEMM reads it): the operands of hs_gemm_bf16v. Same tile and layouts as
 * hs_bf16_tile_fn. */
typedef void (*hs_bf16v_tile_fn)(float *dr, float *dt, const float *x, int64_t rows,
                                 int64_t cols, int64_t ld, int64_t r0, int64_t c0);
void hs_bf16v_tile_ref(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                       int64_t ld, int64_t r0, int64_t c0);
void hs_bf16v_tile_avx2(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                        int64_t ld, int64_t r0, int64_t c0);
void hs_bf16v_tile_avx512(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                          int64_t ld, int64_t r0, int64_t c0);

typedef struct hs_kernel_table {
    hs_isa isa;
    const char *name;
    hs_gemm_e2m1_fn gemm_e2m1;
    hs_gemm_bf16_fn gemm_bf16;
    hs_bf16_tile_fn bf16_tile; /* the bf16 recipe's operand conversion */
    hs_gemm_bf16v_fn gemm_bf16v; /* attention's bf16 products */
    hs_bf16v_tile_fn bf16v_tile; /* their operand conversion */
} hs_kernel_table;

/* The quantizers' kernels are chosen from per-level lists: kernels/quant_kernels.h. */

/* The table in use (chosen once: CPUID, or HALFS_ISA). */
const hs_kernel_table *hs_kernels(void);
/* The best ISA this CPU (and OS) supports. */
hs_isa hs_isa_detect(void);
/* Tests only: force an ISA level for this process (clamped to what the CPU supports); returns
 * the level actually selected. Not thread-safe against concurrent kernel calls. */
hs_isa hs_isa_force(hs_isa isa);

/* ---- AVX-512 quantizer micro-kernel (the GEMM ones: gemm_kernels.h) ---- */
/* ---- workspace ----
 * A per-thread scratch buffer reused across calls (the first touch of fresh pages costs a page
 * fault each), 64-byte aligned, grown on demand, freed at thread exit. slot 0..3 are
 * independent buffers. Returns NULL on allocation failure. */
void *hs_workspace(int slot, size_t bytes);

/* NVFP4's tensor amax over finite values, as the reference computes it: one value per band of
 * rows, band_amax(ctx, b, t) with t = hs_workspace(2, tbytes) of the calling thread, the bands
 * run in parallel (if par) and reduced in band order, so the result is independent of the
 * thread count. Returns 0, or -1 when scratch memory could not be had. */
int hs_bands_finite_amax(int64_t nbands, size_t tbytes, int par,
                         float (*band_amax)(const void *ctx, int64_t b, float *t),
                         const void *ctx, float *amax);

#endif
