/* gemm_ref.c: the scalar reference of the packed GEMM, C[M,N] = A[M,K] · B[N,K]ᵀ (+ beta·C).
 *
 * This file is the contract every SIMD GEMM kernel matches bit for bit (kernels.h states the
 * formula). For two E2M1 operands whose scale groups line up along K:
 *   - each element is decoded to its doubled value (hs_e2m1_doubled: {0,1,2,3,4,6,8,12}, signed),
 *     so a product of two elements times 4 is an integer and a group's dot product is an exact
 *     int32 (|isum| ≤ 144 · group length);
 *   - the group's integer sum is scaled in fp32, t = (float)isum · sb, then accumulated across
 *     groups in K order with one rounding per group, acc = fmaf(t, sa, acc);
 *   - at the end v = acc · post, post = 0.25 · pa · pb / (tsa · tsb) (undo the doubling, the SR
 *     3/4 pre-scale and the NVFP4 tensor scales), and C = v or fmaf(beta, C, v).
 * Why this order: with E8M0 scales t is exact (isum times a power of two) and so is sa·t, so
 * on FP4 values times power-of-two scales the only rounding is the fp32 accumulation, which is
 * exact whenever the partial sums fit 24 bits: the GEMM is then exact. For UE4M3 scales
 * isum · sb has ≤ 12 + 4 significant bits and is exact too.
 * Every other operand pair (FP8, INT4, BF16, mixed) is dequantized to fp32 and multiplied (the
 * generic fallback), after the same checks: K equal, group lengths equal, RHT equal.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "kernels/kernels.h"

/* Group length along K of a packed operand (its rows are the K axis). */
static int64_t group_len(const hs_packed *p) {
    if (p->spec.group == HS_GROUP_BLOCK && p->spec.block > 0 && p->spec.block < p->cols)
        return p->spec.block;
    return p->cols;
}

static int is_e2m1_scaled(const hs_packed *p) {
    return p->spec.elem == HS_ELEM_E2M1 &&
           (p->spec.scale_fmt == HS_SCALE_E8M0 || p->spec.scale_fmt == HS_SCALE_UE4M3 ||
            p->spec.scale_fmt == HS_SCALE_FP32);
}

double hs_packed_prescale_factor(const hs_packed *p) {
    /* The packed scale cannot hold the 4/3 (E8M0 is a power of two): the consumer applies it,
     * with the same float constant the dequantizer uses. */
    return hs_spec_sr_prescaled(&p->spec) ? (double)HS_SR_UNSCALE : 1.0;
}

float hs_packed_scale_f32(const hs_packed *p, int64_t r, int64_t g) {
    int64_t i = r * p->groups_per_row + g;
    switch (p->spec.scale_fmt) {
    case HS_SCALE_E8M0:
        return hs_e8m0_decode(((const uint8_t *)p->scales)[i]);
    case HS_SCALE_UE4M3:
        return hs_ue4m3_decode(((const uint8_t *)p->scales)[i]);
    case HS_SCALE_FP32:
        return ((const float *)p->scales)[i];
    default:
        return 1.0f;
    }
}

