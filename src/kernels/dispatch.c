/* dispatch.c: picks the ISA level (CPUID, or HALFS_ISA) and fills the kernel table that the GEMM
 * entry points (gemm_dispatch.c) read; the quantizers walk per-level kernel lists
 * (quant_dispatch.c) at the level chosen here.
 *
 * The CPU is examined once (CPUID + XGETBV, under pthread_once). One kernel table is filled with
 * the scalar reference kernels, then the slots the CPU supports are overridden (BLIS-style), so
 * every slot is always valid. The AVX-512 bf16 GEMM takes its slot only if the CPU's vdpbf16ps
 * passes hs_bf16_dp_matches_ref_avx512 (else the AVX2 one serves that level); attention's bf16
 * products (gemm_bf16v) are FMAs on fp32 containers and need no such check. HALFS_ISA=ref|avx2|avx512
 * forces a level; an unknown value, or a level the CPU lacks, falls back to the best supported
 * level not above the one asked for (the library never prints). The tests switch levels with
 * hs_isa_force.
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

/* The AVX-512 bf16 GEMM only where vdpbf16ps computes the bf16 contract (gemm_kernels.h). */
static int avx512_bf16_ok;

static void fill_tables(void) {
    for (int i = 0; i < HS_ISA_COUNT; i++) {
        hs_kernel_table *t = &tables[i];
        t->isa = (hs_isa)i;
        t->name = isa_names[i];
        t->gemm_e2m1 = hs_gemm_e2m1_ref;
        t->gemm_bf16 = hs_gemm_bf16_ref;
        t->bf16_tile = hs_bf16_tile_ref;
        t->gemm_bf16v = hs_gemm_bf16v_ref;
        t->bf16v_tile = hs_bf16v_tile_ref;
        if (i >= HS_ISA_AVX2) {
            t->gemm_e2m1 = hs_gemm_e2m1_avx2;
            t->gemm_bf16 = hs_gemm_bf16_avx2;
            t->bf16_tile = hs_bf16_tile_avx2;
            t->gemm_bf16v = hs_gemm_bf16v_avx2;
            t->bf16v_tile = hs_bf16v_tile_avx2;
        }
        if (i >= HS_ISA_AVX512) {
            t->gemm_e2m1 = hs_gemm_e2m1_avx512;
            if (avx512_bf16_ok) t->gemm_bf16 = hs_gemm_bf16_avx512;
            t->bf16_tile = hs_bf16_tile_avx512;
            t->gemm_bf16v = hs_gemm_bf16v_avx512;
            t->bf16v_tile = hs_bf16v_tile_avx512;
        }
    }
}

static void init_once(void) {
    detected = hs_isa_detect();
    avx512_bf16_ok = detected >= HS_ISA_AVX512 && hs_bf16_dp_matches_ref_avx512();
    fill_tables();
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
