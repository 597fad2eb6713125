/* cmd_qdq.c: `halfs qdq`: quantize and dequantize a raw float32 matrix with a named format and
 * scale rule (the exit-status contract of tools/cli.h). OUT has IN's shape; with --transpose the scale groups run
 * down the columns, with --rht D a random Hadamard transform is applied before quantizing and
 * undone after dequantizing (hs_qdq). NaN/Inf inputs are data and follow the format's rules.
 * Every input problem exits 1 before OUT is touched; OUT is written atomically.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "halfs/halfs.h"

/* The option table over o into t (CLI_QUANT_NOPTS + 1 entries); returns its length. */
static int qdq_table(cli_quant_opts *o, cli_opt *t) {
    int n = cli_quant_opts_table(o, 1, t);
    t[n] = (cli_opt){0};
    return n;
}

static void qdq_help(FILE *out) {
    cli_quant_opts o = {0};
    cli_opt t[CLI_QUANT_NOPTS + 1];
    qdq_table(&o, t);
    fprintf(out,
        "usage: halfs qdq --format F [--scale RULE] [--block N] [--rounding MODE] [--seed S]\n"
        "                 [--transpose] [--rht D] [--rht-seed S] --cols C IN.f32 OUT.f32\n"
        "\n"
        "Quantize and dequantize IN (raw little-endian float32, row-major, C columns) and\n"
        "write the result to OUT (same shape). Scale groups run along each row.\n"
        "\n"
        "options:\n");
    cli_opts_help(out, t);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error (OUT is not created or changed);\n"
        "2 internal error.\n"
        "example: halfs qdq --format mxfp4 --scale halfs --cols 1024 x.f32 x_q.f32\n");
}

int cmd_qdq(int argc, char **argv) {
    cli_quant_opts o = {0};
    cli_opt t[CLI_QUANT_NOPTS + 1];
    int nopts = qdq_table(&o, t);
    const char *ops[2] = {NULL, NULL};
    const cli_command cmd = {"qdq", t, qdq_help, 2, "qdq takes IN.f32 and OUT.f32"};
    int rc = cli_parse(&cmd, argc, argv, ops, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    cli_quant_opts_done(&o, t, nopts);
    const char *in_path = ops[0], *out_path = ops[1];
    rc = cli_quant_opts_require(&o, "qdq");
    if (rc != CLI_OK) return rc;
    if (!in_path || !out_path) {
        cli_error("missing operand: qdq needs IN.f32 and OUT.f32");
        cli_hint("usage: halfs qdq --format F --scale RULE --cols C IN.f32 OUT.f32");
        return CLI_USAGE;
    }
    hs_quant_spec spec;
    if ((rc = cli_quant_spec_from_opts(&o, "qdq", &spec, NULL)) != CLI_OK) return rc;

    float *x = NULL; /* rows × cols */
    int64_t n = 0, rows = 0, cols = o.cols;
    if ((rc = cli_quant_read_matrix(in_path, &o, &x, &n, &rows)) != CLI_OK) return rc;
    float *y = malloc((size_t)n * sizeof *y); /* rows × cols, IN's layout */
    if (!y) {
        cli_error("out of memory (%lld values)", (long long)n);
        free(x);
        return CLI_INTERNAL;
    }
    hs_status st = hs_qdq(&spec, x, rows, cols, cols, o.transpose, y, cols);
    free(x);
    if (st != HS_OK) {
        free(y);
        return cli_fail_status(st, "qdq");
    }
    rc = cli_write_atomic(out_path, y, (size_t)n * sizeof *y);
    free(y);
    return rc == 0 ? CLI_OK : CLI_USAGE;
}
