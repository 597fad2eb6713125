/* quant_kernels.h (internal): how hs_quantize, hs_dequantize and hs_quantize_both choose their
 * kernel, and the prototypes of the quantizer kernels.
 *
 * A call is validated once into a plan (hs_quant_plan: the packed shape, group length, code
 * stride, scale encoding, SR key). Each ISA level has an ordered list of kernels, the scalar
 * reference last (quant_dispatch.c); each kernel has a name and says whether it covers a plan.
 * The dispatcher walks the list of the level in use (kernels.h, hs_kernels) and runs the first
 * kernel that covers the plan; a kernel may still decline when it runs (HS_ERR_UNSUPPORTED,
 * touching nothing: an output allocated for another spec of the same layout, no scratch memory),
 * and the walk goes on. A call that fails validation goes straight to the reference, which
 * reports the error. Every kernel is byte-identical to the reference, so the choice never changes
 * a result. HALFS_TRACE=1 prints each (entry point, kernel) pair to stderr the first time it runs.
 */
#ifndef HALFS_KERNELS_QUANT_KERNELS_H
#define HALFS_KERNELS_QUANT_KERNELS_H

#include <stdint.h>

#include "halfs/quant.h"
#include "kernels/kernels.h"

/* ---- plans ---- */
/* One hs_quantize call: x is x_rows × x_cols (row stride ld); the packed matrix is rows × cols
 * with its groups along its rows (x_cols × x_rows when transpose = 1). */
typedef struct hs_quant_plan {
    const hs_quant_spec *spec;
    const float *x;
    int64_t x_rows, x_cols, ld;
    int transpose;
    int64_t rows, cols;     /* the packed matrix */
    int64_t glen;           /* group length along a packed row (cols for one scale per row/tensor) */
    int64_t groups_per_row; /* 0 without scales */
    int64_t code_stride;    /* bytes between packed rows of codes */
    int bits;               /* bits per element */
    hs_scale_fmt scale;     /* the scale encoding */
    int prescale;           /* SR 3/4 pre-scale (hs_spec_sr_prescaled) */
    uint64_t key;           /* SR key hs_rng_key(seed, stream) */
} hs_quant_plan;

/* Fill *p for hs_quantize(s, x, rows, cols, ld, transpose, out). HS_OK when the call is valid
 * (exactly the calls hs_quantize_ref accepts); HS_ERR_INVALID_ARG, without a message, otherwise. */
hs_status hs_quant_plan_init(hs_quant_plan *p, const hs_quant_spec *s, const float *x,
                             int64_t rows, int64_t cols, int64_t ld, int transpose,
                             const hs_packed *out);

/* One hs_dequantize call: the packed tensor pk into y (row stride ldy). */
typedef struct hs_dequant_plan {
    const hs_packed *pk;
    float *y;
    int64_t ldy;
    int64_t rows, cols, glen, groups_per_row, code_stride;
    int bits;
    hs_scale_fmt scale;
} hs_dequant_plan;

/* HS_OK when hs_dequantize_ref accepts (pk, y, ldy); HS_ERR_INVALID_ARG, no message, otherwise. */
hs_status hs_dequant_plan_init(hs_dequant_plan *p, const hs_packed *pk, float *y, int64_t ldy);

/* ---- registries ---- */
typedef struct hs_quant_kernel {
    const char *name;
    int (*covers)(const hs_quant_plan *p);
    hs_status (*run)(const hs_quant_plan *p, hs_packed *out);
} hs_quant_kernel;

typedef struct hs_dequant_kernel {
    const char *name;
    int (*covers)(const hs_dequant_plan *p);
    hs_status (*run)(const hs_dequant_plan *p);
} hs_dequant_kernel;

/* hs_quantize_both: a row-wise plan (transpose = 0) and a column-wise one (transpose = 1) of the
 * same x. The last entry of every list is the pair of hs_quantize calls. */
