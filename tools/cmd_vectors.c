/* cmd_vectors.c: `halfs vectors --out DIR`: conformance vectors for other implementations of
 * halfs' quantizers (a CUDA or Triton MXFP4 Half-S kernel, halfs.conformance in Python).
 *
 * For every named format × every scale rule that applies × every rounding × every grouping the
 * format's scale allows (blocks of 16/32/64/128, one scale per row, per tensor, 16×16 tiles,
 * with and without the NVFP4 per-tensor second level), it writes the expected packed codes,
 * scales and dequantized values of the reference quantizer (hs_quantize_ref,
 * hs_dequantize_ref) on two inputs per format:
 *   finite   every tie point of the element grid at the scale the rule picks and at its
 *            neighbours (the anchor value gmax·2^k in each 16-value chunk fixes the scale),
 *            values past the grid's top (saturation), all-zero chunks and rows, float32
 *            subnormal chunks and rows, exact grid values, signed zeros, Half-S near-ties (E2M1:
 *            the random 16-value blocks whose half and ceil scales give the closest errors),
 *            and heavy-tailed random rows;
 *   special  NaN, +Inf and −Inf chunks, scales pushed to the top and bottom of the scale
 *            format (exponent clamps), mixed with zero and subnormal chunks.
 * Layout of DIR (all little-endian; docs/PYTHON.md, "Conformance vectors"):
 *   manifest.json          the inputs and one object per case: its spec fields and files
 *   inputs/FMT.KIND.f32    rows × cols float32
 *   cases/NAME.codes       rows × row_bytes: codes packed as in halfs/quant.h, without padding
 *   cases/NAME.scales      rows × groups_per_row scales (1 byte E8M0/UE4M3, 4 bytes FP32)
 *   cases/NAME.deq.f32     rows × cols dequantized values
 * Stochastic rounding cases use halfs' counter-based generator (halfs/rng.h) with the seed and
 * stream of the manifest; only an implementation of that generator can match them.
 * DIR must not exist: everything is written to a temporary directory beside it and renamed.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "halfs/halfs.h"

enum { VROWS = 48, VCOLS = 128, CHUNK = 16 };

/* ---------------------------------------------------------------- inputs */

/* The positive finite values of an element format's grid, ascending (at most 256). */
static int elem_grid(hs_elem e, float *g) {
    int n = 0;
    switch (e) {
    case HS_ELEM_E2M1:
        for (int c = 1; c < 8; c++) g[n++] = hs_e2m1_decode((uint8_t)c);
        break;
    case HS_ELEM_E4M3:
        for (int c = 1; c < 0x7F; c++) g[n++] = hs_e4m3_decode((uint8_t)c);
        break;
    case HS_ELEM_E5M2:
        for (int c = 1; c < 0x7C; c++) g[n++] = hs_e5m2_decode((uint8_t)c);
        break;
    case HS_ELEM_INT4:
        for (int c = 1; c <= 7; c++) g[n++] = (float)c;
        break;
    case HS_ELEM_INT8:
        for (int c = 1; c <= 127; c++) g[n++] = (float)c;
        break;
    case HS_ELEM_BF16: /* [1, 2) in bf16: 128 values; ties are between them */
        for (int c = 0; c < 128; c++) g[n++] = hs_bf16_decode((uint16_t)(0x3F80 + c));
        g[n++] = 2.0f;
        break;
    default: /* fp32: no grid to tie on */
        g[n++] = 1.0f;
        break;
    }
    return n;
}

/* The tie points of a grid: the midpoints of neighbouring values (ng − 1 of them). */
static int tie_points(const float *g, int ng, float *t) {
    int n = 0;
    for (int i = 0; i + 1 < ng; i++) t[n++] = 0.5f * (g[i] + g[i + 1]);
    return n;
}

/* A deterministic heavy-tailed value (Student-t, 3 degrees of freedom, unit variance). */
static float heavy(uint64_t stream, uint64_t i) {
    static const hs_dist t3 = {HS_DIST_STUDENT_T, 3.0};
    return (float)hs_dist_sample(&t3, 20261207u, stream, i);
}

