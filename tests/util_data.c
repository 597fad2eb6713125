/* util_data.c: deterministic random test data shared by the kernel test programs (util.h):
 * a SplitMix64 stream and matrices of the kinds that stress quantizers (heavy tails, special
 * values, subnormal and huge magnitudes, exact grid values where every rounding is a tie). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "util.h"

uint64_t util_rand_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double util_rand_unif(uint64_t *s) { return (double)(util_rand_next(s) >> 11) * 0x1p-53; }

void util_fill_kind(float *x, int64_t n, int kind, uint64_t *s) {
    for (int64_t i = 0; i < n; i++) {
        double u = util_rand_unif(s);
        double g = sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * util_rand_unif(s));
        double v = g * (util_rand_unif(s) < 0.05 ? 20.0 : 1.0);
        switch (kind) {
        case 1: {
            uint64_t r = util_rand_next(s) % 100;
            if (r == 0) v = NAN;
            else if (r == 1) v = INFINITY;
            else if (r == 2) v = -INFINITY;
            else if (r < 12) v = 0.0;
            else if (r < 14) v = -0.0;
            break;
        }
        case 2: v *= 1e-39; break; /* subnormal floats */
        case 3: v *= 1e37; break;  /* near FLT_MAX / 6 */
        case 4: {                  /* multiples of 1/8 up to ±2, times 2^-4..2^4: ties everywhere */
            int k = (int)(util_rand_next(s) % 33) - 16;
            v = (double)k * 0.125 * ldexp(1.0, (int)(util_rand_next(s) % 9) - 4);
            break;
        }
        default: break;
        }
        x[i] = (float)v;
    }
    if (n > 64) /* an all-zero stretch (all-zero groups) */
        for (int64_t i = n / 3; i < n / 3 + 40; i++) x[i] = 0.0f;
}
