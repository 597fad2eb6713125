/* cmd_qdq.c: `halfs qdq`: quantize and dequantize a raw float32 matrix with a named format and
 * scale rule (DESIGN.md CLI contract). OUT has IN's shape; with --transpose the scale groups run
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

static void qdq_help(FILE *out) {
    fprintf(out,
        "usage: halfs qdq --format F [--scale RULE] [--block N] [--rounding MODE] [--seed S]\n"
        "                 [--transpose] [--rht D] [--rht-seed S] --cols C IN.f32 OUT.f32\n"
        "\n"
        "Quantize and dequantize IN (raw little-endian float32, row-major, C columns) and\n"
        "write the result to OUT (same shape). Scale groups run along each row.\n"
        "\n"
        "options:\n"
        "  --format F      mxfp4 (E2M1, E8M0 scale per block of 32), nvfp4 (E2M1, UE4M3\n"
        "                  scale per 16 + FP32 tensor scale), fp4 (E2M1, FP32 scale per 32),\n"
        "                  fp4row (E2M1, E8M0 scale per row), mxfp8-e4m3 (E4M3, E8M0 per\n"
        "                  32), int4 (FP32 scale per 32), bf16, fp32 (required)\n"
        "  --scale RULE    scale rule: ocp, ceil, rceil, even, half, halfs, halfs-sigma,\n"
        "                  mse (E8M0 formats); max, half, halfs, mse (FP32/UE4M3 scales);\n"
        "                  4over6 (nvfp4 only). A rule that does not apply to F is an\n"
        "                  error. (default: the format's preset: halfs for mxfp4, fp4row;\n"
        "                  max for nvfp4, fp4, int4; ocp for mxfp8-e4m3)\n"
        "  --block N       block size of block formats: 16, 32, 64 or 128 (default: the\n"
        "                  format's: 16 for nvfp4, 32 otherwise); not valid for fp4row,\n"
        "                  bf16, fp32\n"
        "  --rounding M    element rounding: rne (nearest, ties to even), rna (ties away\n"
        "                  from zero), rts (ties to smaller magnitude), sr (stochastic,\n"
        "                  unbiased) (default: rne)\n"
        "  --seed S        seed of stochastic rounding, unsigned 64-bit (default: 0)\n"
        "  --transpose     scale groups run down each column instead of along each row\n"
        "                  (the weight-gradient GEMM's layout); OUT keeps IN's layout\n"
        "  --rht D         random Hadamard transform of size D (16, 32, 64 or 128) along\n"
        "                  the group axis before quantizing, inverted after; that axis'\n"
        "                  length must be a multiple of D (default: 0, none)\n"
        "  --rht-seed S    seed of the RHT's random signs (default: 0)\n"
        "  --cols C        columns per row; IN must hold a whole number of rows (required)\n"
        "  --help          this text\n"
        "\n"
        "exit status: 0 ok; 1 usage or input error (OUT is not created or changed);\n"
        "2 internal error.\n"
        "example: halfs qdq --format mxfp4 --scale halfs --cols 1024 x.f32 x_q.f32\n");
}

int cmd_qdq(int argc, char **argv) {
    cli_quant_opts o = {0};
    const char *in_path = NULL, *out_path = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int got;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            qdq_help(stdout);
            return CLI_OK;
        } else if ((got = cli_quant_opt(&o, argc, argv, &i, "qdq", 1)) != 0) {
            if (got < 0) return CLI_USAGE;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_unknown_option(a, "qdq");
        } else if (!in_path) {
            in_path = a;
        } else if (!out_path) {
            out_path = a;
        } else {
            cli_error("unexpected operand '%s' (qdq takes IN.f32 and OUT.f32)", a);
            return CLI_USAGE;
        }
    }
    int rc = cli_quant_opts_require(&o, "qdq");
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
