/* gemm_dispatch.c: the GEMM entry points. hs_gemm_packed and hs_gemm_bf16 run the kernel the
 * dispatch table (dispatch.c) holds for this CPU; hs_gemm routes a pair of operands of any form
 * (fp32, bf16, packed) to the GEMM that fits (the rules are in halfs/gemm.h). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/gemm.h"
#include "halfs/rht.h"
#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

hs_status hs_gemm_packed(const hs_packed *a, const hs_packed *b, float beta, float *c,
                         int64_t ldc) {
    hs_e2m1_plan plan;
    hs_status st = hs_gemm_packed_check(a, b, c, ldc, &plan);
    if (st == HS_OK) return hs_kernels()->gemm_e2m1(&plan, a, b, beta, c, ldc);
    if (st != HS_ERR_UNSUPPORTED) return st;
    /* No direct FP4 kernel: unscaled bf16 or fp32 operands go straight to their GEMMs on the
     * stored values; everything else is dequantized to fp32 and multiplied by sgemm. */
    int64_t m = a->rows, n = b->rows, k = a->cols;
    const hs_quant_spec *sa = &a->spec, *sb = &b->spec;
    if (sa->elem == sb->elem && sa->scale_fmt == HS_SCALE_NONE &&
        sb->scale_fmt == HS_SCALE_NONE && a->tensor_scale == 1.0f && b->tensor_scale == 1.0f &&
        m > 0 && n > 0 && k > 0) {
        if (sa->elem == HS_ELEM_BF16)
            return hs_gemm_bf16(m, n, k, (const uint16_t *)a->codes, a->code_stride / 2,
                                (const uint16_t *)b->codes, b->code_stride / 2, beta, c, ldc);
        if (sa->elem == HS_ELEM_FP32)
            return hs_gemm_f32(0, 1, m, n, k, (const float *)a->codes, a->code_stride / 4,
                               (const float *)b->codes, b->code_stride / 4, beta, c, ldc);
    }
    return hs_gemm_packed_dequant(a, b, beta, c, ldc);
}

hs_status hs_gemm_packed_dequant(const hs_packed *a, const hs_packed *b, float beta, float *c,
                                 int64_t ldc) {
    int64_t m = a->rows, n = b->rows, k = a->cols;
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0) return hs_gemm_packed_dequant_ref(a, b, beta, c, ldc); // C = beta·C: no products
    float *fa, *fb;
    hs_status st = hs_gemm_dequant_operands(a, b, &fa, &fb);
    if (st != HS_OK) return st;
    st = hs_gemm_f32(0, 1, m, n, k, fa, k, fb, k, beta, c, ldc);
    free(fa);
    free(fb);
    return st;
}

hs_status hs_gemm_bf16(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                       const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m < 0 || n < 0 || k < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_bf16: negative size %lldx%lldx%lld",
                       (long long)m, (long long)n, (long long)k);
    if (m == 0 || n == 0) return HS_OK;
    if (!c || (k > 0 && (!a || !b))) return hs_fail(HS_ERR_INVALID_ARG, "gemm_bf16: null operand");
    if (ldc < n || (k > 0 && (lda < k || ldb < k)))
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_bf16: leading dimension too small");
    return hs_kernels()->gemm_bf16(m, n, k, a, lda, b, ldb, beta, c, ldc);
}

/* ---------------------------------------------------------------- hs_gemm */

struct hs_gemm_ctx {
    float *scratch[2]; /* fp32 forms of A and B on the fp32 path */
    size_t scratch_n[2];
};

hs_status hs_gemm_ctx_create(hs_gemm_ctx **out) {
    // The fp32 path threads its sgemm calls itself (hs_gemm_f32_tiled): OpenBLAS runs
    // single-threaded.
    hs_gemm_f32_blas_single_thread();
    *out = calloc(1, sizeof **out);
    return *out ? HS_OK : hs_fail(HS_ERR_NOMEM, "gemm: out of memory for a context");
}

void hs_gemm_ctx_free(hs_gemm_ctx *ctx) {
    if (!ctx) return;
    free(ctx->scratch[0]);
    free(ctx->scratch[1]);
    free(ctx);
}

static float *scratch(hs_gemm_ctx *ctx, int i, size_t n) {
    if (ctx->scratch_n[i] < n) {
        free(ctx->scratch[i]);
        ctx->scratch[i] = malloc(n * sizeof(float));
        ctx->scratch_n[i] = ctx->scratch[i] ? n : 0;
    }
    return ctx->scratch[i];
}

