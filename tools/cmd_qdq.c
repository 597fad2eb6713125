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

/* "--name value" or "--name=value" (see cmd_theory.c). */
static const char *opt_arg(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, len) != 0) return NULL;
    if (a[len] == '=') return a + len + 1;
    if (a[len] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        cli_error("%s needs a value", name);
        cli_hint("run `halfs qdq --help`");
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cmd_qdq(int argc, char **argv) {
    const char *fmt_name = NULL, *rule_name = NULL, *round_name = NULL;
    const char *in_path = NULL, *out_path = NULL;
    int64_t cols = 0, block = 0, rht = 0;
    int block_set = 0;
    uint64_t seed = 0, rht_seed = 0;
    int transpose = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            qdq_help(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--transpose")) {
            transpose = 1;
        } else if ((v = opt_arg(argc, argv, &i, "--format", &missing))) {
            fmt_name = v;
        } else if (!missing && (v = opt_arg(argc, argv, &i, "--scale", &missing))) {
            rule_name = v;
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
            cli_hint("run `halfs qdq --help` for the options");
            return CLI_USAGE;
        } else if (!in_path) {
            in_path = a;
        } else if (!out_path) {
            out_path = a;
        } else {
            cli_error("unexpected operand '%s' (qdq takes IN.f32 and OUT.f32)", a);
            return CLI_USAGE;
        }
    }
    if (!fmt_name) {
        cli_error("missing --format");
        cli_hint("e.g. --format mxfp4; run `halfs qdq --help` for the list");
        return CLI_USAGE;
    }
    if (cols == 0) {
        cli_error("missing --cols");
        cli_hint("give the number of columns of the row-major input, e.g. --cols 1024");
        return CLI_USAGE;
    }
    if (!in_path || !out_path) {
        cli_error("missing operand: qdq needs IN.f32 and OUT.f32");
        cli_hint("usage: halfs qdq --format F --scale RULE --cols C IN.f32 OUT.f32");
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
    if (st != HS_OK) return cli_fail_status(st, "qdq");
    if (rule_name) {
        hs_rule rule;
        if (hs_rule_parse(rule_name, &rule) != HS_OK) {
            cli_error("unknown scale rule '%s'", rule_name);
            cli_hint("rules: ocp, ceil, rceil, even, half, halfs, halfs-sigma, mse, max, 4over6");
            return CLI_USAGE;
        }
        if (!hs_rule_applies(&spec, rule)) {
            cli_error("scale rule '%s' does not apply to format %s", rule_name, fmt_name);
            cli_hint("run `halfs stats --format %s ...` to see its rules, or `halfs qdq --help`",
                     fmt_name);
            return CLI_USAGE;
        }
        spec.rule = rule;
    }
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
    if ((st = hs_quant_spec_validate(&spec)) != HS_OK) return cli_fail_status(st, "qdq");

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
    float *y = malloc((size_t)n * sizeof *y); /* rows × cols, IN's layout */
    if (!y) {
        cli_error("out of memory (%lld values)", (long long)n);
        free(x);
        return CLI_INTERNAL;
    }
    st = hs_qdq(&spec, x, rows, cols, cols, transpose, y, cols);
    free(x);
    if (st != HS_OK) {
        free(y);
        return cli_fail_status(st, "qdq");
    }
    int rc = cli_write_atomic(out_path, y, (size_t)n * sizeof *y);
    free(y);
    return rc == 0 ? CLI_OK : CLI_USAGE;
}
