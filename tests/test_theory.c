/* test_theory.c: the quantization-error theory of halfs/theory.h (docs/FORMATS.md §11).
 *
 * - the four published optima (Gaussian, Laplace, Student-t 5 and 3) within 0.2%;
 * - the integrator against closed forms (Gaussian and Laplace partial moments);
 * - the optimum is a minimum; Monte Carlo at a fixed clip agrees with the integral within its
 *   standard error; the per-group optimum is exact (brute force) and a lower bound for every rule;
 * - finite groups: Half-S beats ceil for heavy tails at N = 1024; curve and rule Monte Carlo
 *   agree on the same draws; the sampler has unit variance and is a pure function of its counter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <omp.h>

#include "halfs/halfs.h"
#include "halfs/theory.h"

static hs_dist dist_of(const char *name) {
    hs_dist d;
    assert_int_equal(hs_dist_parse(name, &d), HS_OK);
    return d;
}

static void assert_rel(double got, double want, double rel, const char *what) {
    double err = fabs(got - want) / fabs(want);
    if (!(err <= rel)) {
        print_error("%s: got %.8g, want %.8g (relative error %.3g > %.3g)\n", what, got, want,
                    err, rel);
        fail();
    }
}

/* docs/FORMATS.md §11: the optimal clip (in σ) and the MSE there (in σ²), RNE E2M1, saturating. */
static void test_known_optima(void **state) {
    (void)state;
    static const struct {
        const char *dist;
        double clip, mse;
    } known[] = {
        {"gauss", 2.9225, 0.01268},
        {"laplace", 4.147, 0.01849},
        {"t:5", 4.70, 0.0249},
        {"t:3", 7.22, 0.0915},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        hs_dist d = dist_of(known[i].dist);
        double a = 0, m = 0;
        assert_int_equal(hs_theory_opt_clip(&d, HS_ELEM_E2M1, &a, &m), HS_OK);
        char what[64];
        snprintf(what, sizeof what, "%s alpha*", known[i].dist);
        assert_rel(a, known[i].clip, 0.002, what);
        snprintf(what, sizeof what, "%s MSE*", known[i].dist);
        assert_rel(m, known[i].mse, 0.002, what);
    }
}

/* Closed forms. Gaussian: ∫_a^b x^k φ for k = 0, 1, 2 from Φ and φ.
 * Laplace (λ = sqrt 2, x > 0): ∫_a^∞ x^k (λ/2) e^{−λx} = ½ e^{−λa} Σ_j k!/j! a^j / λ^{k−j}. */
static double gauss_cell(double a, double b, double q) {
    double pa = exp(-0.5 * a * a) / sqrt(2 * M_PI);
    double pb = isinf(b) ? 0.0 : exp(-0.5 * b * b) / sqrt(2 * M_PI);
    double m0 = 0.5 * (erfc(a / sqrt(2.0)) - (isinf(b) ? 0.0 : erfc(b / sqrt(2.0))));
    double m1 = pa - pb;
    double m2 = m0 + a * pa - (isinf(b) ? 0.0 : b * pb);
    return m2 - 2 * q * m1 + q * q * m0;
}

static double laplace_upper(double a, int k) {
    const double lam = sqrt(2.0);
    double s = 0.0, fact_k = 1.0;
    for (int j = 1; j <= k; j++) fact_k *= j;
    double fact_j = 1.0;
    for (int j = 0; j <= k; j++) {
        if (j > 0) fact_j *= j;
        s += fact_k / fact_j * pow(a, j) / pow(lam, k - j);
    }
    return 0.5 * exp(-lam * a) * s;
}

static double laplace_cell(double a, double b, double q) {
    double m[3];
    for (int k = 0; k < 3; k++)
        m[k] = laplace_upper(a, k) - (isinf(b) ? 0.0 : laplace_upper(b, k));
    return m[2] - 2 * q * m[1] + q * q * m[0];
}

/* MSE by closed form over the same cells the library integrates. */
static double closed_mse(int laplace, hs_elem elem, double clip) {
    double g[8];
    for (int k = 0; k < 8; k++) g[k] = elem == HS_ELEM_E2M1 ? hs_e2m1_decode((uint8_t)k) : k;
    double s = clip / g[7], lo = 0.0, sum = 0.0;
    for (int k = 0; k < 8; k++) {
        double hi = k < 7 ? s * 0.5 * (g[k] + g[k + 1]) : INFINITY;
        sum += laplace ? laplace_cell(lo, hi, s * g[k]) : gauss_cell(lo, hi, s * g[k]);
        lo = hi;
    }
    return 2 * sum;
}