/* The fp32 form of a bf16 or packed operand (outer × k, unrotated) in scratch buffer i. */
static hs_status expand(hs_gemm_ctx *ctx, int i, int64_t outer, int64_t k, hs_gemm_operand *op) {
    if (op->form == HS_GEMM_BF16) {
        float *buf = scratch(ctx, i, (size_t)(outer * k));
        if (!buf) return hs_fail(HS_ERR_NOMEM, "gemm: out of memory for a bf16 operand");
        const uint16_t *h = op->h;
        int64_t ld = op->ld;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < outer; r++)
            for (int64_t j = 0; j < k; j++) {
                uint32_t u = (uint32_t)h[r * ld + j] << 16;
                memcpy(&buf[r * k + j], &u, sizeof u);
            }
        *op = hs_gemm_op_f32(buf, k, 0);
        return HS_OK;
    }
    const hs_packed *p = op->p;
    float *buf = scratch(ctx, i, (size_t)(p->rows * p->cols));
    if (!buf) return hs_fail(HS_ERR_NOMEM, "gemm: out of memory for a dequantized operand");
    hs_status st = hs_dequantize(p, buf, p->cols);
    if (st != HS_OK) return st;
    if (p->spec.rht) {
        // The packed values live in the rotated basis; the partner operand does not, so rotate
        // back (the transform is orthonormal: this is exactly what the GEMM would have seen).
        st = hs_rht_apply(buf, p->rows, p->cols, p->cols, p->spec.rht, p->spec.rht_seed, 0, 1);
        if (st != HS_OK) return st;
    }
    *op = hs_gemm_op_f32(buf, p->cols, 0);
    return HS_OK;
}

/* Whether hs_gemm_packed takes the pair directly: neither bf16, the same groups along k (its
 * kernels need them to line up), the same RHT or none. */
static int packed_pair(const hs_quant_spec *sa, const hs_quant_spec *sb) {
    int same_groups = sa->elem == sb->elem && sa->scale_fmt == sb->scale_fmt &&
                      sa->group == sb->group &&
                      (sa->group != HS_GROUP_BLOCK || sa->block == sb->block);
    return sa->elem != HS_ELEM_BF16 && sb->elem != HS_ELEM_BF16 && same_groups &&
           sa->rht == sb->rht && (!sa->rht || sa->rht_seed == sb->rht_seed);
}

static hs_status check_operand(const hs_gemm_operand *o, int64_t outer, int64_t k) {
    if (o->form == HS_GEMM_PACKED) {
        if (!o->p) return hs_fail(HS_ERR_INVALID_ARG, "gemm: packed operand without a tensor");
        if (o->p->rows != outer || o->p->cols != k)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "gemm: packed operand is %lldx%lld, the product needs %lldx%lld",
                           (long long)o->p->rows, (long long)o->p->cols, (long long)outer,
                           (long long)k);
    } else if (o->form == HS_GEMM_BF16) {
        if (outer > 0 && k > 0 && (!o->h || o->ld < k))
            return hs_fail(HS_ERR_INVALID_ARG, "gemm: bf16 operand null or ld < k");
    } else if (o->form != HS_GEMM_F32) {
        return hs_fail(HS_ERR_INVALID_ARG, "gemm: unknown operand form %d", (int)o->form);
    }
    return HS_OK;
}

hs_status hs_gemm(hs_gemm_ctx *ctx, int64_t m, int64_t n, int64_t k, const hs_gemm_operand *a,
                  const hs_gemm_operand *b, float beta, float *c, int64_t ldc, hs_gemm_time *t) {
    if (!ctx || !a || !b) return hs_fail(HS_ERR_INVALID_ARG, "gemm: null context or operand");
    if (m < 0 || n < 0 || k < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm: negative size %lldx%lldx%lld", (long long)m,
                       (long long)n, (long long)k);
    hs_status st;
    if ((st = check_operand(a, m, k)) != HS_OK || (st = check_operand(b, n, k)) != HS_OK)
        return st;
    double t0 = omp_get_wtime();
    if (a->form == HS_GEMM_BF16 && b->form == HS_GEMM_BF16) {
        st = hs_gemm_bf16(m, n, k, a->h, a->ld, b->h, b->ld, beta, c, ldc);
        if (t) t->gemm += omp_get_wtime() - t0;
        return st;
    }
    if (a->form == HS_GEMM_PACKED && b->form == HS_GEMM_PACKED) {
        const hs_packed *pa = a->p, *pb = b->p;
        const hs_quant_spec *sa = &pa->spec, *sb = &pb->spec;
        if (sa->elem == HS_ELEM_BF16 && sb->elem == HS_ELEM_BF16 && !sa->rht && !sb->rht) {
            st = hs_gemm_bf16(m, n, k, (const uint16_t *)pa->codes, pa->code_stride / 2,
                              (const uint16_t *)pb->codes, pb->code_stride / 2, beta, c, ldc);
            if (t) t->gemm += omp_get_wtime() - t0;
            return st;
        }
        if (packed_pair(sa, sb)) {
            st = hs_gemm_packed(pa, pb, beta, c, ldc);
            if (t) t->gemm += omp_get_wtime() - t0;
            return st;
        }
    }
    hs_gemm_operand fa = *a, fb = *b;
    if (fa.form != HS_GEMM_F32 && (st = expand(ctx, 0, m, k, &fa)) != HS_OK) return st;
    if (fb.form != HS_GEMM_F32 && (st = expand(ctx, 1, n, k, &fb)) != HS_OK) return st;
    double t1 = omp_get_wtime();
    if (t) t->expand += t1 - t0;
    st = hs_gemm_f32_tiled(fa.trans, !fb.trans, m, n, k, fa.f, fa.ld, fb.f, fb.ld, beta, c, ldc);
    if (t) t->gemm += omp_get_wtime() - t1;
    return st;
}
