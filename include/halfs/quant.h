/* halfs/quant.h: formats, quantizer specs, packed tensors, quantize / dequantize / qdq.
 *
 * The rules computed here are specified in docs/FORMATS.md (sections cited inline). A
 * quantizer is described by one plain struct, hs_quant_spec; there is no global state. Named
 * formats ("mxfp4", "nvfp4", ...) are presets that fill a spec; every field can then be
 * changed.
 *
 * Orientation. A matrix x has `rows` rows of `cols` floats, row stride `ld` (floats).
 * Scale groups always run along one axis:
 *   transpose = 0: groups run along each row of x (the usual case: a GEMM reducing over cols);
 *   transpose = 1: groups run along each column of x (a GEMM reducing over rows, e.g. the
 *                  weight-gradient GEMM dW = dYᵀ·X reduces over tokens).
 * A packed tensor (hs_packed) always stores its matrix with groups along its own rows:
 * hs_quantize(transpose = 1) therefore produces the packed form of xᵀ (cols × rows).
 * hs_qdq returns values in x's own layout in both cases.
 */
#ifndef HALFS_QUANT_H
#define HALFS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element formats (docs/FORMATS.md §1) ---- */
typedef enum {
    HS_ELEM_E2M1 = 0, /* FP4: ±{0, .5, 1, 1.5, 2, 3, 4, 6}, packed two per byte */
    HS_ELEM_E4M3,     /* FP8 OCP E4M3 (max 448, one NaN pattern, no Inf) */
    HS_ELEM_E5M2,     /* FP8 OCP E5M2 (max 57344, IEEE Inf/NaN) */
    HS_ELEM_INT4,     /* symmetric −7..7, packed two per byte (two's complement nibbles) */
    HS_ELEM_INT8,     /* symmetric −127..127 */
    HS_ELEM_BF16,     /* bfloat16, RNE from fp32 */
    HS_ELEM_FP32,     /* no quantization */
    HS_ELEM_COUNT
} hs_elem;

/* ---- scale formats (docs/FORMATS.md §3) ---- */
typedef enum {
    HS_SCALE_NONE = 0, /* no scale (bf16, fp32) */
    HS_SCALE_E8M0,     /* power of two 2^(e−127), one byte; 0xFF = NaN */
    HS_SCALE_UE4M3,    /* unsigned E4M3, one byte (NVFP4 block scales) */
    HS_SCALE_FP32,     /* a float */
    HS_SCALE_COUNT
} hs_scale_fmt;

/* ---- what one scale covers (docs/FORMATS.md §4) ---- */
typedef enum {
    HS_GROUP_TENSOR = 0, /* one scale for the whole tensor */
    HS_GROUP_ROW,        /* one scale per row (per token / per channel) */
    HS_GROUP_BLOCK,      /* one scale per `block` consecutive elements; last block may be partial */
    HS_GROUP_COUNT
} hs_group;

/* ---- scale rules (docs/FORMATS.md §6: power-of-two and continuous) ---- */
typedef enum {
    HS_RULE_OCP = 0,     /* e = floor(log2 a) − emax                         (E8M0) */
    HS_RULE_CEIL,        /* e = ceil(log2 a) − emax: "max-scaling"           (E8M0) */
    HS_RULE_RCEIL,       /* smallest e with a ≤ max·2^e                      (E8M0) */
    HS_RULE_EVEN,        /* floor − emax, +1 if mantissa ≥ 1.75               (E8M0) */
    HS_RULE_HALF,        /* ceil − 1 always (E8M0) / a/(2·max) (continuous) */
    HS_RULE_HALFS,       /* Half-S: half if strictly lower group SSE, else ceil/max */
    HS_RULE_HALFS_SIGMA, /* closed-form Half-S from the group RMS            (E8M0) */
    HS_RULE_MSE,         /* best of ceil..ceil−3 (E8M0) / clip grid search (continuous) */
    HS_RULE_MAX,         /* X = a / max                                      (FP32, UE4M3) */
    HS_RULE_4OVER6,      /* NVFP4 Four-over-Six                              (UE4M3 two-level) */
    HS_RULE_COUNT
} hs_rule;

