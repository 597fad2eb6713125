/* quant_generic.h (internal): the generic SIMD quantizer and dequantizer of every element format
 * (E4M3, E5M2, INT4, INT8, BF16, FP32, and the E2M1 cases the E2M1 band kernels decline).
 *
 * One ISA-independent driver (quant_generic.c: checks, bands of 16 packed rows with OpenMP, the
 * scale rules, per-tensor groups, 2D tiles, the NVFP4 tensor scale) calls a small table of
 * vector operations that each ISA file fills (avx2/quant_generic_avx2.c,
 * avx512/quant_generic_avx512.c). Groups are processed along the packed row, so
 * consecutive elements lie in consecutive lanes: the reference's error sums (term i into
 * accumulator i mod 8) map onto 8 double lanes directly.
 */
#ifndef HALFS_KERNELS_QUANT_GENERIC_H
#define HALFS_KERNELS_QUANT_GENERIC_H

#include <stdint.h>

#include "halfs/quant.h"

/* How one scaled element is encoded (the arithmetic of core/codec.c, as a grid):
 * a = min(|z|, max); floats: e = max(floor(log2 a), emin), quantum 2^(e − mbits); integers:
 * quantum 1; n = a / quantum rounded (RNE, RNA, RTS, or SR against u); code magnitude
 * ((e − emin) << mbits) + n for floats, n for integers. Floats put the sign in bit `sign`
 * (0x8 or 0x80); integers store the two's complement of ±n in `bits` bits. */
typedef struct hs_qg_fmt {
    hs_elem elem;
    int bits;          /* 4 or 8 (scaled elements) */
    int is_int;
    float max;         /* saturation magnitude (a grid point) */
    int emin, mbits;   /* floats only */
    uint32_t sign;     /* floats: the code's sign bit */
    hs_rounding rounding;
    int prescale;      /* SR 3/4 pre-scale: z = fl(fl(v·enc)·0.75) */
    uint64_t key;      /* SR key of (seed, stream): u = hs_rng_uniform_key(key, index) */
} hs_qg_fmt;

typedef struct hs_qg_ops {
    /* band[i·C + c] = x[c·ld + r0 + i] for i < nb (nb ≤ 16), c < C */
    void (*load_t)(const float *x, int64_t ld, int64_t r0, int nb, int64_t C, float *band);
    /* max |v_i| as float bits (integer max; ≥ 0x7F800000 when Inf/NaN is present) */
    uint32_t (*amax)(const float *v, int64_t n);
    /* max |v_i| over the finite v_i (0 if none) */
    float (*finite_amax)(const float *v, int64_t n);
    /* hs_group_sse(f->elem, v, n, enc, dec), same bits */
    double (*sse)(const hs_qg_fmt *f, const float *v, int64_t n, float enc, float dec);
    /* Σ v_i² in the reference's 8-lane order (halfs-sigma) */
    double (*sumsq)(const float *v, int64_t n);
    /* codes of v[0..n) scaled by enc, element i with SR index idx0 + i, into dst (4-bit: two per
     * byte from a byte boundary, a trailing odd element in the low nibble; bytes written only
     * for these elements) */
    void (*encode)(const hs_qg_fmt *f, const float *v, int64_t n, float enc, uint64_t idx0,
                   uint8_t *dst);
    /* unscaled rows: BF16 (RNE, little-endian) or FP32 bits */
    void (*plain)(hs_elem e, const float *v, int64_t n, uint8_t *dst);
    /* y[i] = fl(vtab[code_i] · m) (then · 4/3 if prescale) for n elements of `bits` (4 or 8)
     * bits starting at src (a byte boundary) */
    void (*decode)(int bits, const float *vtab, const uint8_t *src, int64_t n, float m,
                   int prescale, float *y);
    /* unscaled rows: BF16 or FP32 values */
    void (*decode_plain)(hs_elem e, const uint8_t *src, int64_t n, float *y);
} hs_qg_ops;

/* The driver: hs_quantize / hs_dequantize semantics with the given vector operations.
 * HS_ERR_UNSUPPORTED (touching nothing) for anything malformed (the reference then reports it)
 * and for E2M1 specs when e2m1 = 0. */
hs_status hs_qg_quantize(const hs_qg_ops *ops, int e2m1, const hs_quant_spec *s, const float *x,
                         int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_qg_dequantize(const hs_qg_ops *ops, const hs_packed *p, float *y, int64_t ldy);

/* The AVX2 operations (also used by the AVX-512 table where AVX2 suffices). */
void hs_qg_load_t_avx2(const float *x, int64_t ld, int64_t r0, int nb, int64_t C, float *band);
float hs_qg_finite_amax_avx2(const float *v, int64_t n);
double hs_qg_sumsq_avx2(const float *v, int64_t n);
void hs_qg_plain_avx2(hs_elem e, const float *v, int64_t n, uint8_t *dst);
void hs_qg_decode_plain_avx2(hs_elem e, const uint8_t *src, int64_t n, float *y);

#endif
