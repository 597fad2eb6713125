/* cmd_capture.c: `halfs capture DIR --data PATH --out OUT`: dump the operands of every linear
 * layer of a trained model on one held-out batch, for `halfs stats` (issue 6, real tensors).
 *
 * One forward and one backward pass of the checkpoint in DIR (a run directory or a checkpoint)
 * on B windows of T+1 tokens of PATH (the k-th evaluation batch: deterministic). For each block
 * l and each of its linear layers (q,k,v fused as self_attn.qkv_proj, gate and up fused as
 * mlp.gate_up_proj, as the model runs them) it writes, as raw little-endian float32, row-major:
 *   NAME.w.f32   the weight W    [out × in]     (as stored: fp32 master weights)
 *   NAME.x.f32   the input X     [B·T × in]     (before the layer's GEMMs quantize it)
 *   NAME.dy.f32  the output grad dY [B·T × out] (gradient of the batch's mean loss)
 * and manifest.csv (name,layer,role,rows,cols,file). The lm_head and the embedding stay in
 * high precision in every recipe and are not captured.
 *
 * Inputs and gradients come from the model's capture hook (hs_model.capture), so they are
 * exactly what the linear layers receive in the chosen recipe (default: the run's recipe).
 * The output directory appears whole or not at all: files go to OUT.tmp-PID, renamed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nn/model.h"
#include "train/dataset.h"
#include "nn/recipe.h"
#include "train/trainer.h"

/* What the options set. */
typedef struct {
    const char *data, *out, *recipe;
    int64_t batch, seq, window;
} capture_args;

enum { CAPTURE_NOPTS = 7 };

