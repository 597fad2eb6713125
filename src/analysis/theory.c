/* theory.c: MSE of E2M1 / INT4 quantization for Gaussian, Laplace and Student-t inputs
 * (halfs/theory.h, docs/FORMATS.md §11). It sits in src/analysis, above src/kernels, because the
 * finite-group estimates run the dispatched quantizer (docs/ARCHITECTURE.md, "Layers").
 *
 * Infinite group. With clip α mapped to the largest code g_m (E2M1: 6, INT4: 7) the scale is
 * s = α/g_m and round-to-nearest sends x ∈ [s·b_{k−1}, s·b_k) to s·g_k, where b_k are the
 * midpoints between grid magnitudes; everything beyond s·b_{m−1} saturates to s·g_m. So
 *     MSE(α) = 2 Σ_k ∫_cell_k (x − s·g_k)² p(x) dx        (p symmetric)
 * Each finite cell is integrated by adaptive 10-point Gauss–Legendre (the integrand is analytic
 * inside a cell; the only kinks, e.g. Laplace's at 0, sit on cell edges). The saturation tail
 * [s·b_{m−1}, ∞) is integrated octave by octave up to a far point X, and for Student-t the rest
 * is added in closed form from the density's power-law asymptote p(x) ≈ A·x^−(ν+1), which is
 * exact to ~1e-16 relative at that X. Ties of the rounding rule have probability zero here.
 *
 * Finite groups: draws are pure functions of (seed, index) (halfs/rng.h), the rules run through
 * the library's own quantizer (hs_quantize + hs_dequantize, one scale per group), and the
 * per-group continuous optimum is found exactly by sweeping the breakpoints of the piecewise
 * quadratic error. Sums over groups are taken serially in group order, so results do not depend
 * on the number of OpenMP threads.
 */
#include "halfs/theory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "halfs/rng.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---------------------------------------------------------------- element grids */

/* Non-negative grid magnitudes g[0..m] (g[0] = 0) and the decision points b[k] between g[k]
 * and g[k+1]. */
typedef struct {
    int m;
    double g[8];
    double b[7];
} grid;

static hs_status grid_init(hs_elem e, grid *gr) {
    if (e == HS_ELEM_E2M1) {
        /* The library's own decoder defines the grid, so theory and codec cannot drift apart. */
        gr->m = 7;
        for (int k = 0; k <= 7; k++) gr->g[k] = hs_e2m1_decode((uint8_t)k);
    } else if (e == HS_ELEM_INT4) {
        gr->m = 7;
        for (int k = 0; k <= 7; k++) gr->g[k] = k;
    } else {
        return hs_fail(HS_ERR_INVALID_ARG, "theory supports elements e2m1 and int4, not %s",
                       hs_elem_name(e));
    }
    for (int k = 0; k < gr->m; k++) gr->b[k] = 0.5 * (gr->g[k] + gr->g[k + 1]);
    return HS_OK;
}

/* Round-to-nearest magnitude on the grid (saturating); ties go up, which does not change the
 * error (both neighbours are equally far). */
static double grid_nearest(const grid *gr, double a) {
    int k = 0;
    while (k < gr->m && a >= gr->b[k]) k++;
    return gr->g[k];
}

/* The library codec's round trip of v (already divided by its scale), RNE. */
static double codec_rne(hs_elem e, float v) {
    if (e == HS_ELEM_E2M1) return hs_e2m1_decode(hs_e2m1_encode(v, HS_ROUND_RNE, 0.0f));
    return (double)hs_int4_encode(v, HS_ROUND_RNE, 0.0f);
}

/* ---------------------------------------------------------------- distributions */

hs_status hs_dist_validate(const hs_dist *d) {
    if (!d) return hs_fail(HS_ERR_INVALID_ARG, "distribution is NULL");
    switch (d->kind) {
    case HS_DIST_GAUSS:
    case HS_DIST_LAPLACE:
        return HS_OK;
    case HS_DIST_STUDENT_T:
        /* ν ≤ 2 has infinite variance, so "unit variance" is meaningless. */
        if (!(d->nu > 2.0 && d->nu <= 1e6))
            return hs_fail(HS_ERR_INVALID_ARG,
                           "Student-t needs 2 < nu <= 1e6 (finite variance), got %g", d->nu);
        return HS_OK;
    default:
        return hs_fail(HS_ERR_INVALID_ARG, "unknown distribution kind %d", (int)d->kind);
    }
}