static void test_integrator_closed_form(void **state) {
    (void)state;
    hs_dist ga = dist_of("gauss"), la = dist_of("laplace");
    const double clips[] = {0.5, 1.7, 2.9225, 4.147, 6.0, 11.0};
    const hs_elem elems[] = {HS_ELEM_E2M1, HS_ELEM_INT4};
    for (size_t e = 0; e < 2; e++)
        for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) {
            double m;
            assert_int_equal(hs_theory_mse(&ga, elems[e], clips[i], &m), HS_OK);
            assert_rel(m, closed_mse(0, elems[e], clips[i]), 1e-9, "gauss closed form");
            assert_int_equal(hs_theory_mse(&la, elems[e], clips[i], &m), HS_OK);
            assert_rel(m, closed_mse(1, elems[e], clips[i]), 1e-9, "laplace closed form");
        }
    /* Clip → 0 sends everything to ~0: the MSE tends to the variance, 1. */
    double m;
    assert_int_equal(hs_theory_mse(&ga, HS_ELEM_E2M1, 1e-4, &m), HS_OK);
    assert_rel(m, 1.0, 1e-3, "tiny clip");
    hs_dist t3 = dist_of("t:3");
    assert_int_equal(hs_theory_mse(&t3, HS_ELEM_E2M1, 1e-4, &m), HS_OK);
    assert_rel(m, 1.0, 1e-3, "t3 tiny clip (tail remainder)");
}

static void test_optimum_is_minimum(void **state) {
    (void)state;
    const char *names[] = {"gauss", "laplace", "t:5", "t:3", "t:2.5", "t:30"};
    const hs_elem elems[] = {HS_ELEM_E2M1, HS_ELEM_INT4};
    for (size_t e = 0; e < 2; e++)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            hs_dist d = dist_of(names[i]);
            double a, m, lo, hi, m2;
            assert_int_equal(hs_theory_opt_clip(&d, elems[e], &a, &m), HS_OK);
            assert_int_equal(hs_theory_mse(&d, elems[e], a, &m2), HS_OK);
            assert_true(m2 == m);
            assert_int_equal(hs_theory_mse(&d, elems[e], a * 0.95, &lo), HS_OK);
            assert_int_equal(hs_theory_mse(&d, elems[e], a * 1.05, &hi), HS_OK);
            assert_true(m <= lo);
            assert_true(m <= hi);
            /* And strictly: a 5% detour costs something measurable. */
            assert_true(lo - m > 1e-6 * m);
            assert_true(hi - m > 1e-6 * m);
        }
    /* Heavier tails clip further out and cost more. */
    double ag, at5, at3, mg, mt5, mt3;
    hs_dist g = dist_of("gauss"), t5 = dist_of("t:5"), t3 = dist_of("t:3");
    hs_theory_opt_clip(&g, HS_ELEM_E2M1, &ag, &mg);
    hs_theory_opt_clip(&t5, HS_ELEM_E2M1, &at5, &mt5);
    hs_theory_opt_clip(&t3, HS_ELEM_E2M1, &at3, &mt3);
    assert_true(ag < at5 && at5 < at3);
    assert_true(mg < mt5 && mt5 < mt3);
}

/* Monte Carlo with the clip fixed at α* estimates the integral without bias: the difference
 * must sit within a few standard errors (4σ: a false alarm once in ~16000 runs, and the seed is
 * fixed). Gaussian and Laplace only: t(ν ≤ 4) errors have infinite variance, so the standard
 * error would be meaningless. */
static void test_mc_matches_integral(void **state) {
    (void)state;
    const char *names[] = {"gauss", "laplace", "t:9"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hs_dist d = dist_of(names[i]);
        double a, m, mc, se;
        assert_int_equal(hs_theory_opt_clip(&d, HS_ELEM_E2M1, &a, &m), HS_OK);
        assert_int_equal(hs_theory_mc_clip(&d, HS_ELEM_E2M1, a, 200000, 7, &mc, &se), HS_OK);
        if (!(fabs(mc - m) <= 4 * se)) {
            print_error("%s: MC %.6g +- %.2g vs integral %.6g\n", names[i], mc, se, m);
            fail();
        }
        /* The standard error itself is plausible: ~ MSE·sqrt(Var/mean²/n), a few % of MSE. */
        assert_true(se > 1e-4 * m && se < 0.05 * m);
    }
}

