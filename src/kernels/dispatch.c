/* dispatch.c: picks the ISA level and the kernel behind the GEMM entry points (hs_gemm_packed,
 * hs_gemm_bf16); the quantizers walk per-level kernel lists (quant_dispatch.c).
 *
 * The CPU is examined once (CPUID + XGETBV, under pthread_once). One kernel table is filled with
 * the scalar reference kernels, then the slots the CPU supports are overridden (BLIS-style), so
 * every slot is always valid. HALFS_ISA=ref|avx2|avx512 forces a level; an unknown value, or a
 * level the CPU lacks, falls back to the best supported level not above the one asked for (the
 * library never prints). The tests switch levels with hs_isa_force.
 */
#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/gemm.h"
#include "halfs/quant.h"
#include "kernels/kernels.h"

static const char *const isa_names[HS_ISA_COUNT] = {"ref", "avx2", "avx512"};

static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

hs_isa hs_isa_detect(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return HS_ISA_REF;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return HS_ISA_REF;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return HS_ISA_REF; /* OS saves SSE + AVX state */
    if (__get_cpuid_max(0, NULL) < 7) return HS_ISA_REF;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1, vbmi = (c >> 1) & 1, vnni = (c >> 11) & 1;
    unsigned int a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    int bf16 = (a1 >> 5) & 1;
    (void)b1;
    (void)c1;
    (void)d1;
    if (!(avx2 && fma && f16c)) return HS_ISA_REF;
    /* AVX-512 needs the OS to save opmask + upper zmm state (XCR0 bits 5-7). */
    if ((xcr0 & 0xE0) == 0xE0 && avx512f && avx512dq && avx512bw && avx512vl && vbmi && vnni &&
        bf16)
        return HS_ISA_AVX512;
    return HS_ISA_AVX2;
}

static hs_kernel_table tables[HS_ISA_COUNT];
static const hs_kernel_table *current;
static hs_isa detected;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
    for (int i = 0; i < HS_ISA_COUNT; i++) {
        hs_kernel_table *t = &tables[i];
        t->isa = (hs_isa)i;
        t->name = isa_names[i];
        t->gemm_e2m1 = hs_gemm_e2m1_ref;
        t->gemm_bf16 = hs_gemm_bf16_ref;
        t->bf16_tile = hs_bf16_tile_ref;
        if (i >= HS_ISA_AVX2) {
            t->gemm_e2m1 = hs_gemm_e2m1_avx2;
            t->gemm_bf16 = hs_gemm_bf16_avx2;
        }
        if (i >= HS_ISA_AVX512) {
            t->gemm_e2m1 = hs_gemm_e2m1_avx512;
            t->gemm_bf16 = hs_gemm_bf16_avx512;
            t->bf16_tile = hs_bf16_tile_avx512;
        }
    }
}

static void init_once(void) {
    fill_tables();
    detected = hs_isa_detect();
    hs_isa want = detected;
    const char *env = getenv("HALFS_ISA");
    if (env && *env) {
        for (int i = 0; i < HS_ISA_COUNT; i++)
            if (!strcmp(env, isa_names[i])) want = (hs_isa)i;
    }
    if (want > detected) want = detected;
    __atomic_store_n(&current, &tables[want], __ATOMIC_RELEASE);
}

const hs_kernel_table *hs_kernels(void) {
    pthread_once(&once, init_once);
    return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

hs_isa hs_isa_force(hs_isa isa) {
    pthread_once(&once, init_once);
    if ((int)isa < 0 || isa >= HS_ISA_COUNT) isa = HS_ISA_REF;
    if (isa > detected) isa = detected;
    __atomic_store_n(&current, &tables[isa], __ATOMIC_RELEASE);
    return isa;
}

const char *hs_isa_name(void) { return hs_kernels()->name; }

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
    return hs_gemm_packed_dequant(a, b, beta, c, ldc, 1);
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