hs_status hs_dist_parse(const char *name, hs_dist *out) {
    if (!name || !out) return hs_fail(HS_ERR_INVALID_ARG, "distribution name is NULL");
    hs_dist d = {HS_DIST_GAUSS, 0.0};
    if (!strcmp(name, "gauss") || !strcmp(name, "gaussian") || !strcmp(name, "normal")) {
        d.kind = HS_DIST_GAUSS;
    } else if (!strcmp(name, "laplace")) {
        d.kind = HS_DIST_LAPLACE;
    } else if (!strncmp(name, "t:", 2)) {
        char *end = NULL;
        double nu = strtod(name + 2, &end);
        if (end == name + 2 || *end != '\0' || !isfinite(nu))
            return hs_fail(HS_ERR_INVALID_ARG, "distribution '%s': 't:NU' needs a number NU",
                           name);
        d.kind = HS_DIST_STUDENT_T;
        d.nu = nu;
    } else {
        return hs_fail(HS_ERR_INVALID_ARG,
                       "unknown distribution '%s' (expected gauss, laplace or t:NU)", name);
    }
    hs_status st = hs_dist_validate(&d);
    if (st != HS_OK) return st;
    *out = d;
    return HS_OK;
}

void hs_dist_name(const hs_dist *d, char *buf, size_t size) {
    if (!buf || size == 0) return;
    if (!d) {
        snprintf(buf, size, "?");
        return;
    }
    switch (d->kind) {
    case HS_DIST_GAUSS: snprintf(buf, size, "gauss"); break;
    case HS_DIST_LAPLACE: snprintf(buf, size, "laplace"); break;
    case HS_DIST_STUDENT_T: snprintf(buf, size, "t:%g", d->nu); break;
    default: snprintf(buf, size, "?"); break;
    }
}

/* Precomputed constants of a unit-variance density. */
typedef struct {
    hs_dist_kind kind;
    double nu;
    double logc;  /* log of the normalising constant of p */
    double loga;  /* Student-t: log A of the asymptote p(x) ≈ A·x^−(ν+1) */
} dctx;

static void dctx_init(const hs_dist *d, dctx *c) {
    c->kind = d->kind;
    c->nu = d->nu;
    c->loga = 0.0;
    switch (d->kind) {
    case HS_DIST_GAUSS: c->logc = -0.5 * log(2.0 * M_PI); break;
    case HS_DIST_LAPLACE: c->logc = -0.5 * log(2.0); break; /* 1/(2b), b = 1/sqrt(2) */
    default: {
        /* X = k·T, k = sqrt((ν−2)/ν): p_X(x) = (1/k)·K·(1 + x²/(ν−2))^−(ν+1)/2 with
         * K = Γ((ν+1)/2) / (Γ(ν/2)·sqrt(νπ)). */
        double nu = d->nu;
        double logk = 0.5 * log((nu - 2.0) / nu);
        double logK = lgamma(0.5 * (nu + 1.0)) - lgamma(0.5 * nu) - 0.5 * log(nu * M_PI);
        c->logc = logK - logk;
        c->loga = c->logc + 0.5 * (nu + 1.0) * log(nu - 2.0);
        break;
    }
    }
}

static double dctx_pdf(const dctx *c, double x) {
    double ax = fabs(x);
    switch (c->kind) {
    case HS_DIST_GAUSS: return exp(c->logc - 0.5 * ax * ax);
    case HS_DIST_LAPLACE: return exp(c->logc - sqrt(2.0) * ax);
    default: return exp(c->logc - 0.5 * (c->nu + 1.0) * log1p(ax * ax / (c->nu - 2.0)));
    }
}

double hs_dist_pdf(const hs_dist *d, double x) {
    if (hs_dist_validate(d) != HS_OK) return NAN;
    dctx c;
    dctx_init(d, &c);
    return dctx_pdf(&c, x);
}

/* A uniform double in (0, 1) from 64 random bits (53 of them; never exactly 0). */
static double u01(uint64_t bits) { return ((double)(bits >> 11) + 0.5) * 0x1p-53; }