/* SSE of one 16-value E2M1 block at E8M0 scales ceil and ceil−1 (the two Half-S compares). */
static double block_gap(const float *x) {
    hs_quant_spec s;
    hs_quant_spec_init(&s, HS_FMT_MXFP4);
    s.block = CHUNK;
    float y[CHUNK];
    double e[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        s.rule = k ? HS_RULE_HALF : HS_RULE_CEIL;
        if (hs_qdq(&s, x, 1, CHUNK, CHUNK, 0, y, CHUNK) != HS_OK) return INFINITY;
        for (int i = 0; i < CHUNK; i++) e[k] += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    return e[0] > 0 ? fabs(e[0] - e[1]) / e[0] : INFINITY;
}

/* Row r of the `finite` input of element e into x (VCOLS values). */
static void finite_row(hs_elem e, int r, float *x) {
    float g[260], t[260];
    int ng = elem_grid(e, g);
    float gmax = g[ng - 1];
    int nt = tie_points(g, ng, t);
    int k = (r % 5) - 2; /* the anchor's binade moves with the row: 2^-2 .. 2^2 */
    float anchor = ldexpf(gmax, k);
    for (int c = 0; c < VCOLS; c += CHUNK) {
        float *ch = x + c;
        int ci = c / CHUNK;
        for (int i = 0; i < CHUNK; i++) ch[i] = 0.0f;
        if (r < 16) { /* ties at the anchor's scale and at ½, ¼, 2× of it; the 15 values of a
                         chunk walk through the grid's ties, so every tie appears at every shift */
            static const int shift[8] = {0, -1, 0, -2, 0, 1, -1, 0};
            ch[0] = ci & 1 ? -anchor : anchor;
            for (int i = 1; i < CHUNK; i++) {
                int j = r * 15 + (i - 1); /* 16 rows × 15: every tie of grids up to 240 */
                float v = nt ? ldexpf(t[j % nt], k + shift[ci]) : 0.0f;
                ch[i] = (i + r) & 1 ? -v : v;
            }
        } else if (r < 20) { /* saturation: amax 1.5–1.99 × the grid's top at the scale */
            static const float over[4] = {1.5f, 1.75f, 1.875f, 1.9921875f};
            for (int i = 0; i < CHUNK; i++) {
                float f = over[(i + ci + r) % 4];
                ch[i] = ldexpf(gmax * (i == 0 ? over[(ci + r) % 4] : f * (float)(i % 5) / 5.0f), k);
                if ((i + ci) & 1) ch[i] = -ch[i];
            }
        } else if (r < 22) { /* exact grid values and signed zeros, every other chunk zero */
            if (ci & 1) continue;
            for (int i = 0; i < CHUNK; i++) {
                float v = ldexpf(g[(i * 7 + ci + r) % ng], k);
                ch[i] = i % 4 == 3 ? -0.0f : (i & 1 ? -v : v);
            }
        } else if (r == 22) { /* all zero */
        } else if (r < 25) { /* float32 subnormals, mixed with one normal chunk in row 24 */
            for (int i = 0; i < CHUNK; i++) {
                float v = ldexpf((float)(1 + (i * 37 + ci) % 200), -149 + (i % 3));
                ch[i] = i & 1 ? -v : v;
            }
            if (r == 24 && ci == 3)
                for (int i = 0; i < CHUNK; i++) ch[i] = ldexpf(1.0f + i / 16.0f, -120);
        } else if (r < 36 && e == HS_ELEM_E2M1) {
            /* Half-S near-ties: of 64 candidate blocks, the one whose ceil and half scales give
             * the closest errors */
            double best = INFINITY;
            float cand[CHUNK];
            for (int j = 0; j < 64; j++) {
                for (int i = 0; i < CHUNK; i++)
                    cand[i] = heavy((uint64_t)(r * 8 + ci), (uint64_t)(j * CHUNK + i));
                double gap = block_gap(cand);
                if (gap < best) {
                    best = gap;
                    memcpy(ch, cand, sizeof cand);
                }
            }
        } else { /* heavy-tailed random, scaled by the row's binade */
            for (int i = 0; i < CHUNK; i++)
                ch[i] = ldexpf(heavy(1000u + (uint64_t)r, (uint64_t)(c + i)), k);
        }
    }
}

/* Row r of the `special` input into x (VCOLS values): non-finite values and scale clamps. */
static void special_row(hs_elem e, int r, float *x) {
    float g[260];
    int ng = elem_grid(e, g);
    for (int c = 0; c < VCOLS; c++) x[c] = heavy(2000u + (uint64_t)r, (uint64_t)c);
    for (int c = 0; c < VCOLS; c += CHUNK) {
        float *ch = x + c;
        switch ((r + c / CHUNK) % 8) {
        case 0: ch[(r + c) % CHUNK] = NAN; break;
        case 1: ch[(r * 3 + c) % CHUNK] = INFINITY; break;
        case 2: ch[(r * 5 + c) % CHUNK] = -INFINITY; break;
        case 3: /* the largest floats: E8M0 / UE4M3 scales clamp at their top */
            for (int i = 0; i < CHUNK; i++) ch[i] = (i & 1 ? -1.0f : 1.0f) * ldexpf(1.0f + i / 17.0f, 127);
            ch[0] = FLT_MAX;
            break;
        case 4: /* tiny normals: the scale clamps at its bottom */
            for (int i = 0; i < CHUNK; i++) ch[i] = ldexpf(g[(i + r) % ng], -126 - (i % 3));
            break;
        case 5: memset(ch, 0, CHUNK * sizeof *ch); break;
        case 6:
            for (int i = 0; i < CHUNK; i++) ch[i] = ldexpf((float)(i + 1), -149);
            break;
        default: break; /* heavy-tailed */
        }
    }
}

/* ---------------------------------------------------------------- cases */

enum { MAX_CASES = 4096 };
typedef struct {
    const char *dir;  /* the temporary directory being filled */
    cJSON *cases;     /* the manifest's array */
    int64_t n, bytes; /* cases and bytes written */
    hs_quant_spec done[MAX_CASES]; /* the specs written: a format whose grouping makes it
                                      another format's case (fp4row in blocks is mxfp4) adds none */
    int ndone;
} vec_out;

static int same_case(const hs_quant_spec *a, const hs_quant_spec *b) {
    return a->elem == b->elem && a->scale_fmt == b->scale_fmt && a->group == b->group &&
           (a->group != HS_GROUP_BLOCK || a->block == b->block) && a->tile2d == b->tile2d &&
           a->two_level == b->two_level && a->rule == b->rule && a->rounding == b->rounding &&
           a->sr_prescale == b->sr_prescale;
}

static int write_file(const vec_out *o, const char *rel, const void *p, size_t bytes) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", o->dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f) {
        cli_error("cannot create '%s': %s", path, strerror(errno));
        return 0;
    }
    int ok = fwrite(p, 1, bytes, f) == bytes;
    ok = (fclose(f) == 0) && ok;
    if (!ok) cli_error("cannot write '%s': %s", path, strerror(errno));
    return ok;
}