/* ---- element rounding (docs/FORMATS.md §2) ---- */
typedef enum {
    HS_ROUND_RNE = 0, /* nearest, ties to even mantissa (default) */
    HS_ROUND_RNA,     /* nearest, ties away from zero (microxcaling "nearest") */
    HS_ROUND_RTS,     /* nearest, ties to smaller magnitude (ggml) */
    HS_ROUND_SR,      /* stochastic, unbiased, counter-based RNG */
    HS_ROUND_COUNT
} hs_rounding;

/* ---- named formats: presets that fill a spec (docs/FORMATS.md §5; the CLI's --format) ---- */
typedef enum {
    HS_FMT_MXFP4 = 0,  /* E2M1, E8M0 scale per block of 32 */
    HS_FMT_NVFP4,      /* E2M1, UE4M3 scale per block of 16, FP32 per-tensor second level */
    HS_FMT_FP4,        /* E2M1, FP32 scale per block of 32 */
    HS_FMT_FP4ROW,     /* E2M1, E8M0 scale per row */
    HS_FMT_MXFP8_E4M3, /* E4M3, E8M0 scale per block of 32 */
    HS_FMT_INT4,       /* INT4, FP32 scale per block of 32 */
    HS_FMT_BF16,       /* bf16, no scale */
    HS_FMT_FP32,       /* no quantization */
    HS_FMT_COUNT
} hs_format;

/* A quantizer. Fill it with hs_quant_spec_init, then adjust fields. */
typedef struct hs_quant_spec {
    hs_elem elem;
    hs_scale_fmt scale_fmt;
    hs_group group;
    int32_t block;        /* group size for HS_GROUP_BLOCK: 16, 32, 64 or 128 (ignored otherwise) */
    int32_t tile2d;       /* 0, or 16: one scale per 16×16 tile (2D weight scaling, NVFP4 §4.3);
                             needs group = BLOCK with block = tile2d */
    int32_t two_level;    /* 1: FP32 per-tensor scale above the block scales (NVFP4 §6) */
    hs_rule rule;
    hs_rounding rounding;
    int32_t sr_prescale;  /* SR only: 1 = multiply the group by 3/4 before SR (Tseng et al.);
                             -1 = automatic (on for SR with E8M0 scales); 0 = off */
    int32_t rht;          /* 0, or 16/32/64/128: random Hadamard transform of that size along the
                             group axis before quantizing (both GEMM operands need the same rht_seed) */
    uint64_t rht_seed;    /* seed of the RHT's random signs */
    uint64_t seed;        /* seed of stochastic rounding */
    uint64_t stream;      /* tensor id mixed into the SR counter: (seed, stream, element index) */
} hs_quant_spec;

/* A quantized matrix of `rows` × `cols`, scale groups along each row.
 * Codes: E2M1/INT4 two per byte, element 2i in the low nibble of byte i (docs/FORMATS.md §9);
 * 8-bit elements one per byte; BF16 two bytes (little-endian uint16); FP32 four bytes.
 * Each row starts at codes + r·code_stride; code_stride is a multiple of 64 and bytes past the
 * row's last element are zero (so kernels may read whole blocks).
 * Scales: rows × groups_per_row entries, row-major, one byte (E8M0/UE4M3) or one float (FP32);
 * per-tensor and 2D-tile scales are stored replicated so every consumer sees one layout. */
typedef struct hs_packed {
    hs_quant_spec spec;
    int64_t rows, cols;
    int64_t groups_per_row; /* ceil(cols / block) for BLOCK, 1 for ROW and TENSOR */
    int64_t code_stride;    /* bytes between rows of codes */
    uint8_t *codes;
    void *scales;
    float tensor_scale;     /* NVFP4 s_enc (x ≈ q·s_b / s_enc); 1 otherwise */
    int64_t groups_halved;  /* groups whose scale the rule set below the ceil/max scale */
    int64_t groups_total;
} hs_packed;

/* ---- names ---- */
const char *hs_format_name(hs_format f);
const char *hs_rule_name(hs_rule r);
const char *hs_rounding_name(hs_rounding r);
const char *hs_elem_name(hs_elem e);
hs_status hs_format_parse(const char *name, hs_format *out);
hs_status hs_rule_parse(const char *name, hs_rule *out);
hs_status hs_rounding_parse(const char *name, hs_rounding *out);

