/* cmd_stats.c: `halfs stats`: every scale rule that applies to a format, side by side, on one
 * float32 tensor: relative MSE, SQNR, zero-collapse, fraction of groups halved, and the input's
 * kurtosis (halfs/stats.h). A readable table by default, one JSON object with --json.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "halfs/halfs.h"

static void stats_help(FILE *out) {
    fprintf(out,
        "usage: halfs stats --format F [--block N] [--rounding MODE] [--seed S] [--transpose]\n"
        "                   [--rht D] [--rht-seed S] --cols C [--json] IN.f32\n"
        "\n"
        "Quantize IN (raw little-endian float32, row-major, C columns) with format F under\n"
        "every scale rule that applies to F and print, per rule:\n"
        "  rel_mse          sum((x - Q(x))^2) / sum(x^2)   (error energy / signal energy)\n"
        "  sqnr_db          -10 log10(rel_mse)\n"
        "  zero_collapse    fraction of nonzero inputs that quantize to zero\n"
        "  halved_fraction  fraction of groups whose scale the rule set below the\n"
        "                   ceil (E8M0) / max (FP32, UE4M3) scale\n"
        "and the kurtosis E[(x-mean)^4]/E[(x-mean)^2]^2 of the input (3 for a Gaussian).\n"
        "Non-finite inputs are excluded from the sums (their count is printed). The table\n"
        "marks the rule with the lowest rel_mse with '*'.\n"
        "\n"
        "options:\n"
        "  --format F      mxfp4, nvfp4, fp4, fp4row, mxfp8-e4m3, int4, bf16, fp32 (required)\n"
        "  --block N       block size of block formats: 16, 32, 64 or 128 (default: the\n"
        "                  format's: 16 for nvfp4, 32 otherwise); not valid for fp4row,\n"
        "                  bf16, fp32\n"
        "  --rounding M    rne, rna, rts or sr (default: rne)\n"
        "  --seed S        seed of stochastic rounding (default: 0)\n"
        "  --transpose     scale groups run down each column instead of along each row\n"
        "  --rht D         random Hadamard transform of size 16/32/64/128 before\n"
        "                  quantizing (default: 0, none)\n"
        "  --rht-seed S    seed of the RHT's signs (default: 0)\n"
        "  --cols C        columns per row; IN must hold a whole number of rows (required)\n"
        "  --json          print one JSON object instead of the table: keyed by rule name,\n"
        "                  each {\"rel_mse\", \"sqnr_db\", \"zero_collapse\",\n"
        "                  \"halved_fraction\"}, plus one top-level number \"kurtosis\"\n"
        "                  (the only key that is not a rule). A non-finite value (the\n"
        "                  SQNR of an exact result) is written as null.\n"
        "  --help          this text\n"
        "\n"
        "example: halfs stats --format fp4row --cols 1024 data/heavy_tailed.f32\n");
}

static const char *opt_arg(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, len) != 0) return NULL;
    if (a[len] == '=') return a + len + 1;
    if (a[len] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        cli_error("%s needs a value", name);
        cli_hint("run `halfs stats --help`");
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

static void json_num(cJSON *obj, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

/* One rule's row. */
typedef struct {
    hs_rule rule;
    hs_qstats q;
} stats_row;