/* Per-group continuous optimum: nothing on a fine scan of scales beats it, and its reported
 * SSE is the SSE at its scale. */
static double sse_at(const float *x, int n, hs_elem elem, double s) {
    double e2 = 0.0;
    for (int i = 0; i < n; i++) {
        double v = x[i];
        double q;
        if (elem == HS_ELEM_E2M1) {
            /* nearest grid magnitude, by brute force over the 8 values */
            double a = fabs(v) / s, best = INFINITY;
            for (int k = 0; k < 8; k++) {
                double g = hs_e2m1_decode((uint8_t)k);
                if (fabs(a - g) < fabs(a - best)) best = g;
            }
            q = copysign(best * s, v);
        } else {
            double a = fabs(v) / s, r = floor(a + 0.5);
            q = copysign((r > 7 ? 7 : r) * s, v);
        }
        e2 += (v - q) * (v - q);
    }
    return e2;
}

static void test_group_opt_exact(void **state) {
    (void)state;
    hs_dist d = dist_of("t:4");
    const hs_elem elems[] = {HS_ELEM_E2M1, HS_ELEM_INT4};
    for (int trial = 0; trial < 12; trial++) {
        float x[24];
        int n = 5 + trial;
        double amax = 0.0;
        for (int i = 0; i < n; i++) {
            x[i] = (float)hs_dist_sample(&d, 99, (uint64_t)trial, (uint64_t)i);
            amax = fmax(amax, fabs(x[i]));
        }
        for (int e = 0; e < 2; e++) {
            double s, sse;
            assert_int_equal(hs_theory_group_opt(x, n, elems[e], &s, &sse), HS_OK);
            assert_true(s > 0.0);
            double direct = sse_at(x, n, elems[e], s);
            assert_true(fabs(direct - sse) <= 1e-12 * (direct + 1e-300) + 1e-15);
            /* Scan 20000 scales from amax/60 to amax (clip/amax 0.1 .. 6 for E2M1). */
            for (int j = 0; j <= 20000; j++) {
                double t = amax / 60.0 * pow(60.0, j / 20000.0);
                double v = sse_at(x, n, elems[e], t);
                if (v < sse * (1 - 1e-12) - 1e-15) {
                    print_error("trial %d elem %d: scale %.9g gives %.12g < opt %.12g at %.9g\n",
                                trial, e, t, v, sse, s);
                    fail();
                }
            }
        }
    }
    /* An all-zero group: scale 0, no error; a non-finite value is an error. */
    float z[4] = {0, 0, -0.0f, 0};
    double s = 1, sse = 1;
    assert_int_equal(hs_theory_group_opt(z, 4, HS_ELEM_E2M1, &s, &sse), HS_OK);
    assert_true(s == 0.0 && sse == 0.0);
    z[2] = NAN;
    assert_int_equal(hs_theory_group_opt(z, 4, HS_ELEM_E2M1, &s, &sse), HS_ERR_INVALID_ARG);
    /* A group exactly on the grid has zero error at its natural scale. */
    float gx[4] = {6.0f, -3.0f, 0.5f, 1.5f};
    assert_int_equal(hs_theory_group_opt(gx, 4, HS_ELEM_E2M1, &s, &sse), HS_OK);
    assert_true(sse == 0.0);
}

static const hs_theory_mc_row *find_row(const hs_theory_mc *mc, int rule) {
    for (int i = 0; i < mc->n_rows; i++)
        if (mc->rows[i].rule == rule) return &mc->rows[i];
    return NULL;
}

/* Heavy tails, per-row groups of 1024: Half-S beats max-scaling (ceil), the per-group optimum
 * is a lower bound for every rule, and rules never beat it. */
