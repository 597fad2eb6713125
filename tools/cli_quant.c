/* cli_quant.c: the quantizer options that `halfs qdq` and `halfs stats` share (--format, --scale,
 * --block, --rounding, --seed, --transpose, --rht, --rht-seed, --cols): their option table
 * entries, turning them into a validated hs_quant_spec, and reading the float32 input matrix
 * they describe. Every problem is a usage error (exit 1) with one "halfs: error:" line,
 * reported before any output is written (the contract of tools/cli.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_quant_opts_table(cli_quant_opts *o, int with_scale, cli_opt *opts) {
    int n = 0;
    opts[n++] = (cli_opt){
        .name = "--format", .type = CLI_STR, .dst = &o->format, .arg = "F",
        .help = "mxfp4 (E2M1, E8M0 scale per block of 32), nvfp4 (E2M1, UE4M3\n"
                "scale per 16 + FP32 tensor scale), fp4 (E2M1, FP32 scale per 32),\n"
                "fp4row (E2M1, E8M0 scale per row), mxfp8-e4m3 (E4M3, E8M0 per\n"
                "32), int4 (FP32 scale per 32), bf16, fp32 (required)"};
    if (with_scale)
        opts[n++] = (cli_opt){
            .name = "--scale", .type = CLI_STR, .dst = &o->rule, .arg = "RULE",
            .help = "scale rule: ocp, ceil, rceil, even, half, halfs, halfs-sigma,\n"
                    "mse (E8M0 formats); max, half, halfs, mse (FP32/UE4M3 scales);\n"
                    "4over6 (nvfp4 only). A rule that does not apply to F is an\n"
                    "error. (default: the format's preset: halfs for mxfp4, fp4row;\n"
                    "max for nvfp4, fp4, int4; ocp for mxfp8-e4m3)"};
    /* Any integer parses; the size check in cli_quant_spec_from_opts gives the one clear
     * message. */
    opts[n++] = (cli_opt){
        .name = "--block", .type = CLI_I64, .dst = &o->block, .lo = INT64_MIN, .hi = INT64_MAX,
        .arg = "N",
        .help = "block size of block formats: 16, 32, 64 or 128 (default: the\n"
                "format's: 16 for nvfp4, 32 otherwise); not valid for fp4row,\n"
                "bf16, fp32"};
    opts[n++] = (cli_opt){
        .name = "--rounding", .type = CLI_STR, .dst = &o->rounding, .arg = "M",
        .help = "element rounding: rne (nearest, ties to even), rna (ties away\n"
                "from zero), rts (ties to smaller magnitude), sr (stochastic,\n"
                "unbiased) (default: rne)"};
    opts[n++] = (cli_opt){.name = "--seed", .type = CLI_U64, .dst = &o->seed, .arg = "S",
                          .help = "seed of stochastic rounding, unsigned 64-bit (default: 0)"};
    opts[n++] = (cli_opt){
        .name = "--transpose", .type = CLI_FLAG, .dst = &o->transpose,
        .help = "scale groups run down each column instead of along each row\n"
                "(the weight-gradient GEMM's layout); the output keeps the\n"
                "input's layout"};
    opts[n++] = (cli_opt){
        .name = "--rht", .type = CLI_I64, .dst = &o->rht, .lo = 0, .hi = 128, .arg = "D",
        .hint = "--rht is 0 (none), 16, 32, 64 or 128",
        .help = "random Hadamard transform of size D (16, 32, 64 or 128) along\n"
                "the group axis before quantizing, inverted after; that axis'\n"
                "length must be a multiple of D (default: 0, none)"};
    opts[n++] = (cli_opt){.name = "--rht-seed", .type = CLI_U64, .dst = &o->rht_seed, .arg = "S",
                          .help = "seed of the RHT's random signs (default: 0)"};
    opts[n++] = (cli_opt){
        .name = "--cols", .type = CLI_I64, .dst = &o->cols, .lo = 1, .hi = INT32_MAX, .arg = "C",
        .help = "columns per row; the input must hold a whole number of rows\n(required)"};
    return n;
}

void cli_quant_opts_done(cli_quant_opts *o, const cli_opt *opts, int n) {
    for (int k = 0; k < n; k++)
        if (opts[k].dst == &o->block) o->block_set = opts[k].given > 0;
}