/* Bytes of one packed row of `cols` elements without padding. */
static int64_t row_bytes(hs_elem e, int64_t cols) {
    switch (e) {
    case HS_ELEM_E2M1:
    case HS_ELEM_INT4: return (cols + 1) / 2;
    case HS_ELEM_BF16: return 2 * cols;
    case HS_ELEM_FP32: return 4 * cols;
    default: return cols;
    }
}

static const char *group_name(const hs_quant_spec *s, char *buf, size_t n) {
    if (s->group == HS_GROUP_TENSOR) snprintf(buf, n, "tensor");
    else if (s->group == HS_GROUP_ROW) snprintf(buf, n, "row");
    else if (s->tile2d) snprintf(buf, n, "tile%d", (int)s->tile2d);
    else snprintf(buf, n, "b%d", (int)s->block);
    return buf;
}

static const char *scale_name(hs_scale_fmt f) {
    static const char *const n[HS_SCALE_COUNT] = {"none", "e8m0", "ue4m3", "fp32"};
    return (unsigned)f < HS_SCALE_COUNT ? n[f] : "?";
}

/* One case: quantize x with the reference, write codes, scales and dequantized values, add the
 * manifest entry. Returns CLI_OK or an exit code after printing why. */
static int write_case(vec_out *o, hs_format fmt, const hs_quant_spec *s, const char *input,
                      const float *x) {
    char gname[32], name[160];
    group_name(s, gname, sizeof gname);
    snprintf(name, sizeof name, "%s.%s%s.%s.%s.%s", hs_format_name(fmt), gname,
             s->two_level ? "-2l" : "", s->scale_fmt == HS_SCALE_NONE ? "none" : hs_rule_name(s->rule),
             hs_rounding_name(s->rounding), input);
    hs_packed p;
    hs_status st = hs_packed_alloc(&p, s, VROWS, VCOLS);
    if (st != HS_OK) return cli_fail_status(st, name);
    float *deq = malloc(sizeof(float) * VROWS * VCOLS);
    int64_t rb = row_bytes(s->elem, VCOLS);
    uint8_t *codes = malloc((size_t)(rb * VROWS));
    if (!deq || !codes) {
        free(deq);
        free(codes);
        hs_packed_free(&p);
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    if ((st = hs_quantize_ref(s, x, VROWS, VCOLS, VCOLS, 0, &p)) != HS_OK ||
        (st = hs_dequantize_ref(&p, deq, VCOLS)) != HS_OK) {
        free(deq);
        free(codes);
        hs_packed_free(&p);
        return cli_fail_status(st, name);
    }
    for (int64_t r = 0; r < VROWS; r++) memcpy(codes + r * rb, p.codes + r * p.code_stride, (size_t)rb);
    size_t sb = s->scale_fmt == HS_SCALE_NONE ? 0 : s->scale_fmt == HS_SCALE_FP32 ? 4 : 1;
    size_t scale_bytes = sb * (size_t)(VROWS * p.groups_per_row);
    char f_codes[200], f_scales[200], f_deq[200];
    snprintf(f_codes, sizeof f_codes, "cases/%s.codes", name);
    snprintf(f_scales, sizeof f_scales, "cases/%s.scales", name);
    snprintf(f_deq, sizeof f_deq, "cases/%s.deq.f32", name);
    int ok = write_file(o, f_codes, codes, (size_t)(rb * VROWS)) &&
             (sb == 0 || write_file(o, f_scales, p.scales, scale_bytes)) &&
             write_file(o, f_deq, deq, sizeof(float) * VROWS * VCOLS);
    o->bytes += rb * VROWS + (int64_t)scale_bytes + (int64_t)sizeof(float) * VROWS * VCOLS;
    cJSON *c = ok ? cJSON_CreateObject() : NULL;
    if (c) {
        char seed[32];
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddStringToObject(c, "format", hs_format_name(fmt));
        cJSON_AddStringToObject(c, "elem", hs_elem_name(s->elem));
        cJSON_AddStringToObject(c, "scale", scale_name(s->scale_fmt));
        cJSON_AddStringToObject(c, "group", s->group == HS_GROUP_TENSOR ? "tensor"
                                            : s->group == HS_GROUP_ROW ? "row" : "block");
        cJSON_AddNumberToObject(c, "block", s->block);
        cJSON_AddNumberToObject(c, "tile2d", s->tile2d);
        cJSON_AddNumberToObject(c, "two_level", s->two_level);
        cJSON_AddStringToObject(c, "rule", hs_rule_name(s->rule));
        cJSON_AddStringToObject(c, "rounding", hs_rounding_name(s->rounding));
        cJSON_AddNumberToObject(c, "sr_prescale", s->sr_prescale);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
        cJSON_AddStringToObject(c, "seed", seed); /* a string: 64 bits do not fit a double */
        cJSON_AddNumberToObject(c, "stream", (double)s->stream);
        cJSON_AddStringToObject(c, "input", input);
        cJSON_AddNumberToObject(c, "rows", VROWS);
        cJSON_AddNumberToObject(c, "cols", VCOLS);
        cJSON_AddNumberToObject(c, "groups_per_row", (double)p.groups_per_row);
        cJSON_AddNumberToObject(c, "row_bytes", (double)rb);
        cJSON_AddNumberToObject(c, "scale_bytes", (double)sb);
        cJSON_AddNumberToObject(c, "tensor_scale", p.tensor_scale);
        cJSON_AddNumberToObject(c, "groups_halved", (double)p.groups_halved);
        cJSON_AddStringToObject(c, "codes", f_codes);
        if (sb) cJSON_AddStringToObject(c, "scales", f_scales);
        else cJSON_AddNullToObject(c, "scales");
        cJSON_AddStringToObject(c, "dequant", f_deq);
        cJSON_AddItemToArray(o->cases, c);
        o->n++;
    }
    free(deq);
    free(codes);
    hs_packed_free(&p);
    if (!ok) return CLI_USAGE;
    if (!c) {
        cli_error("out of memory building the manifest");
        return CLI_INTERNAL;
    }
    return CLI_OK;
}

/* Every case of format fmt on its two inputs. */
static int format_cases(vec_out *o, hs_format fmt, const float *fin, const float *spec_in) {
    hs_quant_spec base;
    hs_quant_spec_init(&base, fmt);
    base.seed = 1;
    base.stream = 0;
    /* groupings: blocks, row, tensor, 16×16 tiles; each with and without the second level */
    enum { NG = 7 };
    for (int gi = 0; gi < (base.scale_fmt == HS_SCALE_NONE ? 1 : NG); gi++) {
        for (int tl = 0; tl < 2; tl++) {
            hs_quant_spec s = base;
            if (base.scale_fmt != HS_SCALE_NONE) {
                static const int blocks[4] = {16, 32, 64, 128};
                s.tile2d = 0;
                if (gi < 4) {
                    s.group = HS_GROUP_BLOCK;
                    s.block = blocks[gi];
                } else if (gi == 4) {
                    s.group = HS_GROUP_ROW;
                } else if (gi == 5) {
                    s.group = HS_GROUP_TENSOR;
                } else {
                    s.group = HS_GROUP_BLOCK;
                    s.block = 16;
                    s.tile2d = 16;
                }
                s.two_level = tl;
            } else if (tl) {
                continue;
            }
            for (int r = 0; r < HS_RULE_COUNT; r++) {
                if (base.scale_fmt != HS_SCALE_NONE && !hs_rule_applies(&s, (hs_rule)r)) continue;
                if (base.scale_fmt == HS_SCALE_NONE && r != (int)base.rule) continue;
                for (int rd = 0; rd < HS_ROUND_COUNT; rd++) {
                    hs_quant_spec c = s;
                    c.rule = (hs_rule)r;
                    c.rounding = (hs_rounding)rd;
                    if (hs_quant_spec_validate(&c) != HS_OK) {
                        hs_clear_error();
                        continue;
                    }
                    int seen = 0;
                    for (int i = 0; i < o->ndone && !seen; i++) seen = same_case(&o->done[i], &c);
                    if (seen) continue;
                    if (o->ndone == MAX_CASES) {
                        cli_error("more than %d cases", MAX_CASES);
                        return CLI_INTERNAL;
                    }
                    o->done[o->ndone++] = c;
                    int rc = write_case(o, fmt, &c, "finite", fin);
                    if (rc == CLI_OK) rc = write_case(o, fmt, &c, "special", spec_in);
                    if (rc != CLI_OK) return rc;
                }
            }
        }
    }
    return CLI_OK;
}

/* ---------------------------------------------------------------- command */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The option table over *out_dir into t[2]. */
static void vectors_table(const char **out_dir, cli_opt *t) {
    t[0] = (cli_opt){.name = "--out", .type = CLI_STR, .dst = out_dir, .arg = "DIR", .alias = "-o",
                     .help = "directory to create (required; must not exist)"};
    t[1] = (cli_opt){0};
}

static void vectors_help(FILE *out) {
    const char *d = NULL;
    cli_opt t[2];
    vectors_table(&d, t);
    fprintf(out,
        "usage: halfs vectors --out DIR\n"
        "\n"
        "Write conformance vectors for halfs' quantizers into DIR (which must not exist):\n"
        "for every format x scale rule x rounding x grouping, the expected packed codes,\n"
        "scales and dequantized values of the reference quantizer on inputs that hit the\n"
        "edge cases (every tie point, saturation, NaN/Inf, all-zero and subnormal blocks,\n"
        "exponent clamps, Half-S near-ties), and DIR/manifest.json describing each case.\n"
        "Layout and use: docs/PYTHON.md (halfs.conformance.check runs a quantizer on them).\n"
        "\n"
        "options:\n");
    cli_opts_help(out, t);
    fprintf(out, "\nexample: halfs vectors --out vectors/\n");
}

int cmd_vectors(int argc, char **argv) {
    const char *out_dir = NULL;
    cli_opt t[2];
    vectors_table(&out_dir, t);
    const cli_command cmd = {"vectors", t, vectors_help, 0, "vectors takes no operands"};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    if (!out_dir || !out_dir[0]) {
        cli_error("missing --out DIR");
        cli_hint("usage: halfs vectors --out DIR");
        return CLI_USAGE;
    }
    struct stat sb;
    if (stat(out_dir, &sb) == 0) {
        cli_error("'%s' already exists", out_dir);
        cli_hint("give a new directory, or remove that one first");
        return CLI_USAGE;
    }
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    char tmp[4200];
    if (len + 16 > sizeof tmp) {
        cli_error("--out: the path is too long");
        return CLI_USAGE;
    }
    snprintf(tmp, sizeof tmp, "%.*s.tmpXXXXXX", (int)len, out_dir);
    if (!mkdtemp(tmp)) {
        cli_error("cannot create a directory beside '%s': %s", out_dir, strerror(errno));
        cli_hint("check that the parent directory exists and is writable");
        return CLI_USAGE;
    }
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/inputs", tmp);
    int ok = mkdir(sub, 0755) == 0;
    snprintf(sub, sizeof sub, "%s/cases", tmp);
    ok = ok && mkdir(sub, 0755) == 0;
    cJSON *root = cJSON_CreateObject(), *inputs = NULL;
    static vec_out o;
    o = (vec_out){.dir = tmp};
    float *fin = malloc(sizeof(float) * VROWS * VCOLS), *spc = malloc(sizeof(float) * VROWS * VCOLS);
    if (!ok) {
        cli_error("cannot create directories in '%s': %s", tmp, strerror(errno));
        rc = CLI_USAGE;
    } else if (!root || !fin || !spc || !(inputs = cJSON_AddObjectToObject(root, "inputs")) ||
               !cJSON_AddNumberToObject(root, "version", 1) ||
               !(o.cases = cJSON_AddArrayToObject(root, "cases"))) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
    }
    for (int f = 0; rc == CLI_OK && f < HS_FMT_COUNT; f++) {
        hs_quant_spec s;
        hs_quant_spec_init(&s, (hs_format)f);
        for (int r = 0; r < VROWS; r++) {
            finite_row(s.elem, r, fin + r * VCOLS);
            special_row(s.elem, r, spc + r * VCOLS);
        }
        for (int k = 0; k < 2 && rc == CLI_OK; k++) {
            char rel[96];
            const char *kind = k ? "special" : "finite";
            snprintf(rel, sizeof rel, "inputs/%s.%s.f32", hs_format_name((hs_format)f), kind);
            if (!write_file(&o, rel, k ? spc : fin, sizeof(float) * VROWS * VCOLS)) rc = CLI_USAGE;
            char key[64];
            snprintf(key, sizeof key, "%s.%s", hs_format_name((hs_format)f), kind);
            cJSON *in = cJSON_AddObjectToObject(inputs, key);
            if (!in || !cJSON_AddStringToObject(in, "file", rel) ||
                !cJSON_AddNumberToObject(in, "rows", VROWS) ||
                !cJSON_AddNumberToObject(in, "cols", VCOLS))
                rc = CLI_INTERNAL;
        }
        if (rc != CLI_OK) break;
        /* a case names its input by kind; the format is in the case */
        rc = format_cases(&o, (hs_format)f, fin, spc);
    }
    free(fin);
    free(spc);
    if (rc == CLI_OK) {
        char *s = cJSON_Print(root);
        if (!s) {
            cli_error("out of memory printing the manifest");
            rc = CLI_INTERNAL;
        } else {
            if (!write_file(&o, "manifest.json", s, strlen(s))) rc = CLI_USAGE;
            cJSON_free(s);
        }
    }
    cJSON_Delete(root);
    if (rc == CLI_OK && rename(tmp, out_dir) != 0) {
        cli_error("cannot rename '%s' to '%s': %s", tmp, out_dir, strerror(errno));
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK) {
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return rc;
    }
    printf("%s: %lld cases, %.1f MB\n", out_dir, (long long)o.n, (double)o.bytes / 1e6);
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}