/* Fill s with the preset of a named format: its default rule (Half-S for the FP4 formats with
 * E8M0 scales, mxfp4 and fp4row; `max` for fp4 (FP32 scales), NVFP4 and INT4; `ocp` for MXFP8),
 * RNE, sr_prescale -1 (automatic), no RHT, seeds 0. See docs/FORMATS.md. */
hs_status hs_quant_spec_init(hs_quant_spec *s, hs_format f);

/* HS_OK if the spec is consistent (rule applies to the scale format, block valid, ...);
 * otherwise HS_ERR_INVALID_ARG with a message naming the offending field. */
hs_status hs_quant_spec_validate(const hs_quant_spec *s);

/* Does rule r apply to format f's scale format? (for listing rules in `halfs stats`) */
int hs_rule_applies(const hs_quant_spec *s, hs_rule r);

/* SR pre-scale (docs/FORMATS.md §2, Tseng et al. arXiv 2502.20586): 1 if quantizing with spec s
 * encodes the elements from x·(3/4)/X, so that dequantized values, and every GEMM product
 * computed from the codes of such an operand, must be multiplied by 4/3 (HS_SR_UNSCALE).
 * On when rounding is SR and sr_prescale is 1, or -1 (automatic) with E8M0 scales. */
#define HS_SR_PRESCALE 0.75f
#define HS_SR_UNSCALE (4.0f / 3.0f)
static inline int hs_spec_sr_prescaled(const hs_quant_spec *s) {
    return s->rounding == HS_ROUND_SR &&
           (s->sr_prescale == 1 || (s->sr_prescale == -1 && s->scale_fmt == HS_SCALE_E8M0));
}

/* ---- packed tensors ---- */
/* Allocate codes and scales for a rows × cols packed matrix of spec s (64-byte aligned). */
hs_status hs_packed_alloc(hs_packed *p, const hs_quant_spec *s, int64_t rows, int64_t cols);
void hs_packed_free(hs_packed *p);
/* Bytes of codes + scales that hs_packed_alloc would allocate. */
size_t hs_packed_bytes(const hs_quant_spec *s, int64_t rows, int64_t cols);

/* Quantize x (rows × cols, row stride ld) into out, which must have been allocated with
 * hs_packed_alloc for (rows, cols) if transpose = 0, (cols, rows) if transpose = 1.
 * out->spec is overwritten with *s. NaN/Inf inputs are data (docs/FORMATS.md §4). */
hs_status hs_quantize(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int transpose, hs_packed *out);

/* Quantize x both ways in one pass over it: out_row as hs_quantize(spec_row, x, ..., transpose
 * = 0, out_row) and out_col as hs_quantize(spec_col, x, ..., transpose = 1, out_col) produce
 * them, byte for byte (allocated as those calls need: rows × cols and cols × rows). Where no
 * fused kernel covers the pair (today: MXFP4-style E8M0 specs, block 16/32, RNE or SR, rules
 * ocp..halfs, no RHT, on AVX-512) it is exactly those two calls. */
hs_status hs_quantize_both(const hs_quant_spec *spec_row, const hs_quant_spec *spec_col,
                           const float *x, int64_t rows, int64_t cols, int64_t ld,
                           hs_packed *out_row, hs_packed *out_col);

/* Dequantize p into y (p->rows × p->cols, row stride ldy). With RHT, y stays rotated. */
hs_status hs_dequantize(const hs_packed *p, float *y, int64_t ldy);

/* Quantize-dequantize: y = Q(x) in x's own layout (rows × cols, row stride ldy), groups along
 * rows (transpose = 0) or columns (transpose = 1). With RHT the inverse transform is applied
 * after dequantizing, so Q(x) is what a GEMM on the rotated operands effectively sees.
 * y may equal x (in place) when ldy == ld. */
hs_status hs_qdq(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld,
                 int transpose, float *y, int64_t ldy);

/* The reference (scalar) quantizer, the contract that every SIMD kernel must match byte for
 * byte. Same arguments as hs_quantize. */
hs_status hs_quantize_ref(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                          int64_t ld, int transpose, hs_packed *out);
/* The reference (scalar) dequantizer, the contract of the SIMD ones (bit-identical floats).
 * Same arguments as hs_dequantize. */
hs_status hs_dequantize_ref(const hs_packed *p, float *y, int64_t ldy);

#ifdef __cplusplus
}
#endif
#endif