typedef struct hs_quant_both_kernel {
    const char *name;
    int (*covers)(const hs_quant_plan *row, const hs_quant_plan *col);
    hs_status (*run)(const hs_quant_plan *row, const hs_quant_plan *col, hs_packed *out_row,
                     hs_packed *out_col);
} hs_quant_both_kernel;

/* The ordered kernel list of ISA level isa, *n entries, the reference (or the two separate
 * calls) last. */
const hs_quant_kernel *hs_quant_kernel_list(hs_isa isa, int *n);
const hs_dequant_kernel *hs_dequant_kernel_list(hs_isa isa, int *n);
const hs_quant_both_kernel *hs_quant_both_kernel_list(hs_isa isa, int *n);

/* The name of the first kernel of level isa's list that covers the plan (what hs_quantize,
 * hs_dequantize, hs_quantize_both run unless that kernel declines at run time). */
const char *hs_quant_kernel_pick(hs_isa isa, const hs_quant_plan *p);
const char *hs_dequant_kernel_pick(hs_isa isa, const hs_dequant_plan *p);
const char *hs_quant_both_kernel_pick(hs_isa isa, const hs_quant_plan *row,
                                      const hs_quant_plan *col);

/* ---- the quantizer kernels ----
 * Each is also callable alone with hs_quantize's (or hs_dequantize's) arguments: it returns
 * HS_ERR_UNSUPPORTED, touching nothing, for a call it does not cover or that is malformed. */
/* E2M1 with E8M0, UE4M3 or FP32 scales: the band quantizer (kernels/quant_band.h: the driver
 * quant_band.c with the tables of avx2/quant_e2m1_avx2.c, avx512/quant_e2m1_avx512.c);
 * _covers: does the kernel implement spec s on packed rows of C elements. */
hs_status hs_quantize_e2m1_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                int64_t cols, int64_t ld, int transpose, hs_packed *out);
int hs_quantize_e2m1_avx2_covers(const hs_quant_spec *s, int64_t C);
hs_status hs_quantize_e2m1_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                  int64_t cols, int64_t ld, int transpose, hs_packed *out);
int hs_quantize_e2m1_avx512_covers(const hs_quant_spec *s, int64_t C);
/* MXFP4-style specs (E2M1, E8M0, block 16/32, RNE/SR, rules ocp..halfs, no RHT/2D/tensor
 * scale; kernels/quant_mx.h: the driver quant_mx.c with the tables of
 * avx2/quant_mx_avx2_ukernel.c, avx512/quant_mx_avx512_ukernel.c): row-wise (transpose = 0
 * only), column-wise (transpose = 1 only) and the fused row + column quantizer of
 * hs_quantize_both. Their coverage: hs_qmx_covers. */
hs_status hs_quantize_e2m1_rows_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                     int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_quantize_e2m1_cols_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                     int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_quantize_both_e2m1_avx2(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                     const float *x, int64_t rows, int64_t cols, int64_t ld,
                                     hs_packed *out_row, hs_packed *out_col);
hs_status hs_quantize_e2m1_rows_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_quantize_e2m1_cols_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_quantize_both_e2m1_avx512(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                       const float *x, int64_t rows, int64_t cols, int64_t ld,
                                       hs_packed *out_row, hs_packed *out_col);
/* E2M1 with E8M0, UE4M3 or FP32 scales, block or row groups (avx512/dequant_e2m1_avx512.c). */
hs_status hs_dequantize_e2m1_avx512(const hs_packed *p, float *y, int64_t ldy);
/* Every element format (kernels/quant_generic.h): avx2/quant_generic_avx2.c,
 * avx512/quant_generic_avx512.c. Every valid call is covered. */
hs_status hs_quantize_generic_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                   int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_quantize_generic_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                     int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_dequantize_generic_avx2(const hs_packed *p, float *y, int64_t ldy);
hs_status hs_dequantize_generic_avx512(const hs_packed *p, float *y, int64_t ldy);

#endif