/* Tag separating the per-draw sub-stream from any other use of hs_rng_bits. */
#define THEORY_SUBSTREAM 0x7468656f72790001ull

double hs_dist_sample(const hs_dist *d, uint64_t seed, uint64_t stream, uint64_t index) {
    /* One key per draw; the draw's uniforms are the sub-stream (key, k = 0, 1, ...), so a
     * draw is a pure function of (seed, stream, index) even with rejection sampling. */
    uint64_t key = hs_rng_bits(seed, stream, index);
    switch (d->kind) {
    case HS_DIST_GAUSS: {
        /* Box–Muller, cosine branch only. */
        double u1 = u01(hs_rng_bits(key, THEORY_SUBSTREAM, 0));
        double u2 = u01(hs_rng_bits(key, THEORY_SUBSTREAM, 1));
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    }
    case HS_DIST_LAPLACE: {
        /* |X| is exponential with mean b = 1/sqrt(2); the sign is an independent bit. */
        uint64_t bits = hs_rng_bits(key, THEORY_SUBSTREAM, 0);
        double mag = -log(u01(bits)) / sqrt(2.0);
        return (hs_rng_bits(key, THEORY_SUBSTREAM, 1) & 1) ? -mag : mag;
    }
    case HS_DIST_STUDENT_T: {
        /* Bailey's polar method (Math. Comp. 1994): (U, V) uniform in the unit disc,
         * W = U² + V², T = U·sqrt(ν(W^(−2/ν) − 1)/W) is exactly t(ν). */
        double nu = d->nu;
        for (uint64_t k = 0; k < (1u << 20); k += 2) {
            double u = 2.0 * u01(hs_rng_bits(key, THEORY_SUBSTREAM, k)) - 1.0;
            double v = 2.0 * u01(hs_rng_bits(key, THEORY_SUBSTREAM, k + 1)) - 1.0;
            double w = u * u + v * v;
            if (w > 1.0 || w <= 0.0) continue;
            double t = u * sqrt(nu * expm1(-(2.0 / nu) * log(w)) / w);
            return t * sqrt((nu - 2.0) / nu);
        }
        return 0.0; /* unreachable in practice: each try is accepted with probability π/4 */
    }
    default:
        return NAN;
    }
}

/* ---------------------------------------------------------------- integration */

/* 10-point Gauss–Legendre nodes (positive half) and weights on [−1, 1]. */
static const double gl_x[5] = {0.14887433898163121, 0.43339539412924719, 0.67940956829902441,
                               0.86506336668898451, 0.97390652851717172};
static const double gl_w[5] = {0.29552422471475287, 0.26926671930999636, 0.21908636251598204,
                               0.14945134915058059, 0.066671344308688138};

/* Integrand of one cell: (x − q)² p(x). */
typedef struct {
    const dctx *d;
    double q;
} cell;

static double cell_f(const cell *c, double x) {
    double e = x - c->q;
    return e * e * dctx_pdf(c->d, x);
}

static double gl10(const cell *c, double a, double b) {
    double mid = 0.5 * (a + b), h = 0.5 * (b - a), s = 0.0;
    for (int i = 0; i < 5; i++)
        s += gl_w[i] * (cell_f(c, mid - h * gl_x[i]) + cell_f(c, mid + h * gl_x[i]));
    return s * h;
}

/* Adaptive bisection: accept when the two halves agree with the whole to tol. */
static double adapt(const cell *c, double a, double b, double whole, double tol, int depth) {
    double m = 0.5 * (a + b);
    double l = gl10(c, a, m), r = gl10(c, m, b);
    if (depth <= 0 || fabs(l + r - whole) <= tol) return l + r;
    return adapt(c, a, m, l, 0.5 * tol, depth - 1) + adapt(c, m, b, r, 0.5 * tol, depth - 1);
}

/* Absolute tolerance per cell: MSEs are ~1e-3..1, so this is ~1e-12 relative or better. */
#define CELL_TOL 1e-15

static double integrate(const dctx *d, double q, double a, double b) {
    cell c = {d, q};
    return adapt(&c, a, b, gl10(&c, a, b), CELL_TOL, 40);
}