hs_status hs_gemm_packed_check(const hs_packed *a, const hs_packed *b, const float *c,
                               int64_t ldc, hs_e2m1_plan *plan) {
    if (!a || !b) return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: null operand");
    if (a->rows < 0 || b->rows < 0 || a->cols < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: negative shape");
    if (a->cols != b->cols)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "gemm_packed: K differs: A is %lldx%lld, B is %lldx%lld (need B as N x K)",
                       (long long)a->rows, (long long)a->cols, (long long)b->rows,
                       (long long)b->cols);
    int64_t m = a->rows, n = b->rows, k = a->cols;
    if (m > 0 && n > 0) {
        if (!c) return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: null C");
        if (ldc < n)
            return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: ldc %lld < N %lld", (long long)ldc,
                           (long long)n);
        if (k > 0 && (!a->codes || !b->codes))
            return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: operand without codes");
    }
    int a_scaled = a->spec.scale_fmt != HS_SCALE_NONE, b_scaled = b->spec.scale_fmt != HS_SCALE_NONE;
    if (a_scaled && b_scaled && group_len(a) != group_len(b))
        return hs_fail(HS_ERR_INVALID_ARG,
                       "gemm_packed: scale groups differ along K (%lld vs %lld elements)",
                       (long long)group_len(a), (long long)group_len(b));
    if (a->spec.rht != b->spec.rht || (a->spec.rht && a->spec.rht_seed != b->spec.rht_seed))
        return hs_fail(HS_ERR_INVALID_ARG,
                       "gemm_packed: operands rotated differently (RHT %d vs %d, or other seed)",
                       (int)a->spec.rht, (int)b->spec.rht);
    if (!is_e2m1_scaled(a) || !is_e2m1_scaled(b)) return HS_ERR_UNSUPPORTED;
    int64_t glen = group_len(a);
    /* |isum| ≤ 144·glen must fit int32 (the SIMD kernels accumulate a group in int32 lanes). */
    if (glen > INT32_MAX / 144)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: group of %lld elements is too long",
                       (long long)glen);
    if (k > 0 && (!a->scales || !b->scales) && m > 0 && n > 0)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: operand without scales");
    int64_t groups = glen > 0 ? (k + glen - 1) / glen : 1;
    if (k > 0 && m > 0 && n > 0 && (a->groups_per_row < groups || b->groups_per_row < groups))
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_packed: groups_per_row inconsistent with K");
    if (plan) {
        plan->m = m;
        plan->n = n;
        plan->k = k;
        plan->glen = glen;
        plan->groups = groups;
        double post = 0.25 * hs_packed_prescale_factor(a) * hs_packed_prescale_factor(b) /
                      ((double)a->tensor_scale * (double)b->tensor_scale);
        plan->post = (float)post;
    }
    return HS_OK;
}

/* Decode row r of an E2M1 operand into doubled int8 values. */
static void decode_row(const hs_packed *p, int64_t r, int8_t *out /* [cols] */) {
    const uint8_t *row = p->codes + r * p->code_stride;
    for (int64_t k = 0; k < p->cols; k++) {
        uint8_t byte = row[k >> 1];
        out[k] = hs_e2m1_doubled[(k & 1) ? (byte >> 4) : (byte & 0xF)];
    }
}

hs_status hs_gemm_e2m1_ref(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                           float beta, float *c, int64_t ldc) {
    int64_t m = plan->m, n = plan->n, k = plan->k, glen = plan->glen, groups = plan->groups;
    if (m == 0 || n == 0) return HS_OK;
    int8_t *da = malloc((size_t)(m * k + 1)); /* (M, K) doubled values of A */
    int8_t *db = malloc((size_t)(n * k + 1)); /* (N, K) doubled values of B */
    if (!da || !db) {
        free(da);
        free(db);
        return hs_fail(HS_ERR_NOMEM, "gemm_packed_ref: out of memory");
    }
    for (int64_t i = 0; i < m; i++) decode_row(a, i, da + i * k);
    for (int64_t j = 0; j < n; j++) decode_row(b, j, db + j * k);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t g = 0; k > 0 && g < groups; g++) {
                int64_t k0 = g * glen, k1 = k0 + glen < k ? k0 + glen : k;
                int32_t isum = 0;
                for (int64_t t = k0; t < k1; t++)
                    isum += (int32_t)da[i * k + t] * (int32_t)db[j * k + t];
                float t = (float)isum * hs_packed_scale_f32(b, j, g);
                acc = fmaf(t, hs_packed_scale_f32(a, i, g), acc);
            }
            float v = acc * plan->post;
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? v : fmaf(beta, *cij, v);
        }
    }
    free(da);
    free(db);
    return HS_OK;
}

hs_status hs_gemm_dequant_operands(const hs_packed *a, const hs_packed *b, float **fa, float **fb) {
    int64_t m = a->rows, n = b->rows, k = a->cols;
    *fa = malloc((size_t)(m * k + 1) * sizeof(float));
    *fb = malloc((size_t)(n * k + 1) * sizeof(float));
    hs_status st = HS_OK;
    if (!*fa || !*fb)
        st = hs_fail(HS_ERR_NOMEM, "gemm_packed: out of memory dequantizing operands");
    else if (k > 0 && (st = hs_dequantize(a, *fa, k)) == HS_OK)
        st = hs_dequantize(b, *fb, k);
    if (st != HS_OK) {
        free(*fa);
        free(*fb);
        *fa = *fb = NULL;
    }
    return st;
}

