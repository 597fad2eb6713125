/* dequant_e2m1_avx512.c: AVX-512 dequantizer for E2M1 (FP4) packed tensors with E8M0, UE4M3
 * (NVFP4: divided by the tensor scale) or FP32 scales, 1D groups or 2D tiles (the tile scale is
 * stored on each row). Bit-identical to hs_dequantize_ref: every element is y = fl(v · m), then
 * fl(y · 4/3) for an SR pre-scaled tensor, with v the code's E2M1 value and m exactly the
 * reference's hs_scale_dec_mul of the group's stored scale (byte scales go through a 256-entry
 * table filled by hs_scale_dec_mul itself, so NaN scales, subnormal E8M0 and the division by the
 * NVFP4 tensor scale are the reference's floats). The same two multiplications in the same
 * order, never fused, so the results are the same bits.
 *
 * Data path: 8 code bytes (16 elements) are split into nibbles (low nibble = even element),
 * interleaved with one byte unpack, widened to dwords and mapped to their values with one
 * vpermps from a 16-entry table; the group multiplier is a broadcast when the 16 elements lie in
 * one group (block groups of a multiple of 16, or one group per row), else built per element.
 * Row tails are masked stores; the code rows are padded to 64 bytes, so the 8-byte loads stay
 * inside the row. OpenMP over rows (like the reference). Everything else (other elements,
 * unscaled formats, per-tensor groups, malformed tensors, errors) returns HS_ERR_UNSUPPORTED and
 * the dispatcher calls the reference.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/scale_rules.h"
#include "halfs/codec.h"
#include "kernels/quant_kernels.h"

hs_status hs_dequantize_e2m1_avx512(const hs_packed *p, float *y, int64_t ldy) {
    if (!p || !y || hs_quant_spec_validate(&p->spec) != HS_OK) return HS_ERR_UNSUPPORTED;
    const hs_quant_spec *s = &p->spec;
    const int64_t R = p->rows, C = p->cols;
    if (s->elem != HS_ELEM_E2M1) return HS_ERR_UNSUPPORTED;
    if (s->scale_fmt != HS_SCALE_E8M0 && s->scale_fmt != HS_SCALE_UE4M3 && s->scale_fmt != HS_SCALE_FP32)
        return HS_ERR_UNSUPPORTED;
    if (s->group != HS_GROUP_BLOCK && s->group != HS_GROUP_ROW) return HS_ERR_UNSUPPORTED;
    if (R < 1 || C < 1 || ldy < C || !p->codes || !p->scales) return HS_ERR_UNSUPPORTED;
    const int64_t W = s->group == HS_GROUP_BLOCK ? s->block : C;
    const int64_t gpr = (C + W - 1) / W;
    if (W < 1 || p->groups_per_row != gpr || p->code_stride != hs_code_stride_bits(4, C))
        return HS_ERR_UNSUPPORTED;

    /* m of every byte scale, by the reference's own function */
    float mtab[256];
    if (s->scale_fmt != HS_SCALE_FP32)
        for (int b = 0; b < 256; b++) mtab[b] = hs_scale_dec_mul(s->scale_fmt, (uint32_t)b, p->tensor_scale);
    const int fp32 = s->scale_fmt == HS_SCALE_FP32;
    const int prescale = hs_spec_sr_prescaled(s);
    /* the E2M1 value of each code, hs_e2m1_decode's floats */
    float vtab[16];
    for (int c = 0; c < 16; c++) vtab[c] = hs_e2m1_decode((uint8_t)c);
    const __m512 vals = _mm512_loadu_ps(vtab);
    const __m512 unscale = _mm512_set1_ps(HS_SR_UNSCALE);
    const int aligned = W % 16 == 0; /* every run of 16 elements from a multiple of 16 is in one group */

#pragma omp parallel for schedule(static) if (R * C > (1 << 15))
    for (int64_t r = 0; r < R; r++) {
        const uint8_t *row = p->codes + r * p->code_stride;
        const uint8_t *sb = (const uint8_t *)p->scales + r * gpr;
        const float *sf = (const float *)p->scales + r * gpr;
        float *yr = y + r * ldy;
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(row + c0 / 2));
            __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
            __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
            __m512i idx = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)); /* element order */
            __m512 v = _mm512_permutexvar_ps(idx, vals);
            __m512 m;
            if (aligned || c0 / W == (c0 + 15) / W) {
                int64_t g = c0 / W;
                m = _mm512_set1_ps(fp32 ? sf[g] : mtab[sb[g]]);
            } else {
                float mm[16];
                for (int j = 0; j < 16; j++) {
                    int64_t g = (c0 + j) / W;
                    if (g >= gpr) g = gpr - 1; /* past the row's end: not stored */
                    mm[j] = fp32 ? sf[g] : mtab[sb[g]];
                }
                m = _mm512_loadu_ps(mm);
            }
            __m512 out = _mm512_mul_ps(v, m);
            if (prescale) out = _mm512_mul_ps(out, unscale);
            if (c0 + 16 <= C) _mm512_storeu_ps(yr + c0, out);
            else _mm512_mask_storeu_ps(yr + c0, (__mmask16)((1u << (C - c0)) - 1), out);
        }
    }
    return HS_OK;
}