/* ∫_c0^∞ (x − q)² p(x) dx. */
static double integrate_tail(const dctx *d, double q, double c0) {
    /* Far point: Gaussian and Laplace densities underflow long before 1e3σ; for Student-t the
     * asymptote's relative error ~ (ν+1)(ν−2)/(2x²) is below 1e-16 at X = 1e8·max(1, ν). */
    double xend = (d->kind == HS_DIST_STUDENT_T) ? 1e8 * fmax(1.0, d->nu) : 1e3;
    double sum = 0.0, lo = c0;
    while (lo < xend) {
        double hi = fmin(2.0 * lo, xend);
        sum += integrate(d, q, lo, hi);
        lo = hi;
    }
    if (d->kind == HS_DIST_STUDENT_T) {
        /* ∫_X^∞ (x − q)² A x^−(ν+1) dx, term by term (ν > 2 keeps every term finite). */
        double nu = d->nu, lx = log(lo);
        sum += exp(d->loga + (2.0 - nu) * lx) / (nu - 2.0) -
               2.0 * q * exp(d->loga + (1.0 - nu) * lx) / (nu - 1.0) +
               q * q * exp(d->loga - nu * lx) / nu;
    }
    return sum;
}

static double mse_at(const dctx *d, const grid *gr, double clip) {
    double s = clip / gr->g[gr->m];
    double sum = 0.0, lo = 0.0;
    for (int k = 0; k < gr->m; k++) {
        double hi = s * gr->b[k];
        sum += integrate(d, s * gr->g[k], lo, hi);
        lo = hi;
    }
    sum += integrate_tail(d, s * gr->g[gr->m], lo);
    return 2.0 * sum;
}

hs_status hs_theory_mse(const hs_dist *d, hs_elem elem, double clip, double *mse) {
    hs_status st = hs_dist_validate(d);
    if (st != HS_OK) return st;
    grid gr;
    if ((st = grid_init(elem, &gr)) != HS_OK) return st;
    if (!mse) return hs_fail(HS_ERR_INVALID_ARG, "mse output is NULL");
    if (!(clip > 0.0) || !isfinite(clip) || clip > 1e6)
        return hs_fail(HS_ERR_INVALID_ARG, "clip must be in (0, 1e6] sigma, got %g", clip);
    dctx c;
    dctx_init(d, &c);
    *mse = mse_at(&c, &gr, clip);
    return HS_OK;
}

hs_status hs_theory_opt_clip(const hs_dist *d, hs_elem elem, double *clip, double *mse) {
    hs_status st = hs_dist_validate(d);
    if (st != HS_OK) return st;
    grid gr;
    if ((st = grid_init(elem, &gr)) != HS_OK) return st;
    dctx c;
    dctx_init(d, &c);
    /* A log-spaced grid first, so a local dip cannot capture the search; then golden section
     * inside the bracket around the grid minimum. */
    enum { NGRID = 161 };
    const double amin = 0.25, amax = 200.0;
    double best = INFINITY;
    int jbest = 0;
    for (int j = 0; j < NGRID; j++) {
        double a = amin * pow(amax / amin, (double)j / (NGRID - 1));
        double v = mse_at(&c, &gr, a);
        if (v < best) {
            best = v;
            jbest = j;
        }
    }
    double lo = amin * pow(amax / amin, (double)(jbest > 0 ? jbest - 1 : 0) / (NGRID - 1));
    double hi = amin * pow(amax / amin, (double)(jbest < NGRID - 1 ? jbest + 1 : jbest) /
                                            (NGRID - 1));
    const double gr_ratio = 0.5 * (sqrt(5.0) - 1.0);
    double x1 = hi - gr_ratio * (hi - lo), x2 = lo + gr_ratio * (hi - lo);
    double f1 = mse_at(&c, &gr, x1), f2 = mse_at(&c, &gr, x2);
    for (int it = 0; it < 200 && hi - lo > 1e-10 * hi; it++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - gr_ratio * (hi - lo);
            f1 = mse_at(&c, &gr, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + gr_ratio * (hi - lo);
            f2 = mse_at(&c, &gr, x2);
        }
    }
    double a = 0.5 * (lo + hi);
    if (clip) *clip = a;
    if (mse) *mse = mse_at(&c, &gr, a);
    return HS_OK;
}