static void test_mc_rules_heavy_tails(void **state) {
    (void)state;
    hs_dist d = dist_of("t:3");
    hs_theory_mc mc;
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, 1024, 96, 3, &mc), HS_OK);
    assert_int_equal(mc.group, 1024);
    assert_int_equal(mc.groups, 96);
    const hs_theory_mc_row *ceil_r = find_row(&mc, HS_RULE_CEIL);
    const hs_theory_mc_row *halfs_r = find_row(&mc, HS_RULE_HALFS);
    const hs_theory_mc_row *half_r = find_row(&mc, HS_RULE_HALF);
    const hs_theory_mc_row *mse_r = find_row(&mc, HS_RULE_MSE);
    const hs_theory_mc_row *opt_r = find_row(&mc, HS_THEORY_OPT);
    assert_non_null(ceil_r);
    assert_non_null(halfs_r);
    assert_non_null(half_r);
    assert_non_null(mse_r);
    assert_non_null(opt_r);
    assert_null(find_row(&mc, HS_RULE_MAX)); /* continuous-only rule: not for E8M0 */
    /* Half-S picks, per group, the better of ceil and ceil−1: never worse than either. */
    assert_true(halfs_r->rel_mse <= ceil_r->rel_mse);
    assert_true(halfs_r->rel_mse <= half_r->rel_mse);
    /* For heavy-tailed rows it cuts the error clearly (2–3×: docs/RESULTS.md, '1. Theory'). */
    assert_true(halfs_r->rel_mse < 0.8 * ceil_r->rel_mse);
    assert_true(halfs_r->zero_collapse < ceil_r->zero_collapse);
    assert_true(halfs_r->halved_fraction > 0.0 && halfs_r->halved_fraction <= 1.0);
    assert_true(ceil_r->halved_fraction == 0.0);
    assert_true(half_r->halved_fraction == 1.0);
    assert_true(mse_r->rel_mse <= halfs_r->rel_mse);
    for (int i = 0; i < mc.n_rows; i++) {
        assert_true(opt_r->rel_mse <= mc.rows[i].rel_mse * (1 + 1e-12));
        assert_true(mc.rows[i].rel_mse_se > 0.0 && mc.rows[i].rel_mse_se < mc.rows[i].rel_mse);
    }
    /* ceil maps amax into (2, 4]: its effective clip 6·X lies in [1.5, 3)·amax. */
    assert_true(ceil_r->clip_over_amax >= 1.5 && ceil_r->clip_over_amax < 3.0);
    assert_true(half_r->clip_over_amax >= 0.75 && half_r->clip_over_amax < 1.5);
    /* Heavy tails at large N: the optimum clips far below amax (docs/FORMATS.md §11). */
    assert_true(opt_r->clip_over_amax < 0.8);
}

/* The optimal clip ratio falls as the group grows; small groups of Gaussians barely clip. */
static void test_opt_ratio_vs_group(void **state) {
    (void)state;
    hs_dist d = dist_of("gauss");
    hs_theory_mc a, b;
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, 16, 2000, 1, &a), HS_OK);
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, 2048, 24, 1, &b), HS_OK);
    const hs_theory_mc_row *oa = find_row(&a, HS_THEORY_OPT), *ob = find_row(&b, HS_THEORY_OPT);
    assert_true(oa->clip_over_amax > 0.9);
    assert_true(ob->clip_over_amax < oa->clip_over_amax);
    /* Large groups approach the infinite-group optimum from below (per-group fitting can only
     * help), within a few percent at N = 2048. */
    double aopt, mopt;
    hs_theory_opt_clip(&d, HS_ELEM_E2M1, &aopt, &mopt);
    assert_true(ob->rel_mse <= mopt * 1.02);
    assert_true(ob->rel_mse >= mopt * 0.90);
}

/* The curve and the rule Monte Carlo see the same draws: INT4's `max` rule (X = amax/7) is the
 * curve at ratio 1 up to fp32 rounding of the scale; and no ratio beats the per-group optimum. */
static void test_curve_consistency(void **state) {
    (void)state;
    hs_dist d = dist_of("laplace");
    hs_theory_mc mc;
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_INT4, 64, 300, 5, &mc), HS_OK);
    const hs_theory_mc_row *mx = find_row(&mc, HS_RULE_MAX);
    const hs_theory_mc_row *op = find_row(&mc, HS_THEORY_OPT);
    assert_non_null(mx);
    assert_non_null(op);
    assert_true(fabs(mx->clip_over_amax - 1.0) < 1e-6);
    double ratios[41], rel[41];
    for (int j = 0; j < 41; j++) ratios[j] = 0.2 + 0.02 * j; /* 0.2 .. 1.0 */
    assert_int_equal(hs_theory_curve(&d, HS_ELEM_INT4, 64, 300, 5, ratios, 41, rel), HS_OK);
    assert_rel(rel[40], mx->rel_mse, 1e-4, "curve(1.0) vs max rule");
    double best = INFINITY;
    for (int j = 0; j < 41; j++) {
        assert_true(rel[j] >= op->rel_mse * (1 - 1e-9));
        best = fmin(best, rel[j]);
    }
    /* The curve has an interior minimum below its ends (clipping some helps). */
    assert_true(best < rel[0] && best < rel[40]);

    /* E2M1 as well: deterministic for a fixed seed. */
    double r2[3] = {0.5, 0.8, 1.0}, a1[3], a2[3];
    hs_dist t = dist_of("t:3");
    assert_int_equal(hs_theory_curve(&t, HS_ELEM_E2M1, 32, 100, 11, r2, 3, a1), HS_OK);
    assert_int_equal(hs_theory_curve(&t, HS_ELEM_E2M1, 32, 100, 11, r2, 3, a2), HS_OK);
    for (int j = 0; j < 3; j++) assert_true(a1[j] == a2[j] && a1[j] > 0.0);
}