int cmd_stats(int argc, char **argv) {
    const char *fmt_name = NULL, *round_name = NULL, *in_path = NULL;
    int64_t cols = 0, block = 0, rht = 0;
    int block_set = 0;
    uint64_t seed = 0, rht_seed = 0;
    int transpose = 0, json = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            stats_help(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--transpose")) {
            transpose = 1;
        } else if ((v = opt_arg(argc, argv, &i, "--format", &missing))) {
            fmt_name = v;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--rounding", &missing))) {
            round_name = v;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--block", &missing))) {
            /* Any integer parses; the size check below gives the one clear message. */
            if (!cli_parse_i64("--block", v, INT64_MIN, INT64_MAX, &block)) return CLI_USAGE;
            block_set = 1;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--cols", &missing))) {
            if (!cli_parse_i64("--cols", v, 1, INT32_MAX, &cols)) return CLI_USAGE;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--rht-seed", &missing))) {
            if (!cli_parse_u64("--rht-seed", v, &rht_seed)) return CLI_USAGE;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--rht", &missing))) {
            if (!cli_parse_i64("--rht", v, 0, 128, &rht)) {
                cli_hint("--rht is 0 (none), 16, 32, 64 or 128");
                return CLI_USAGE;
            }
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--seed", &missing))) {
            if (!cli_parse_u64("--seed", v, &seed)) return CLI_USAGE;
        } else if (missing) {
            return CLI_USAGE;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("unknown option '%s'", a);
            cli_hint("run `halfs stats --help` for the options");
            return CLI_USAGE;
        } else if (!in_path) {
            in_path = a;
        } else {
            cli_error("unexpected operand '%s' (stats takes one IN.f32)", a);
            return CLI_USAGE;
        }
    }
    if (!fmt_name) {
        cli_error("missing --format");
        cli_hint("e.g. --format mxfp4; run `halfs stats --help` for the list");
        return CLI_USAGE;
    }
    if (cols == 0) {
        cli_error("missing --cols");
        cli_hint("give the number of columns of the row-major input, e.g. --cols 1024");
        return CLI_USAGE;
    }
    if (!in_path) {
        cli_error("missing operand: stats needs IN.f32");
        cli_hint("usage: halfs stats --format F --cols C IN.f32");
        return CLI_USAGE;
    }

    hs_format fmt;
    if (hs_format_parse(fmt_name, &fmt) != HS_OK) {
        cli_error("unknown format '%s'", fmt_name);
        cli_hint("formats: mxfp4, nvfp4, fp4, fp4row, mxfp8-e4m3, int4, bf16, fp32");
        return CLI_USAGE;
    }
    hs_quant_spec spec;
    hs_status st = hs_quant_spec_init(&spec, fmt);
    if (st != HS_OK) return cli_fail_status(st, "stats");
    if (round_name) {
        hs_rounding r;
        if (hs_rounding_parse(round_name, &r) != HS_OK) {
            cli_error("unknown rounding '%s'", round_name);
            cli_hint("rounding modes: rne, rna, rts, sr");
            return CLI_USAGE;
        }
        spec.rounding = r;
    }
    if (block_set) {
        if (spec.group != HS_GROUP_BLOCK) {
            cli_error("--block does not apply to format %s (it has no blocks)", fmt_name);
            return CLI_USAGE;
        }
        if (block != 16 && block != 32 && block != 64 && block != 128) {
            cli_error("--block %lld: block size must be 16, 32, 64 or 128", (long long)block);
            return CLI_USAGE;
        }
        spec.block = (int32_t)block;
    }
    if (rht != 0 && rht != 16 && rht != 32 && rht != 64 && rht != 128) {
        cli_error("--rht %lld: size must be 0, 16, 32, 64 or 128", (long long)rht);
        return CLI_USAGE;
    }
    spec.rht = (int32_t)rht;
    spec.rht_seed = rht_seed;
    spec.seed = seed;
    if ((st = hs_quant_spec_validate(&spec)) != HS_OK) return cli_fail_status(st, "stats");

    /* Every rule that applies; a format without scales (bf16, fp32) keeps its preset rule. */
    stats_row rows_out[HS_RULE_COUNT];
    int nr = 0;
    for (int r = 0; r < HS_RULE_COUNT; r++)
        if (hs_rule_applies(&spec, (hs_rule)r)) rows_out[nr++].rule = (hs_rule)r;
    if (nr == 0) rows_out[nr++].rule = spec.rule;

    float *x = NULL;
    int64_t n = 0;
    if (cli_read_f32(in_path, &x, &n) != 0) return CLI_USAGE;
    if (n == 0) {
        cli_error("'%s' is empty", in_path);
        free(x);
        return CLI_USAGE;
    }
    if (n % cols != 0) {
        cli_error("'%s' holds %lld values, not a multiple of --cols %lld", in_path, (long long)n,
                  (long long)cols);
        cli_hint("--cols is the row length of the row-major matrix");
        free(x);
        return CLI_USAGE;
    }
    int64_t rows = n / cols;
    int64_t axis = transpose ? rows : cols;
    if (rht && axis % rht != 0) {
        cli_error("--rht %lld needs the group axis (%s, length %lld) to be a multiple of %lld",
                  (long long)rht, transpose ? "rows" : "cols", (long long)axis, (long long)rht);
        free(x);
        return CLI_USAGE;
    }
    for (int r = 0; r < nr; r++) {
        spec.rule = rows_out[r].rule;
        st = hs_quant_stats(&spec, x, rows, cols, cols, transpose, &rows_out[r].q);
        if (st != HS_OK) {
            free(x);
            return cli_fail_status(st, "stats");
        }
    }
    double kurt = hs_kurtosis(x, n);
    free(x);

    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (!root) {
            cli_error("out of memory");
            return CLI_INTERNAL;
        }
        for (int r = 0; r < nr; r++) {
            cJSON *o = cJSON_AddObjectToObject(root, hs_rule_name(rows_out[r].rule));
            if (!o) break;
            json_num(o, "rel_mse", rows_out[r].q.rel_mse);
            json_num(o, "sqnr_db", rows_out[r].q.sqnr_db);
            json_num(o, "zero_collapse", rows_out[r].q.zero_collapse);
            json_num(o, "halved_fraction", rows_out[r].q.halved_fraction);
        }
        json_num(root, "kurtosis", kurt);
        char *s = cJSON_Print(root);
        cJSON_Delete(root);
        if (!s) {
            cli_error("out of memory printing JSON");
            return CLI_INTERNAL;
        }
        puts(s);
        cJSON_free(s);
        return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
    }

    int best = 0;
    for (int r = 1; r < nr; r++)
        if (rows_out[r].q.rel_mse < rows_out[best].q.rel_mse) best = r;
    const hs_qstats *q0 = &rows_out[0].q;
    printf("%s: %lld x %lld, format %s", in_path, (long long)rows, (long long)cols,
           hs_format_name(fmt));
    if (spec.group == HS_GROUP_BLOCK) printf(" (block %d)", (int)spec.block);
    printf(", groups along %s, rounding %s", transpose ? "columns" : "rows",
           hs_rounding_name(spec.rounding));
    if (spec.rht) printf(", RHT %d", (int)spec.rht);
    printf("\nkurtosis %.3f (Gaussian: 3), %lld groups, %lld finite values", kurt,
           (long long)q0->groups, (long long)q0->n);
    if (q0->n_nonfinite) printf(", %lld non-finite (excluded)", (long long)q0->n_nonfinite);
    printf("\n\n  %-12s %12s %9s %14s %8s\n", "rule", "rel_mse", "sqnr_db", "zero_collapse",
           "halved");
    for (int r = 0; r < nr; r++) {
        const hs_qstats *q = &rows_out[r].q;
        printf("%c %-12s %12.5g %9.2f %14.5f %8.4f\n", r == best ? '*' : ' ',
               hs_rule_name(rows_out[r].rule), q->rel_mse, q->sqnr_db, q->zero_collapse,
               q->halved_fraction);
    }
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}
