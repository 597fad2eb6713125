/* bf16_probe_avx512.c: checks, once per process, that this CPU's vdpbf16ps computes the bf16
 * GEMM's contract (hs_bf16_pair_ref, ref/gemm_ref.c) on inputs chosen so that each plausible
 * reading of the instruction's specification gives a different result: the order of a pair's
 * two products, one rounding per product or one for both, subnormal inputs read as zero (DAZ),
 * tiny results flushed (FTZ) and x86's after-rounding tininess rule, and a tiny product fused
 * into the sum rather than flushed first. The dispatcher (dispatch.c) uses the AVX-512 bf16
 * GEMM only if every probe agrees. */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm_kernels.h"

static uint16_t bf(float f) { /* the bf16 of a value exact in bf16 */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

int hs_bf16_dp_matches_ref_avx512(void) {
    const struct {
        float acc;
        uint16_t a0, a1, b0, b1;
    } cs[] = {
        /* order: (1 − 1) + 2⁻³⁰ against (1 + 2⁻³⁰) − 1 */
        {1.0f, bf(0x1p-30f), bf(-1.0f), bf(1.0f), bf(1.0f)},
        /* two roundings: 1 + 0.75·2⁻²⁴ twice stays 1; one rounding of both gives 1 + 2⁻²³ */
        {1.0f, bf(0x1.8p-25f), bf(0x1.8p-25f), bf(1.0f), bf(1.0f)},
        /* DAZ: a subnormal bf16 times 2¹⁰⁰ */
        {0.0f, 0, 0x0001, 0, bf(0x1p100f)},
        /* FTZ: 2⁻⁷⁰ · 2⁻⁷⁰ = 2⁻¹⁴⁰ */
        {0.0f, 0, bf(0x1p-70f), 0, bf(0x1p-70f)},
        /* a tiny product fused: 2⁻¹²⁵ + 2⁻¹³⁰ is normal */
        {0x1p-125f, 0, bf(0x1p-65f), 0, bf(0x1p-65f)},
        /* tininess after rounding: 2⁻¹²⁶ − 0.75·2⁻¹⁵⁰ is tiny (flushed) ... */
        {0x1p-126f, 0, bf(-0x1.8p-76f), 0, bf(0x1p-75f)},
        /* ... and 2⁻¹²⁶ − 2⁻¹⁵² rounds to 2⁻¹²⁶ (kept) */
        {0x1p-126f, 0, bf(-0x1p-76f), 0, bf(0x1p-76f)},
        /* signs of zero: fma(−0, 1, +0), then −1 · 0 */
        {0.0f, bf(-1.0f), 0x8000, 0, bf(1.0f)},
        /* an ordinary pair */
        {0.3f, bf(1.5f), bf(-2.25f), bf(0.375f), bf(3.0f)},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        const __m512i wa = _mm512_set1_epi32((int)(cs[i].a0 | (uint32_t)cs[i].a1 << 16));
        const __m512i wb = _mm512_set1_epi32((int)(cs[i].b0 | (uint32_t)cs[i].b1 << 16));
        const float got = _mm512_cvtss_f32(
            _mm512_dpbf16_ps(_mm512_set1_ps(cs[i].acc), (__m512bh)wa, (__m512bh)wb));
        const float want = hs_bf16_pair_ref(cs[i].acc, cs[i].a0, cs[i].a1, cs[i].b0, cs[i].b1);
        if (memcmp(&got, &want, 4) != 0) return 0;
    }
    return 1;
}