hs_status hs_theory_mc_clip(const hs_dist *d, hs_elem elem, double clip, int64_t n, uint64_t seed,
                            double *mse, double *std_err) {
    hs_status st = hs_dist_validate(d);
    if (st != HS_OK) return st;
    grid gr;
    if ((st = grid_init(elem, &gr)) != HS_OK) return st;
    if (!(clip > 0.0) || !isfinite(clip))
        return hs_fail(HS_ERR_INVALID_ARG, "clip must be > 0, got %g", clip);
    if (n < 2) return hs_fail(HS_ERR_INVALID_ARG, "need at least 2 draws, got %lld", (long long)n);
    double s = clip / gr.g[gr.m];
    /* Welford's running mean and variance of the squared error. */
    double mean = 0.0, m2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = hs_dist_sample(d, seed, 0, (uint64_t)i);
        double xf = (double)(float)x; /* what a float tensor would hold */
        double y = s * codec_rne(elem, (float)(xf / s));
        double e = (xf - y) * (xf - y);
        double delta = e - mean;
        mean += delta / (double)(i + 1);
        m2 += delta * (e - mean);
    }
    if (mse) *mse = mean;
    if (std_err) *std_err = sqrt(m2 / (double)(n - 1) / (double)n);
    return HS_OK;
}

/* ---------------------------------------------------------------- per-group optimum */

typedef struct {
    double s; /* scale at which the element drops from code k+1 to code k */
    double a; /* |x| */
    int k;
} opt_event;

static int event_cmp(const void *pa, const void *pb) {
    const opt_event *a = pa, *b = pb;
    return (a->s > b->s) - (a->s < b->s);
}

hs_status hs_theory_group_opt(const float *x, int64_t n, hs_elem elem, double *scale,
                              double *sse) {
    grid gr;
    hs_status st = grid_init(elem, &gr);
    if (st != HS_OK) return st;
    if (!x || n < 1) return hs_fail(HS_ERR_INVALID_ARG, "group needs at least one element");
    if (n > ((int64_t)1 << 26))
        return hs_fail(HS_ERR_INVALID_ARG, "group of %lld elements is too large (max 2^26)",
                       (long long)n);
    double c2 = 0.0;
    int64_t nz = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return hs_fail(HS_ERR_INVALID_ARG, "non-finite value at index %lld", (long long)i);
        c2 += (double)x[i] * x[i];
        nz += x[i] != 0.0f;
    }
    if (nz == 0) {
        if (scale) *scale = 0.0;
        if (sse) *sse = 0.0;
        return HS_OK;
    }
    const int m = gr.m;
    opt_event *ev = malloc((size_t)nz * (size_t)m * sizeof *ev);
    if (!ev) return hs_fail(HS_ERR_NOMEM, "no memory for %lld breakpoints", (long long)(nz * m));
    /* As s grows from 0, |x|/s falls: an element starts saturated at g_m and drops from
     * g_{k+1} to g_k when |x|/s crosses b_k, i.e. at s = |x|/b_k. */
    int64_t ne = 0;
    double suma = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]);
        if (a == 0.0) continue;
        suma += a;
        for (int k = 0; k < m; k++) ev[ne++] = (opt_event){a / gr.b[k], a, k};
    }
    qsort(ev, (size_t)ne, sizeof *ev, event_cmp);
    /* Between breakpoints the codes are fixed and SSE(s) = C − 2sA + s²B with
     * A = Σ|x|·g, B = Σg²: a parabola whose minimum A/B is clamped into the interval.
     * SSE is continuous at the breakpoints (both codes are equally far there) and, being a sum
     * of minima of parabolas, only bends down there, so the global minimum is one of these
     * interior stationary points. */
    double A = suma * gr.g[m], B = (double)nz * gr.g[m] * gr.g[m];
    double best = c2, best_s = 0.0, prev = 0.0;
    for (int64_t j = 0; j < ne; j++) {
        double hi = ev[j].s;
        if (B > 0.0) {
            double s = A / B;
            s = s < prev ? prev : (s > hi ? hi : s);
            double v = c2 - 2.0 * s * A + s * s * B;
            if (v < best && s > 0.0) {
                best = v;
                best_s = s;
            }
        }
        int k = ev[j].k;
        A -= ev[j].a * (gr.g[k + 1] - gr.g[k]);
        B -= gr.g[k + 1] * gr.g[k + 1] - gr.g[k] * gr.g[k];
        prev = hi;
    }
    free(ev);
    /* Recompute the error at the winner directly: the running sums above lose a few digits
     * to cancellation, the direct sum does not. */
    double e2 = c2;
    if (best_s > 0.0) {
        e2 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double xi = x[i];
            double q = best_s * grid_nearest(&gr, fabs(xi) / best_s);
            double e = fabs(xi) - q;
            e2 += e * e;
        }
    }
    if (scale) *scale = best_s;
    if (sse) *sse = e2;
    return HS_OK;
}