hs_status hs_gemm_packed_dequant_ref(const hs_packed *a, const hs_packed *b, float beta, float *c,
                                     int64_t ldc) {
    int64_t m = a->rows, n = b->rows, k = a->cols;
    if (m == 0 || n == 0) return HS_OK;
    float *fa, *fb;
    hs_status st = hs_gemm_dequant_operands(a, b, &fa, &fb);
    if (st != HS_OK) return st;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t t = 0; t < k; t++) acc = fmaf(fa[i * k + t], fb[j * k + t], acc);
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? acc : fmaf(beta, *cij, acc);
        }
    free(fa);
    free(fb);
    return HS_OK;
}

hs_status hs_gemm_packed_ref(const hs_packed *a, const hs_packed *b, float beta, float *c,
                             int64_t ldc) {
    hs_e2m1_plan plan;
    hs_status st = hs_gemm_packed_check(a, b, c, ldc, &plan);
    if (st == HS_ERR_UNSUPPORTED) return hs_gemm_packed_dequant_ref(a, b, beta, c, ldc);
    if (st != HS_OK) return st;
    return hs_gemm_e2m1_ref(&plan, a, b, beta, c, ldc);
}

/* The bf16 GEMM's per-element contract is the sequence of AVX512-BF16 `vdpbf16ps` (Intel SDM):
 * over the k-pairs (2s, 2s + 1) in increasing s, starting from +0,
 *   acc = FTZ(fma(a[2s+1], b[2s+1], acc));  acc = FTZ(fma(a[2s], b[2s], acc))
 * where a bf16 input that is subnormal counts as a zero of its sign (DAZ), each fma rounds to
 * nearest even, and FTZ replaces a result that is tiny by a zero of its sign; an odd K's last
 * pair has a zero in place of element K. Then C = acc, or fmaf(beta, C_old, acc) without any
 * flushing. "Tiny" is x86's rule (MXCSR.FTZ): the result rounded to 24 significant bits with an
 * unbounded exponent is below 2⁻¹²⁶ in magnitude. fmaf gives the result rounded with gradual
 * underflow; the two roundings differ in their verdict only when that is ±2⁻¹²⁶, and then the
 * exact value decides (it is exact in double there: see bf16_ftz_fma). Every ISA level computes
 * this sequence (AVX-512 with the instruction, AVX2 with fp32 FMAs under MXCSR.FTZ on operands
 * paired in this order), so bf16 products have the same bits on every x86 CPU. */
static float bf16_daz(uint16_t h) {
    if ((h & 0x7F80) == 0) h &= 0x8000; /* zero or subnormal: a zero of its sign */
    return hs_bf16_decode(h);
}

static float bf16_ftz_fma(float a, float b, float acc) {
    float r = fmaf(a, b, acc);
    float m = fabsf(r);
    if (m > FLT_MIN || !(m == m)) return r; /* normal, infinite or NaN */
    if (m == FLT_MIN) {
        /* |exact| ≥ 2⁻¹²⁶ − 2⁻¹⁵¹ rounds (24 bits, unbounded exponent) to 2⁻¹²⁶: not tiny. The sum
         * is exact in double or, if not, falls on the same side of that threshold (a, b have 8
         * significant bits, acc is 0 or normal). */
        double e = fabs((double)a * (double)b + (double)acc);
        if (e >= 0x1p-126 - 0x1p-151) return r;
    }
    return copysignf(0.0f, r);
}

float hs_bf16_pair_ref(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1) {
    acc = bf16_ftz_fma(bf16_daz(a1), bf16_daz(b1), acc);
    return bf16_ftz_fma(bf16_daz(a0), bf16_daz(b0), acc);
}

hs_status hs_gemm_bf16_ref(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            const uint16_t *ar = a + i * lda, *br = b + j * ldb;
            float acc = 0.0f;
            for (int64_t t = 0; t < k; t += 2)
                acc = hs_bf16_pair_ref(acc, ar[t], t + 1 < k ? ar[t + 1] : 0, br[t],
                                       t + 1 < k ? br[t + 1] : 0);
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? acc : fmaf(beta, *cij, acc);
        }
    return HS_OK;
}

void hs_gemm_bf16v_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t t = 0; t < k; t += 2) {
                acc = t + 1 < k ? bf16_ftz_fma(a[i * lda + t + 1], b[(t + 1) * ldb + j], acc)
                                : bf16_ftz_fma(0.0f, 0.0f, acc);
                acc = bf16_ftz_fma(a[i * lda + t], b[t * ldb + j], acc);
            }
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? acc : fmaf(beta, *cij, acc);
        }
}
