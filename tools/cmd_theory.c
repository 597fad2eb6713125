/* cmd_theory.c: `halfs theory`: the MSE-optimal clip of a known input distribution by numerical
 * integration (infinite group: the clip alpha minimising E[(x - Q_alpha(x))^2] over the input's
 * density, rounding to nearest with saturation) and, for finite groups, a Monte Carlo of every
 * scale rule of the library plus the per-group optimum (halfs/theory.h). `--curve` prints the
 * relative MSE versus the clip ratio clip/amax as CSV, the data of the theory figure (issue 6).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "halfs/halfs.h"
#include "halfs/theory.h"

#define MAX_GROUPS 16
#define DEFAULT_SAMPLES ((int64_t)1 << 20)

/* What the options set. */
typedef struct {
    hs_dist dist;
    hs_elem elem;
    int64_t groups[MAX_GROUPS];
    int ng;
    int64_t samples, draw;
    uint64_t seed;
    int json, curve;
    double rmin, rmax, rstep;
} theory_args;

static int parse_dist(const char *opt, const char *val, void *dst) {
    (void)opt;
    if (hs_dist_parse(val, dst) != HS_OK) {
        cli_error("--dist: %s", hs_last_error());
        cli_hint("use gauss, laplace or t:NU with NU > 2, e.g. --dist t:3");
        return 0;
    }
    return 1;
}

static int parse_elem(const char *opt, const char *val, void *dst) {
    (void)opt;
    if (!strcmp(val, "e2m1") || !strcmp(val, "fp4")) {
        *(hs_elem *)dst = HS_ELEM_E2M1;
    } else if (!strcmp(val, "int4")) {
        *(hs_elem *)dst = HS_ELEM_INT4;
    } else {
        cli_error("--format: unknown element format '%s'", val);
        cli_hint("theory knows e2m1 and int4");
        return 0;
    }
    return 1;
}

static int parse_groups(const char *opt, const char *val, void *dst);

enum { THEORY_NOPTS = 12 };

