/* convert_bf16_ref.c: the scalar reference of the bf16 operand conversion (fp32 → bf16, round to
 * nearest even, NaN kept as a quiet NaN: the same bits as hs_bf16_encode), one tile of at most
 * 32 rows × 16 columns at a time, stored as is and/or transposed. The trainer's `bf16` recipe converts
 * every GEMM operand this way (src/nn/linear.c); the AVX-512 twin is
 * kernels/avx512/convert_bf16_avx512.c, equal to this bit for bit (tests/test_convert_bf16.c).
 * hs_bf16v_tile_ref is the same conversion into fp32 containers for hs_gemm_bf16v (attention).
 */
#include <string.h>

#include "kernels/kernels.h"

static uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); // quiet NaN
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The tile's bf16 values into any of: dr, dt (as is / transposed, bf16 bits) and vr, vt (as is /
 * transposed, fp32 containers with a subnormal result read as a zero of its sign). */
static void tile_ref(uint16_t *dr, uint16_t *dt, float *vr, float *vt, const float *x, int64_t rows,
                     int64_t cols, int64_t ld, int64_t r0, int64_t c0) {
    int64_t r1 = r0 + 32 < rows ? r0 + 32 : rows, c1 = c0 + 16 < cols ? c0 + 16 : cols;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++) {
            uint16_t h = bf16_rne(x[r * ld + c]);
            if (dr) dr[r * cols + c] = h;
            if (dt) dt[c * rows + r] = h;
            if (!vr && !vt) continue;
            if ((h & 0x7F80u) == 0) h &= 0x8000u; /* a subnormal bf16 reads as zero */
            uint32_t u = (uint32_t)h << 16;
            float v;
            memcpy(&v, &u, sizeof v);
            if (vr) vr[r * cols + c] = v;
            if (vt) vt[c * rows + r] = v;
        }
}

void hs_bf16_tile_ref(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int64_t r0, int64_t c0) {
    tile_ref(dr, dt, NULL, NULL, x, rows, cols, ld, r0, c0);
}

void hs_bf16v_tile_ref(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                       int64_t ld, int64_t r0, int64_t c0) {
    tile_ref(NULL, NULL, dr, dt, x, rows, cols, ld, r0, c0);
}