/* ---------------------------------------------------------------- finite-group Monte Carlo */

const char *hs_theory_row_name(int rule) {
    if (rule == HS_THEORY_OPT) return "opt";
    return hs_rule_name((hs_rule)rule);
}

/* The one-scale-per-group spec the Monte Carlo runs the rules through. */
static hs_status mc_spec(hs_elem elem, hs_quant_spec *s) {
    hs_status st;
    if (elem == HS_ELEM_E2M1) {
        st = hs_quant_spec_init(s, HS_FMT_FP4ROW); /* E2M1, one E8M0 scale per row */
    } else if (elem == HS_ELEM_INT4) {
        st = hs_quant_spec_init(s, HS_FMT_INT4);   /* INT4, FP32 scales */
        s->group = HS_GROUP_ROW;
    } else {
        return hs_fail(HS_ERR_INVALID_ARG, "theory supports elements e2m1 and int4, not %s",
                       hs_elem_name(elem));
    }
    return st;
}

/* Fill x (rows × n) with draws rows g0.. of the Monte Carlo stream. */
static void mc_fill(const hs_dist *d, uint64_t seed, int64_t g0, int64_t rows, int64_t n,
                    float *x) {
    /* rows × n */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++)
            x[r * n + i] = (float)hs_dist_sample(d, seed, 0, (uint64_t)((g0 + r) * n + i));
}

/* The "ceil" (E8M0) or "max" (continuous) scale of a group with amax a: the reference that
 * halved_fraction compares against. */
static double reference_scale(hs_elem elem, double a) {
    if (elem == HS_ELEM_E2M1) return ldexp(1.0, hs_ceil_log2((float)a) - 2);
    return a / 7.0;
}

/* Accumulators of one Monte Carlo row. */
typedef struct {
    double se, ss, se2, sess, ss2; /* Σ E_g, Σ S_g, Σ E_g², Σ E_g·S_g, Σ S_g² */
    double ratio;                  /* Σ clip/amax */
    int64_t zeroed, nonzero, halved;
} mc_acc;

static void mc_acc_group(mc_acc *acc, double e, double s) {
    acc->se += e;
    acc->ss += s;
    acc->se2 += e * e;
    acc->sess += e * s;
    acc->ss2 += s * s;
}

static void mc_acc_finish(const mc_acc *acc, int64_t groups, hs_theory_mc_row *row) {
    double r = acc->ss > 0.0 ? acc->se / acc->ss : 0.0;
    row->rel_mse = r;
    /* Delta method for a ratio of sums: Var ≈ G/(G−1) Σ (E_g − r·S_g)² / (Σ S_g)². */
    double v = acc->se2 - 2.0 * r * acc->sess + r * r * acc->ss2;
    if (v < 0.0) v = 0.0;
    row->rel_mse_se =
        (groups > 1 && acc->ss > 0.0) ? sqrt(v * groups / (double)(groups - 1)) / acc->ss : 0.0;
    row->clip_over_amax = acc->ratio / (double)groups;
    row->zero_collapse = acc->nonzero ? (double)acc->zeroed / (double)acc->nonzero : 0.0;
    row->halved_fraction = (double)acc->halved / (double)groups;
}

/* Values per Monte Carlo batch: bounds memory whatever --samples is. */
#define MC_BATCH_VALUES ((int64_t)1 << 17)