/* Defaults into *t and the option table over it into opts[THEORY_NOPTS]. */
static void theory_table(theory_args *t, cli_opt *opts) {
    *t = (theory_args){.dist = {HS_DIST_GAUSS, 0.0}, .elem = HS_ELEM_E2M1,
                       .samples = DEFAULT_SAMPLES, .seed = 1, .rmin = 0.2, .rmax = 1.05,
                       .rstep = 0.01};
    static char samples_help[128];
    snprintf(samples_help, sizeof samples_help,
             "values drawn per group size; groups = max(2, ceil(S/N))\n(default: %lld)",
             (long long)DEFAULT_SAMPLES);
    const cli_opt o[THEORY_NOPTS] = {
        {.name = "--dist", .type = CLI_FN, .fn = parse_dist, .dst = &t->dist, .arg = "D",
         .help = "input distribution: gauss, laplace, or t:NU (Student-t with NU\n"
                 "degrees of freedom, 2 < NU <= 1e6, scaled to unit variance)\n"
                 "(default: gauss)"},
        {.name = "--format", .type = CLI_FN, .fn = parse_elem, .dst = &t->elem, .arg = "F",
         .help = "element format: e2m1 or int4 (default: e2m1)"},
        {.name = "--group", .type = CLI_FN, .fn = parse_groups, .dst = t, .arg = "N",
         .help = "Monte Carlo group size, 2 <= N <= 65536; repeat the option or\n"
                 "give a comma list (e.g. --group 16,32,1024) for several\n"
                 "(default: 32 and 1024)"},
        {.name = "--samples", .type = CLI_I64, .dst = &t->samples, .lo = 2,
         .hi = (int64_t)1 << 28, .arg = "S", .help = samples_help},
        {.name = "--seed", .type = CLI_U64, .dst = &t->seed, .arg = "S",
         .help = "seed of the draws, an unsigned 64-bit integer (default: 1)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json,
         .help = "print one JSON object instead of the table:\n"
                 "  {\"format\", \"dist\", \"opt_clip_over_sigma\", \"mse_at_opt\",\n"
                 "   \"sqnr_db_at_opt\", \"samples\", \"seed\",\n"
                 "   \"monte_carlo\": {\"N\": {\"groups\": G, \"rules\": {RULE: {\n"
                 "     \"rel_mse\", \"rel_mse_se\", \"sqnr_db\", \"clip_over_amax\",\n"
                 "     \"zero_collapse\", \"halved_fraction\"}}}}}\n"
                 "RULE is a rule name or \"opt\"; rel_mse = sum(err^2)/sum(x^2) over\n"
                 "all groups, rel_mse_se its standard error, clip_over_amax the mean\n"
                 "effective clip (6*scale for e2m1) over the group's amax,\n"
                 "halved_fraction the share of groups whose scale is below the\n"
                 "ceil (E8M0) or max (FP32) scale"},
        {.name = "--curve", .type = CLI_FLAG, .dst = &t->curve,
         .help = "print CSV instead: a header 'group,ratio,rel_mse', then for each\n"
                 "group size and each clip ratio r = clip/amax of the grid, the\n"
                 "relative MSE with one continuous scale r*amax/6 per group (same\n"
                 "draws as the Monte Carlo); cannot be combined with --json"},
        {.name = "--ratio-min", .type = CLI_F64, .dst = &t->rmin, .flo = 0.01, .fhi = 100.0,
         .arg = "R", .help = "first ratio of the --curve grid (default: 0.2)"},
        {.name = "--ratio-max", .type = CLI_F64, .dst = &t->rmax, .flo = 0.01, .fhi = 100.0,
         .arg = "R",
         .help = "last ratio of the --curve grid (default: 1.05; note that the\n"
                 "'ceil' rule's effective clip lies at 1.5-3 x amax)"},
        {.name = "--ratio-step", .type = CLI_F64, .dst = &t->rstep, .flo = 1e-4, .fhi = 100.0,
         .arg = "R", .help = "step of the --curve grid (default: 0.01)"},
        {.name = "--draw", .type = CLI_I64, .dst = &t->draw, .lo = 1, .hi = (int64_t)1 << 28,
         .arg = "N",
         .help = "with an operand OUT: write N draws of --dist (seed --seed) to OUT\n"
                 "as raw float32 and exit (draw i is the i-th value of the Monte\n"
                 "Carlo stream); this made data/heavy_tailed.f32: --dist t:3\n"
                 "--seed 1 --draw 65536"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void theory_help(FILE *out) {
    fprintf(out,
        "usage: halfs theory [--dist gauss|laplace|t:NU] [--format e2m1|int4] [--group N]...\n"
        "                    [--samples S] [--seed S] [--json | --curve [--ratio-min R]\n"
        "                    [--ratio-max R] [--ratio-step R]]\n"
        "       halfs theory [--dist D] [--seed S] --draw N OUT.f32\n"
        "\n"
        "Quantization error of 4-bit elements for an input of known distribution, unit\n"
        "variance (sigma = 1). The clip alpha is the value mapped to the largest code\n"
        "(e2m1: 6, int4: 7).\n"
        "  1. infinite group, numerical integration: the MSE-optimal clip alpha*/sigma and\n"
        "     the MSE there (round to nearest, saturating);\n"
        "  2. finite groups of N iid draws, Monte Carlo: every scale rule that applies with\n"
        "     one scale per group (e2m1: E8M0 scales, the library's own quantizer; int4:\n"
        "     FP32 scales), and 'opt', the exact per-group continuous optimum.\n"
        "\n"
        "options:\n");
    theory_args t;
    cli_opt opts[THEORY_NOPTS];
    theory_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "example: halfs theory --dist t:3 --group 32,1024,4096 --json\n");
}

static double sqnr_db(double rel) { return rel > 0.0 ? -10.0 * log10(rel) : INFINITY; }

/* --group "N" or "N,N,...": appended to the sizes at dst (a theory_args). Returns 1 on
 * success. */
static int parse_groups(const char *opt, const char *val, void *dst) {
    (void)opt;
    int64_t *groups = ((theory_args *)dst)->groups;
    int *ng = &((theory_args *)dst)->ng;
    char buf[256];
    if (strlen(val) >= sizeof buf) {
        cli_error("--group: list '%.40s...' is too long", val);
        return 0;
    }
    strcpy(buf, val);
    char *save = NULL;
    int any = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*ng >= MAX_GROUPS) {
            cli_error("--group: at most %d group sizes", MAX_GROUPS);
            return 0;
        }
        int64_t n;
        if (!cli_parse_i64("--group", tok, 2, 65536, &n)) return 0;
        groups[(*ng)++] = n;
        any = 1;
    }
    if (!any) {
        cli_error("--group needs a size (e.g. --group 32)");
        return 0;
    }
    return 1;
}