/* The sampler: unit variance within its standard error, symmetric, a pure function of the
 * counter. Var(s²) = (κ − 1)/n for kurtosis κ. */
static void test_sampler(void **state) {
    (void)state;
    static const struct {
        const char *name;
        double kurt;
    } ds[] = {{"gauss", 3.0}, {"laplace", 6.0}, {"t:8", 4.5}};
    const int n = 200000;
    for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++) {
        hs_dist d = dist_of(ds[k].name);
        double s1 = 0, s2 = 0, s4 = 0;
        for (int i = 0; i < n; i++) {
            double x = hs_dist_sample(&d, 123, 0, (uint64_t)i);
            s1 += x;
            s2 += x * x;
            s4 += x * x * x * x;
        }
        double mean = s1 / n, var = s2 / n;
        assert_true(fabs(mean) < 5 * sqrt(1.0 / n));
        double se_var = sqrt((ds[k].kurt - 1) / n);
        if (!(fabs(var - 1.0) < 5 * se_var)) {
            print_error("%s: variance %.5f (se %.4f)\n", ds[k].name, var, se_var);
            fail();
        }
        double kurt = (s4 / n) / (var * var);
        assert_true(fabs(kurt - ds[k].kurt) < 0.25 * ds[k].kurt);
        assert_true(hs_dist_sample(&d, 123, 0, 17) == hs_dist_sample(&d, 123, 0, 17));
        assert_true(hs_dist_sample(&d, 123, 0, 17) != hs_dist_sample(&d, 124, 0, 17));
    }
    /* The density integrates to ~1 and has unit variance (crude midpoint rule, t:5). */
    hs_dist t5 = dist_of("t:5");
    double p = 0, v = 0, h = 1e-3;
    for (double x = -200 + h / 2; x < 200; x += h) {
        double f = hs_dist_pdf(&t5, x);
        p += f * h;
        v += x * x * f * h;
    }
    assert_rel(p, 1.0, 1e-5, "t5 density mass");
    assert_rel(v, 1.0, 1e-2, "t5 variance (tail beyond 200 cut)");
}

/* Theory and library agree: the Monte Carlo rows of groups of 32 (one E8M0 scale per row of 32)
 * are exactly what hs_quant_stats reports for MXFP4 (blocks of 32) on the same draws. */
static void test_mc_equals_library_stats(void **state) {
    (void)state;
    hs_dist d = dist_of("laplace");
    const int64_t n = 32, groups = 64;
    hs_theory_mc mc;
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, n, groups, 21, &mc), HS_OK);
    float *x = malloc((size_t)(n * groups) * sizeof *x); /* 4 rows × 512: blocks of 32 */
    assert_non_null(x);
    for (int64_t i = 0; i < n * groups; i++) x[i] = (float)hs_dist_sample(&d, 21, 0, (uint64_t)i);
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    int checked = 0;
    for (int i = 0; i < mc.n_rows; i++) {
        if (mc.rows[i].rule == HS_THEORY_OPT) continue;
        s.rule = (hs_rule)mc.rows[i].rule;
        hs_qstats q;
        assert_int_equal(hs_quant_stats(&s, x, 4, 512, 512, 0, &q), HS_OK);
        assert_rel(mc.rows[i].rel_mse, q.rel_mse, 1e-9, hs_rule_name(s.rule));
        assert_true(fabs(mc.rows[i].zero_collapse - q.zero_collapse) < 1e-12);
        assert_true(fabs(mc.rows[i].halved_fraction - q.halved_fraction) < 1e-12);
        checked++;
    }
    assert_true(checked >= 6);
    free(x);
}