int cli_quant_opts_require(const cli_quant_opts *o, const char *cmd) {
    if (!o->format) {
        cli_error("missing --format");
        cli_hint("e.g. --format mxfp4; run `halfs %s --help` for the list", cmd);
        return CLI_USAGE;
    }
    if (o->cols == 0) {
        cli_error("missing --cols");
        cli_hint("give the number of columns of the row-major input, e.g. --cols 1024");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_quant_spec_from_opts(const cli_quant_opts *o, const char *cmd, hs_quant_spec *spec,
                             hs_format *fmt_out) {
    hs_format fmt;
    if (hs_format_parse(o->format, &fmt) != HS_OK) {
        cli_error("unknown format '%s'", o->format);
        cli_hint("formats: mxfp4, nvfp4, fp4, fp4row, mxfp8-e4m3, int4, bf16, fp32");
        return CLI_USAGE;
    }
    hs_status st = hs_quant_spec_init(spec, fmt);
    if (st != HS_OK) return cli_fail_status(st, cmd);
    if (o->rule) {
        hs_rule rule;
        if (hs_rule_parse(o->rule, &rule) != HS_OK) {
            cli_error("unknown scale rule '%s'", o->rule);
            cli_hint("rules: ocp, ceil, rceil, even, half, halfs, halfs-sigma, mse, max, 4over6");
            return CLI_USAGE;
        }
        if (!hs_rule_applies(spec, rule)) {
            cli_error("scale rule '%s' does not apply to format %s", o->rule, o->format);
            cli_hint("run `halfs stats --format %s ...` to see its rules, or `halfs %s --help`",
                     o->format, cmd);
            return CLI_USAGE;
        }
        spec->rule = rule;
    }
    if (o->rounding) {
        hs_rounding r;
        if (hs_rounding_parse(o->rounding, &r) != HS_OK) {
            cli_error("unknown rounding '%s'", o->rounding);
            cli_hint("rounding modes: rne, rna, rts, sr");
            return CLI_USAGE;
        }
        spec->rounding = r;
    }
    if (o->block_set) {
        if (spec->group != HS_GROUP_BLOCK) {
            cli_error("--block does not apply to format %s (it has no blocks)", o->format);
            return CLI_USAGE;
        }
        if (o->block != 16 && o->block != 32 && o->block != 64 && o->block != 128) {
            cli_error("--block %lld: block size must be 16, 32, 64 or 128", (long long)o->block);
            return CLI_USAGE;
        }
        spec->block = (int32_t)o->block;
    }
    if (o->rht != 0 && o->rht != 16 && o->rht != 32 && o->rht != 64 && o->rht != 128) {
        cli_error("--rht %lld: size must be 0, 16, 32, 64 or 128", (long long)o->rht);
        return CLI_USAGE;
    }
    spec->rht = (int32_t)o->rht;
    spec->rht_seed = o->rht_seed;
    spec->seed = o->seed;
    if ((st = hs_quant_spec_validate(spec)) != HS_OK) return cli_fail_status(st, cmd);
    if (fmt_out) *fmt_out = fmt;
    return CLI_OK;
}

int cli_quant_read_matrix(const char *path, const cli_quant_opts *o, float **x, int64_t *n,
                          int64_t *rows) {
    float *buf = NULL;
    int64_t count = 0;
    if (cli_read_f32(path, &buf, &count) != 0) return CLI_USAGE;
    if (count == 0) {
        cli_error("'%s' is empty", path);
        free(buf);
        return CLI_USAGE;
    }
    if (count % o->cols != 0) {
        cli_error("'%s' holds %lld values, not a multiple of --cols %lld", path,
                  (long long)count, (long long)o->cols);
        cli_hint("--cols is the row length of the row-major matrix");
        free(buf);
        return CLI_USAGE;
    }
    /* The RHT runs along the group axis: the rows' length, or the columns' with --transpose. */
    int64_t r = count / o->cols;
    int64_t axis = o->transpose ? r : o->cols;
    if (o->rht && axis % o->rht != 0) {
        cli_error("--rht %lld needs the group axis (%s, length %lld) to be a multiple of %lld",
                  (long long)o->rht, o->transpose ? "rows" : "cols", (long long)axis,
                  (long long)o->rht);
        free(buf);
        return CLI_USAGE;
    }
    *x = buf;
    *n = count;
    *rows = r;
    return CLI_OK;
}