int cmd_theory(int argc, char **argv) {
    theory_args t;
    cli_opt opts[THEORY_NOPTS];
    theory_table(&t, opts);
    const char *draw_path = NULL;
    const cli_command cmd = {"theory", opts, theory_help, 1,
                             "theory takes a file only with --draw N OUT.f32"};
    int rc = cli_parse(&cmd, argc, argv, &draw_path, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    hs_dist dist = t.dist;
    hs_elem elem = t.elem;
    int64_t *groups = t.groups;
    int ng = t.ng;
    int64_t samples = t.samples, draw = t.draw;
    uint64_t seed = t.seed;
    int json = t.json, curve = t.curve;
    double rmin = t.rmin, rmax = t.rmax, rstep = t.rstep;
    if (draw_path && !draw) {
        cli_error("unexpected operand '%s'", draw_path);
        cli_hint("theory takes a file only with --draw N OUT.f32; run `halfs theory --help`");
        return CLI_USAGE;
    }
    if (draw) {
        if (!draw_path) {
            cli_error("missing operand: --draw N needs an output file");
            cli_hint("e.g. halfs theory --dist t:3 --draw 65536 out.f32");
            return CLI_USAGE;
        }
        if (json || curve) {
            cli_error("--draw cannot be combined with --json or --curve");
            return CLI_USAGE;
        }
        float *buf = malloc((size_t)draw * sizeof *buf); /* draw values */
        if (!buf) {
            cli_error("out of memory for %lld draws", (long long)draw);
            return CLI_INTERNAL;
        }
        for (int64_t k = 0; k < draw; k++)
            buf[k] = (float)hs_dist_sample(&dist, seed, 0, (uint64_t)k);
        int rc = cli_write_atomic(draw_path, buf, (size_t)draw * sizeof *buf);
        free(buf);
        return rc == 0 ? CLI_OK : CLI_USAGE;
    }
    if (json && curve) {
        cli_error("--json and --curve cannot be combined");
        cli_hint("--curve prints CSV; run the two separately");
        return CLI_USAGE;
    }
    if (rmax < rmin) {
        cli_error("--ratio-max %g is below --ratio-min %g", rmax, rmin);
        return CLI_USAGE;
    }
    if (ng == 0) {
        groups[ng++] = 32;
        groups[ng++] = 1024;
    }
    char dname[64];
    hs_dist_name(&dist, dname, sizeof dname);
    const char *fname = elem == HS_ELEM_E2M1 ? "e2m1" : "int4";
    hs_status st;

    if (curve) {
        /* The grid is built by index so rounding does not drop its last point. */
        int nr = (int)floor((rmax - rmin) / rstep + 1e-9) + 1;
        if (nr > 100000) {
            cli_error("the --curve grid has %d points (max 100000)", nr);
            cli_hint("raise --ratio-step or narrow --ratio-min/--ratio-max");
            return CLI_USAGE;
        }
        double *ratios = malloc((size_t)nr * sizeof *ratios);
        double *rel = malloc((size_t)nr * sizeof *rel);
        if (!ratios || !rel) {
            free(ratios);
            free(rel);
            cli_error("out of memory");
            return CLI_INTERNAL;
        }
        for (int j = 0; j < nr; j++) ratios[j] = rmin + j * rstep;
        printf("group,ratio,rel_mse\n");
        for (int gi = 0; gi < ng; gi++) {
            int64_t nb = (samples + groups[gi] - 1) / groups[gi];
            if (nb < 2) nb = 2;
            st = hs_theory_curve(&dist, elem, groups[gi], nb, seed, ratios, nr, rel);
            if (st != HS_OK) {
                free(ratios);
                free(rel);
                return cli_fail_status(st, "theory --curve");
            }
            for (int j = 0; j < nr; j++)
                printf("%lld,%.4f,%.9g\n", (long long)groups[gi], ratios[j], rel[j]);
        }
        free(ratios);
        free(rel);
        return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
    }

    double aopt = 0.0, mopt = 0.0;
    st = hs_theory_opt_clip(&dist, elem, &aopt, &mopt);
    if (st != HS_OK) return cli_fail_status(st, "theory");
    hs_theory_mc mc[MAX_GROUPS];
    for (int gi = 0; gi < ng; gi++) {
        int64_t nb = (samples + groups[gi] - 1) / groups[gi];
        if (nb < 2) nb = 2;
        st = hs_theory_mc_rules(&dist, elem, groups[gi], nb, seed, &mc[gi]);
        if (st != HS_OK) return cli_fail_status(st, "theory Monte Carlo");
    }

    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (!root) {
            cli_error("out of memory");
            return CLI_INTERNAL;
        }
        cJSON_AddStringToObject(root, "format", fname);
        cJSON_AddStringToObject(root, "dist", dname);
        cli_json_number(root, "opt_clip_over_sigma", aopt);
        cli_json_number(root, "mse_at_opt", mopt);
        cli_json_number(root, "sqnr_db_at_opt", sqnr_db(mopt));
        cli_json_number(root, "samples", (double)samples);
        char seedbuf[32];
        snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
        /* A string: a 64-bit seed does not survive a JSON double. */
        cJSON_AddStringToObject(root, "seed", seedbuf);
        cJSON *mcs = cJSON_AddObjectToObject(root, "monte_carlo");
        for (int gi = 0; gi < ng && mcs; gi++) {
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)mc[gi].group);
            cJSON *g = cJSON_CreateObject();
            if (!g) break;
            /* A repeated --group size replaces the earlier entry rather than duplicating it. */
            cJSON_DeleteItemFromObjectCaseSensitive(mcs, key);
            cJSON_AddItemToObject(mcs, key, g);
            cli_json_number(g, "groups", (double)mc[gi].groups);
            cJSON *rules = cJSON_AddObjectToObject(g, "rules");
            for (int r = 0; r < mc[gi].n_rows && rules; r++) {
                const hs_theory_mc_row *row = &mc[gi].rows[r];
                cJSON *o = cJSON_AddObjectToObject(rules, hs_theory_row_name(row->rule));
                if (!o) break;
                cli_json_number(o, "rel_mse", row->rel_mse);
                cli_json_number(o, "rel_mse_se", row->rel_mse_se);
                cli_json_number(o, "sqnr_db", sqnr_db(row->rel_mse));
                cli_json_number(o, "clip_over_amax", row->clip_over_amax);
                cli_json_number(o, "zero_collapse", row->zero_collapse);
                cli_json_number(o, "halved_fraction", row->halved_fraction);
            }
        }
        return cli_json_print(root);
    }

    printf("halfs theory: %s elements, %s input (unit variance), seed %llu\n\n", fname, dname,
           (unsigned long long)seed);
    printf("infinite group (numerical integration, clip mapped to %s):\n",
           elem == HS_ELEM_E2M1 ? "6" : "7");
    printf("  optimal clip    alpha*/sigma   = %.4f\n", aopt);
    printf("  MSE at alpha*   MSE*/sigma^2   = %.5f   (SQNR %.2f dB)\n", mopt, sqnr_db(mopt));
    for (int gi = 0; gi < ng; gi++) {
        printf("\nMonte Carlo, groups of %lld (%lld groups):\n", (long long)mc[gi].group,
               (long long)mc[gi].groups);
        printf("  %-12s %11s %10s %8s %10s %14s %7s\n", "rule", "rel_mse", "+-se", "sqnr_db",
               "clip/amax", "zero_collapse", "halved");
        for (int r = 0; r < mc[gi].n_rows; r++) {
            const hs_theory_mc_row *row = &mc[gi].rows[r];
            printf("  %-12s %11.5g %10.2g %8.2f %10.3f %14.4f %7.3f\n",
                   hs_theory_row_name(row->rule), row->rel_mse, row->rel_mse_se,
                   sqnr_db(row->rel_mse), row->clip_over_amax, row->zero_collapse,
                   row->halved_fraction);
        }
    }
    printf("\nrel_mse = sum(err^2)/sum(x^2); clip/amax = effective clip over the group maximum;\n"
           "opt = the exact per-group continuous optimum (a lower bound for every rule).\n");
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}