/* Same numbers with 1 and 2 OpenMP threads (sums are taken serially in group order). */
static void test_thread_independent(void **state) {
    (void)state;
    hs_dist d = dist_of("t:3");
    hs_theory_mc a, b;
    double r[4] = {0.3, 0.6, 0.9, 1.0}, ca[4], cb[4];
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, 256, 40, 4, &a), HS_OK);
    assert_int_equal(hs_theory_curve(&d, HS_ELEM_E2M1, 256, 40, 4, r, 4, ca), HS_OK);
    omp_set_num_threads(2);
    assert_int_equal(hs_theory_mc_rules(&d, HS_ELEM_E2M1, 256, 40, 4, &b), HS_OK);
    assert_int_equal(hs_theory_curve(&d, HS_ELEM_E2M1, 256, 40, 4, r, 4, cb), HS_OK);
    omp_set_num_threads(saved);
    assert_int_equal(a.n_rows, b.n_rows);
    for (int i = 0; i < a.n_rows; i++) {
        /* Field by field: the struct has padding after `rule`. */
        assert_int_equal(a.rows[i].rule, b.rows[i].rule);
        assert_true(a.rows[i].rel_mse == b.rows[i].rel_mse);
        assert_true(a.rows[i].rel_mse_se == b.rows[i].rel_mse_se);
        assert_true(a.rows[i].clip_over_amax == b.rows[i].clip_over_amax);
        assert_true(a.rows[i].zero_collapse == b.rows[i].zero_collapse);
        assert_true(a.rows[i].halved_fraction == b.rows[i].halved_fraction);
    }
    assert_memory_equal(ca, cb, sizeof ca);
}

static void test_bad_arguments(void **state) {
    (void)state;
    hs_dist d;
    assert_int_equal(hs_dist_parse("t:2", &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dist_parse("t:1.5", &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dist_parse("t:", &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dist_parse("t:5x", &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dist_parse("t:nan", &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dist_parse("cauchy", &d), HS_ERR_INVALID_ARG);
    assert_true(hs_last_error()[0] != '\0');
    assert_int_equal(hs_dist_parse("t:4.5", &d), HS_OK);
    char name[32];
    hs_dist_name(&d, name, sizeof name);
    assert_string_equal(name, "t:4.5");
    hs_dist g = dist_of("gaussian");
    hs_dist_name(&g, name, sizeof name);
    assert_string_equal(name, "gauss");
    double m, se;
    assert_int_equal(hs_theory_mse(&g, HS_ELEM_E2M1, 0.0, &m), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mse(&g, HS_ELEM_E2M1, -1.0, &m), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mse(&g, HS_ELEM_E2M1, NAN, &m), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mse(&g, HS_ELEM_E4M3, 3.0, &m), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mc_clip(&g, HS_ELEM_E2M1, 3.0, 1, 0, &m, &se), HS_ERR_INVALID_ARG);
    hs_theory_mc mc;
    assert_int_equal(hs_theory_mc_rules(&g, HS_ELEM_E2M1, 1, 10, 0, &mc), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mc_rules(&g, HS_ELEM_E2M1, 32, 1, 0, &mc), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_theory_mc_rules(&g, HS_ELEM_BF16, 32, 10, 0, &mc), HS_ERR_INVALID_ARG);
    double r = -1.0, out;
    assert_int_equal(hs_theory_curve(&g, HS_ELEM_E2M1, 32, 10, 0, &r, 1, &out),
                     HS_ERR_INVALID_ARG);
    hs_dist bad = {HS_DIST_STUDENT_T, 2.0};
    assert_int_equal(hs_theory_mse(&bad, HS_ELEM_E2M1, 3.0, &m), HS_ERR_INVALID_ARG);
    assert_string_equal(hs_theory_row_name(HS_THEORY_OPT), "opt");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_optima),
        cmocka_unit_test(test_integrator_closed_form),
        cmocka_unit_test(test_optimum_is_minimum),
        cmocka_unit_test(test_mc_matches_integral),
        cmocka_unit_test(test_group_opt_exact),
        cmocka_unit_test(test_mc_rules_heavy_tails),
        cmocka_unit_test(test_opt_ratio_vs_group),
        cmocka_unit_test(test_curve_consistency),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_mc_equals_library_stats),
        cmocka_unit_test(test_thread_independent),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
