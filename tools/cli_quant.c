/* cli_quant.c: the quantizer options that `halfs qdq` and `halfs stats` share (--format, --scale,
 * --block, --rounding, --seed, --transpose, --rht, --rht-seed, --cols): scanning them, turning
 * them into a validated hs_quant_spec, and reading the float32 input matrix they describe.
 * Every problem is a usage error (exit 1) with one "halfs: error:" line, reported before any
 * output is written (DESIGN.md CLI contract).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_quant_opt(cli_quant_opts *o, int argc, char **argv, int *i, const char *cmd,
                  int with_scale) {
    const char *v;
    int missing = 0;
    if (!strcmp(argv[*i], "--transpose")) {
        o->transpose = 1;
    } else if ((v = cli_opt_value(argc, argv, i, "--format", cmd, &missing))) {
        o->format = v;
    } else if (with_scale && !missing &&
               (v = cli_opt_value(argc, argv, i, "--scale", cmd, &missing))) {
        o->rule = v;
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--rounding", cmd, &missing))) {
        o->rounding = v;
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--block", cmd, &missing))) {
        /* Any integer parses; the size check in cli_quant_spec_from_opts gives the one clear
         * message. */
        if (!cli_parse_i64("--block", v, INT64_MIN, INT64_MAX, &o->block)) return -1;
        o->block_set = 1;
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--cols", cmd, &missing))) {
        if (!cli_parse_i64("--cols", v, 1, INT32_MAX, &o->cols)) return -1;
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--rht-seed", cmd, &missing))) {
        if (!cli_parse_u64("--rht-seed", v, &o->rht_seed)) return -1;
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--rht", cmd, &missing))) {
        if (!cli_parse_i64("--rht", v, 0, 128, &o->rht)) {
            cli_hint("--rht is 0 (none), 16, 32, 64 or 128");
            return -1;
        }
    } else if (!missing && (v = cli_opt_value(argc, argv, i, "--seed", cmd, &missing))) {
        if (!cli_parse_u64("--seed", v, &o->seed)) return -1;
    } else {
        return missing ? -1 : 0;
    }
    return 1;
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