static hs_status mc_check(const hs_dist *d, hs_elem elem, int64_t group, int64_t groups) {
    hs_status st = hs_dist_validate(d);
    if (st != HS_OK) return st;
    if (elem != HS_ELEM_E2M1 && elem != HS_ELEM_INT4)
        return hs_fail(HS_ERR_INVALID_ARG, "theory supports elements e2m1 and int4, not %s",
                       hs_elem_name(elem));
    if (group < 2 || group > ((int64_t)1 << 20))
        return hs_fail(HS_ERR_INVALID_ARG, "group size must be in [2, 2^20], got %lld",
                       (long long)group);
    if (groups < 2 || groups > ((int64_t)1 << 40) / group)
        return hs_fail(HS_ERR_INVALID_ARG, "need 2 .. 2^40/group groups, got %lld",
                       (long long)groups);
    return HS_OK;
}

hs_status hs_theory_mc_rules(const hs_dist *d, hs_elem elem, int64_t group, int64_t groups,
                             uint64_t seed, hs_theory_mc *out) {
    hs_status st = mc_check(d, elem, group, groups);
    if (st != HS_OK) return st;
    if (!out) return hs_fail(HS_ERR_INVALID_ARG, "output is NULL");
    grid gr;
    if ((st = grid_init(elem, &gr)) != HS_OK) return st;
    hs_quant_spec spec;
    if ((st = mc_spec(elem, &spec)) != HS_OK) return st;

    int rules[HS_RULE_COUNT + 1];
    int nr = 0;
    for (int r = 0; r < HS_RULE_COUNT; r++)
        if (hs_rule_applies(&spec, (hs_rule)r)) rules[nr++] = r;
    rules[nr++] = HS_THEORY_OPT;

    mc_acc acc[HS_RULE_COUNT + 1];
    memset(acc, 0, sizeof acc);
    int64_t batch = MC_BATCH_VALUES / group > 0 ? MC_BATCH_VALUES / group : 1;
    if (batch > groups) batch = groups;
    float *x = malloc((size_t)(batch * group) * sizeof *x);   /* batch × group */
    float *y = malloc((size_t)(batch * group) * sizeof *y);   /* batch × group */
    double *gs = malloc((size_t)batch * 2 * sizeof *gs);       /* batch × (scale, sse) */
    hs_status *gst = malloc((size_t)batch * sizeof *gst);      /* batch */
    if (!x || !y || !gs || !gst) {
        st = hs_fail(HS_ERR_NOMEM, "no memory for a Monte Carlo batch of %lld x %lld",
                     (long long)batch, (long long)group);
        goto done;
    }
    for (int64_t g0 = 0; g0 < groups; g0 += batch) {
        int64_t rows = groups - g0 < batch ? groups - g0 : batch;
        mc_fill(d, seed, g0, rows, group, x);
        for (int ri = 0; ri < nr; ri++) {
            mc_acc *a = &acc[ri];
            if (rules[ri] == HS_THEORY_OPT) {
#pragma omp parallel for schedule(dynamic, 1)
                for (int64_t r = 0; r < rows; r++)
                    gst[r] = hs_theory_group_opt(x + r * group, group, elem, &gs[2 * r],
                                                 &gs[2 * r + 1]);
                for (int64_t r = 0; r < rows; r++) {
                    if (gst[r] != HS_OK) {
                        st = gst[r];
                        goto done;
                    }
                    const float *xr = x + r * group;
                    double s = gs[2 * r], ss = 0.0, am = 0.0;
                    for (int64_t i = 0; i < group; i++) {
                        double v = xr[i];
                        ss += v * v;
                        am = fmax(am, fabs(v));
                        if (v != 0.0) {
                            a->nonzero++;
                            /* Below the first decision point the nearest code is 0. */
                            if (!(s > 0.0) || fabs(v) / s < gr.b[0]) a->zeroed++;
                        }
                    }
                    mc_acc_group(a, gs[2 * r + 1], ss);
                    if (am > 0.0) {
                        a->ratio += s * gr.g[gr.m] / am;
                        a->halved += s < reference_scale(elem, am);
                    }
                }
                continue;
            }
            spec.rule = (hs_rule)rules[ri];
            hs_packed p;
            memset(&p, 0, sizeof p);
            if ((st = hs_packed_alloc(&p, &spec, rows, group)) != HS_OK) goto done;
            st = hs_quantize(&spec, x, rows, group, group, 0, &p);
            if (st == HS_OK) st = hs_dequantize(&p, y, group);
            if (st != HS_OK) {
                hs_packed_free(&p);
                goto done;
            }
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = x + r * group, *yr = y + r * group;
                double e2 = 0.0, ss = 0.0, am = 0.0;
                for (int64_t i = 0; i < group; i++) {
                    double v = xr[i], e = v - (double)yr[i];
                    e2 += e * e;
                    ss += v * v;
                    am = fmax(am, fabs(v));
                    if (v != 0.0) {
                        a->nonzero++;
                        a->zeroed += yr[i] == 0.0f;
                    }
                }
                mc_acc_group(a, e2, ss);
                double sc = spec.scale_fmt == HS_SCALE_E8M0
                                ? hs_e8m0_decode(((const uint8_t *)p.scales)[r * p.groups_per_row])
                                : ((const float *)p.scales)[r * p.groups_per_row];
                if (am > 0.0) a->ratio += sc * gr.g[gr.m] / am;
            }
            a->halved += p.groups_halved;
            hs_packed_free(&p);
        }
    }
    out->group = group;
    out->groups = groups;
    out->n_rows = nr;
    for (int ri = 0; ri < nr; ri++) {
        out->rows[ri].rule = rules[ri];
        mc_acc_finish(&acc[ri], groups, &out->rows[ri]);
    }