/* Defaults into *t and the option table over it into opts[CAPTURE_NOPTS]. */
static void capture_table(capture_args *t, cli_opt *opts) {
    *t = (capture_args){.batch = 8};
    const cli_opt o[CAPTURE_NOPTS] = {
        {.name = "--data", .type = CLI_STR, .dst = &t->data, .arg = "PATH",
         .help = "token shard (.bin) or directory of shards, e.g. held-out text\n"
                 "(required)"},
        {.name = "--out", .type = CLI_STR, .dst = &t->out, .arg = "OUT",
         .help = "output directory; must not exist (required)"},
        {.name = "--batch", .type = CLI_I64, .dst = &t->batch, .lo = 1, .hi = 4096, .arg = "B",
         .help = "windows in the batch (default: 8)"},
        {.name = "--seq", .type = CLI_I64, .dst = &t->seq, .lo = 1, .hi = 1 << 20, .arg = "T",
         .help = "tokens per window, <= the model's context (default: the run's T,\n"
                 "or min(256, context))"},
        {.name = "--window", .type = CLI_I64, .dst = &t->window, .lo = 0, .hi = INT32_MAX,
         .arg = "K", .help = "use the K-th batch of consecutive windows of PATH (default: 0)"},
        {.name = "--recipe", .type = CLI_STR, .dst = &t->recipe, .arg = "R",
         .help = "recipe of the passes (default: the run's training recipe when the\n"
                 "checkpoint records it, else fp32)"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void capture_help(FILE *out) {
    fprintf(out,
        "usage: halfs capture DIR --data PATH --out OUT [--batch B] [--seq T] [--window K]\n"
        "                     [--recipe R]\n"
        "\n"
        "Run one training step's forward and backward pass (no update) of the model in DIR\n"
        "(a run directory: its latest checkpoint; or a checkpoint directory) on one batch of\n"
        "PATH and write every linear layer's weight W [out x in], input X [tokens x in] and\n"
        "output gradient dY [tokens x out] as raw float32 files into the new directory OUT,\n"
        "with OUT/manifest.csv (name,layer,role,rows,cols,file). q/k/v and gate/up are\n"
        "captured fused (self_attn.qkv_proj, mlp.gate_up_proj), as the model runs them.\n"
        "Feed the files to `halfs stats --cols COLS FILE`.\n"
        "\n"
        "options:\n");
    capture_args t;
    cli_opt opts[CAPTURE_NOPTS];
    capture_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error (nothing written); 2 internal error.\n"
        "example: halfs capture runs/bf16 --data val.bin --out cap && "
        "halfs stats --format mxfp4 --cols 128 cap/model.layers.0.mlp.down_proj.x.f32\n");
}

static const char *const linear_names[4] = {"self_attn.qkv_proj", "self_attn.o_proj",
                                            "mlp.gate_up_proj", "mlp.down_proj"};

typedef struct {
    const char *dir; /* the temporary output directory */
    FILE *manifest;
    int failed;      /* first failure: stop writing, report after the pass */
    char err[8192];
} capture_ctx;

/* Write one tensor and its manifest line. */
static void put_tensor(capture_ctx *c, int layer, int which, const char *role, const float *data,
                       int64_t rows, int64_t cols) {
    if (c->failed) return;
    char name[128], file[192], path[4400];
    snprintf(name, sizeof name, "model.layers.%d.%s", layer, linear_names[which]);
    snprintf(file, sizeof file, "%s.%s.f32", name, role);
    snprintf(path, sizeof path, "%s/%s", c->dir, file);
    FILE *f = fopen(path, "wb");
    size_t n = (size_t)(rows * cols);
    if (!f || fwrite(data, sizeof(float), n, f) != n || fclose(f) != 0) {
        if (f) fclose(f);
        c->failed = 1;
        snprintf(c->err, sizeof c->err, "cannot write %s: %s", path, strerror(errno));
        return;
    }
    fprintf(c->manifest, "%s,%d,%s,%lld,%lld,%s\n", name, layer, role, (long long)rows,
            (long long)cols, file);
}

/* The model's capture hook: X in forward, dY in backward. */
static void on_capture(void *ctx, int layer, int which, const char *role, const float *data,
                       int64_t rows, int64_t cols) {
    if (layer < 0 || which < 0 || which > 3) return; /* lm_head: not a quantized layer */
    put_tensor(ctx, layer, which, role, data, rows, cols);
}

/* Remove the files of a half-written temporary directory (flat) and the directory. */
static void remove_tmp(const char *dir, const char *manifest_path) {
    FILE *m = fopen(manifest_path, "r");
    char line[1024], path[5200];
    if (m) {
        while (fgets(line, sizeof line, m)) {
            char *file = strrchr(line, ',');
            if (!file) continue;
            file++;
            file[strcspn(file, "\r\n")] = 0;
            snprintf(path, sizeof path, "%s/%s", dir, file);
            remove(path);
        }
        fclose(m);
    }
    remove(manifest_path);
    rmdir(dir);
}

int cmd_capture(int argc, char **argv) {
    capture_args t;
    cli_opt opts[CAPTURE_NOPTS];
    capture_table(&t, opts);
    const char *dir = NULL;
    int rc = cli_model_args(argc, argv, "capture", "DIR --data PATH --out OUT", opts,
                            capture_help, &dir);
    if (rc != CLI_OK || !dir) return rc;
    const char *data = t.data, *out = t.out, *recipe_name = t.recipe;
    int64_t B = t.batch, T = t.seq, window = t.window;
    if (!data || !out) {
        cli_error("%s", !data ? "no --data: which tokens should the model see?" : "no --out directory");
        cli_hint("usage: halfs capture DIR --data PATH --out OUT; see `halfs capture --help`");
        return CLI_USAGE;
    }
    struct stat sb;
    if (strlen(out) > 3000) {
        cli_error("--out path too long (%zu bytes)", strlen(out));
        return CLI_USAGE;
    }
    if (stat(out, &sb) == 0) {
        cli_error("'%s' already exists", out);
        cli_hint("remove it or choose another --out");
        return CLI_USAGE;
    }
    cli_model cm;
    if ((rc = cli_model_open(dir, &cm)) != CLI_OK) return rc;
    hs_model *m = cm.model;
    const hs_train_config *run = cm.run;
    if (T == 0) T = run && run->seq <= m->cfg.max_seq ? run->seq : (m->cfg.max_seq < 256 ? m->cfg.max_seq : 256);
    hs_status st;
    hs_dataset *d = NULL;
    int32_t *in = NULL, *tg = NULL;
    hs_recipe_opts ro;
    hs_recipe recipe;
    if (T > m->cfg.max_seq) {
        cli_error("--seq %lld is longer than the model's context of %d tokens", (long long)T,
                  m->cfg.max_seq);
        rc = CLI_USAGE;
    } else if ((rc = cli_model_recipe(&cm, recipe_name, 0, &ro, &recipe)) != CLI_OK) {
        /* message printed */
    } else if ((st = hs_dataset_open(data, &d)) != HS_OK) {
        rc = cli_fail_status(st, "opening --data");
    } else if (hs_dataset_max_token(d) >= m->cfg.vocab) {
        cli_error("'%s' has token id %d, outside the model's vocabulary of %d", data,
                  hs_dataset_max_token(d), m->cfg.vocab);
        cli_hint("use data encoded with the model's tokenizer");
        rc = CLI_USAGE;
    } else if (hs_dataset_size(d) < T + 1) {
        cli_error("'%s' has %lld tokens, too few for one window of %lld", data,
                  (long long)hs_dataset_size(d), (long long)T + 1);
        rc = CLI_USAGE;
    } else if (!(in = malloc((size_t)(B * T) * sizeof *in)) ||
               !(tg = malloc((size_t)(B * T) * sizeof *tg))) {
        cli_error("out of memory for a batch of %lld x %lld", (long long)B, (long long)T);
        rc = CLI_INTERNAL;
    } else if ((st = hs_dataset_eval_batch(d, window, (int)B, (int)T, in, tg)) != HS_OK) {
        rc = cli_fail_status(st, "reading the batch");
    }
    char tmp[4096], mpath[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
    snprintf(mpath, sizeof mpath, "%s/manifest.csv", tmp);
    capture_ctx cc = {tmp, NULL, 0, {0}};
    if (rc == CLI_OK) {
        if (mkdir(tmp, 0777) != 0 || !(cc.manifest = fopen(mpath, "w"))) {
            cli_error("cannot create '%s': %s", tmp, strerror(errno));
            rc = CLI_USAGE;
        }
    }
    if (rc == CLI_OK) {
        fprintf(cc.manifest, "name,layer,role,rows,cols,file\n");
        /* Weights first, from the parameter table: [out × in] as stored. The fused layers are
         * contiguous in the table (q,k,v and gate,up are stored back to back). */
        const int C = m->cfg.dim;
        for (int l = 0; l < m->cfg.n_layers && !cc.failed; l++) {
            static const char *const first[4] = {"self_attn.q_proj", "self_attn.o_proj",
                                                 "mlp.gate_proj", "mlp.down_proj"};
            static const char *const last[4] = {"self_attn.v_proj", "self_attn.o_proj",
                                                "mlp.up_proj", "mlp.down_proj"};
            for (int w = 0; w < 4; w++) {
                char n0[96], n1[96];
                snprintf(n0, sizeof n0, "model.layers.%d.%s.weight", l, first[w]);
                snprintf(n1, sizeof n1, "model.layers.%d.%s.weight", l, last[w]);
                const hs_param_tensor *a = hs_model_find_tensor(m, n0), *b = hs_model_find_tensor(m, n1);
                if (!a || !b || b->offset < a->offset || b->shape[1] != a->shape[1]) {
                    cli_error("internal: the parameter table has no contiguous %s", n0);
                    rc = CLI_INTERNAL;
                    break;
                }
                int64_t cols = a->shape[1];
                int64_t rows = (b->offset + b->numel - a->offset) / cols;
                (void)C;
                put_tensor(&cc, l, w, "w", m->params + a->offset, rows, cols);
            }
            if (rc != CLI_OK) break;
        }
    }
    if (rc == CLI_OK && !cc.failed) {
        m->capture = on_capture;
        m->capture_ctx = &cc;
        float loss = 0;
        hs_model_zero_grad(m);
        if ((st = hs_model_forward(m, &recipe, 0, in, tg, (int)B, (int)T, &loss)) != HS_OK)
            rc = cli_fail_status(st, "forward pass");
        else if ((st = hs_model_backward(m, &recipe, 0, 1.0f)) != HS_OK)
            rc = cli_fail_status(st, "backward pass");
        m->capture = NULL;
        if (rc == CLI_OK && !cc.failed)
            fprintf(stderr, "capture: %s, recipe %s, batch %lld x %lld, loss %.4f\n", cm.ckpt, ro.name,
                    (long long)B, (long long)T, loss);
    }
    if (cc.manifest && fclose(cc.manifest) != 0 && !cc.failed) {
        cc.failed = 1;
        snprintf(cc.err, sizeof cc.err, "cannot write %s: %s", mpath, strerror(errno));
    }
    if (rc == CLI_OK && cc.failed) {
        cli_error("%s", cc.err);
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK && rename(tmp, out) != 0) {
        cli_error("cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK && cc.manifest) remove_tmp(tmp, mpath);
    free(in);
    free(tg);
    hs_dataset_close(d);
    cli_model_close(&cm);
    return rc;
}
