/* cmd_stats.c: `halfs stats`: every scale rule that applies to a format, side by side, on one
 * float32 tensor: relative MSE, SQNR, zero-collapse, fraction of groups halved, and the input's
 * kurtosis (halfs/stats.h). A readable table by default, one JSON object with --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "halfs/halfs.h"

/* The option table over o and json into t (CLI_QUANT_NOPTS + 2 entries); returns the number
 * of quantizer entries (they come first). */
static int stats_table(cli_quant_opts *o, int *json, cli_opt *t) {
    int n = cli_quant_opts_table(o, 0, t);
    t[n] = (cli_opt){
        .name = "--json", .type = CLI_FLAG, .dst = json,
        .help = "print one JSON object instead of the table: keyed by rule name,\n"
                "each {\"rel_mse\", \"sqnr_db\", \"zero_collapse\",\n"
                "\"halved_fraction\"}, plus one top-level number \"kurtosis\"\n"
                "(the only key that is not a rule). A non-finite value (the\n"
                "SQNR of an exact result) is written as null."};
    t[n + 1] = (cli_opt){0};
    return n;
}

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
        "options:\n");
    cli_quant_opts o = {0};
    int json = 0;
    cli_opt t[CLI_QUANT_NOPTS + 2];
    stats_table(&o, &json, t);
    cli_opts_help(out, t);
    fprintf(out,
        "\n"
        "example: halfs stats --format fp4row --cols 1024 data/heavy_tailed.f32\n");
}

/* One rule's row. */
typedef struct {
    hs_rule rule;
    hs_qstats q;
} stats_row;

int cmd_stats(int argc, char **argv) {
    cli_quant_opts o = {0};
    int json = 0;
    cli_opt t[CLI_QUANT_NOPTS + 2];
    int nq = stats_table(&o, &json, t);
    const char *in_path = NULL;
    const cli_command cmd = {"stats", t, stats_help, 1, "stats takes one IN.f32"};
    int rc = cli_parse(&cmd, argc, argv, &in_path, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    cli_quant_opts_done(&o, t, nq);
    rc = cli_quant_opts_require(&o, "stats");
    if (rc != CLI_OK) return rc;
    if (!in_path) {
        cli_error("missing operand: stats needs IN.f32");
        cli_hint("usage: halfs stats --format F --cols C IN.f32");
        return CLI_USAGE;
    }
    hs_format fmt;
    hs_quant_spec spec;
    if ((rc = cli_quant_spec_from_opts(&o, "stats", &spec, &fmt)) != CLI_OK) return rc;

    /* Every rule that applies; a format without scales (bf16, fp32) keeps its preset rule. */
    stats_row rows_out[HS_RULE_COUNT];
    int nr = 0;
    for (int r = 0; r < HS_RULE_COUNT; r++)
        if (hs_rule_applies(&spec, (hs_rule)r)) rows_out[nr++].rule = (hs_rule)r;
    if (nr == 0) rows_out[nr++].rule = spec.rule;

    float *x = NULL; /* rows × cols */
    int64_t n = 0, rows = 0, cols = o.cols;
    int transpose = o.transpose;
    if ((rc = cli_quant_read_matrix(in_path, &o, &x, &n, &rows)) != CLI_OK) return rc;
    for (int r = 0; r < nr; r++) {
        spec.rule = rows_out[r].rule;
        hs_status st = hs_quant_stats(&spec, x, rows, cols, cols, transpose, &rows_out[r].q);
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
            cJSON *obj = cJSON_AddObjectToObject(root, hs_rule_name(rows_out[r].rule));
            if (!obj) break;
            cli_json_number(obj, "rel_mse", rows_out[r].q.rel_mse);
            cli_json_number(obj, "sqnr_db", rows_out[r].q.sqnr_db);
            cli_json_number(obj, "zero_collapse", rows_out[r].q.zero_collapse);
            cli_json_number(obj, "halved_fraction", rows_out[r].q.halved_fraction);
        }
        cli_json_number(root, "kurtosis", kurt);
        return cli_json_print(root);
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