done:
    free(x);
    free(y);
    free(gs);
    free(gst);
    return st;
}

hs_status hs_theory_curve(const hs_dist *d, hs_elem elem, int64_t group, int64_t groups,
                          uint64_t seed, const double *ratios, int n_ratios, double *rel_mse) {
    hs_status st = mc_check(d, elem, group, groups);
    if (st != HS_OK) return st;
    if (!ratios || !rel_mse || n_ratios < 1 || n_ratios > 100000)
        return hs_fail(HS_ERR_INVALID_ARG, "need 1..100000 ratios, got %d", n_ratios);
    for (int i = 0; i < n_ratios; i++)
        if (!(ratios[i] > 0.0) || !isfinite(ratios[i]) || ratios[i] > 1e3)
            return hs_fail(HS_ERR_INVALID_ARG, "clip ratio must be in (0, 1000], got %g",
                           ratios[i]);
    grid gr;
    if ((st = grid_init(elem, &gr)) != HS_OK) return st;
    int64_t batch = MC_BATCH_VALUES / group > 0 ? MC_BATCH_VALUES / group : 1;
    if (batch > groups) batch = groups;
    float *x = malloc((size_t)(batch * group) * sizeof *x);            /* batch × group */
    double *err = malloc((size_t)(batch * n_ratios) * sizeof *err);    /* batch × n_ratios */
    double *sig = malloc((size_t)batch * sizeof *sig);                 /* batch */
    double *tot = calloc((size_t)n_ratios, sizeof *tot);               /* n_ratios */
    double ssum = 0.0;
    if (!x || !err || !sig || !tot) {
        st = hs_fail(HS_ERR_NOMEM, "no memory for a Monte Carlo batch");
        goto done;
    }
    for (int64_t g0 = 0; g0 < groups; g0 += batch) {
        int64_t rows = groups - g0 < batch ? groups - g0 : batch;
        mc_fill(d, seed, g0, rows, group, x);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * group;
            double am = 0.0, ss = 0.0;
            for (int64_t i = 0; i < group; i++) {
                am = fmax(am, fabs((double)xr[i]));
                ss += (double)xr[i] * xr[i];
            }
            sig[r] = ss;
            for (int j = 0; j < n_ratios; j++) {
                double e2 = 0.0;
                if (am > 0.0) {
                    double s = ratios[j] * am / gr.g[gr.m];
                    for (int64_t i = 0; i < group; i++) {
                        double v = xr[i];
                        double e = v - s * codec_rne(elem, (float)(v / s));
                        e2 += e * e;
                    }
                }
                err[r * n_ratios + j] = e2;
            }
        }
        for (int64_t r = 0; r < rows; r++) {
            ssum += sig[r];
            for (int j = 0; j < n_ratios; j++) tot[j] += err[r * n_ratios + j];
        }
    }
    for (int j = 0; j < n_ratios; j++) rel_mse[j] = ssum > 0.0 ? tot[j] / ssum : 0.0;
done:
    free(x);
    free(err);
    free(sig);
    free(tot);
    return st;
}
