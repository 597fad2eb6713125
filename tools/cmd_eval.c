/* cmd_eval.c: `halfs eval DIR [--data PATH]`: mean cross-entropy (nats per token) and perplexity
 * of a checkpoint on token shards, over consecutive non-overlapping windows of T+1 tokens (every
 * window once, in order; --batches limits the count). DIR is a run directory (its latest
 * checkpoint), a checkpoint directory, or a GGUF file written by `halfs export` (run in fp32 by
 * default: its weights are the exported values, MXFP4 codes decoded). Data with token ids the
 * model cannot take exits 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "nn/recipe.h"

/* What the options set. */
typedef struct {
    const char *data, *recipe, *role;
    int64_t batches, batch, seq, threads;
    int json, fp32_attn;
} eval_args;

enum { EVAL_NOPTS = 10 };

/* Defaults into *t and the option table over it into opts[EVAL_NOPTS]. */
static void eval_table(eval_args *t, cli_opt *opts) {
    *t = (eval_args){.batch = 8};
    const cli_opt o[EVAL_NOPTS] = {
        {.name = "--data", .type = CLI_STR, .dst = &t->data, .arg = "PATH",
         .help = "a .bin shard or a directory of them (default: the validation data\n"
                 "the run recorded)"},
        {.name = "--batches", .type = CLI_I64, .dst = &t->batches, .lo = 0, .hi = INT32_MAX,
         .arg = "N",
         .help = "evaluate at most N batches of B windows; 0 = every window of the\n"
                 "data once (default: 0)"},
        {.name = "--batch", .type = CLI_I64, .dst = &t->batch, .lo = 1, .hi = 4096, .arg = "B",
         .help = "windows per forward pass (default: 8)"},
        {.name = "--seq", .type = CLI_I64, .dst = &t->seq, .lo = 1, .hi = 1 << 20, .arg = "T",
         .help = "tokens per window, ≤ the model's context (default: the run's T, or\n"
                 "min(256, context))"},
        {.name = "--recipe", .type = CLI_STR, .dst = &t->recipe, .arg = "R",
         .help = "forward-pass recipe (default: the run's training recipe when the\n"
                 "checkpoint records it, else fp32)"},
        {.name = "--role", .type = CLI_STR, .dst = &t->role, .arg = "ITEMS",
         .help = "role overrides on top of the recipe, e.g. fwd.w=mxfp4:halfs\n"
                 "(`halfs train --help`, --role)"},
        {.name = "--fp32-attn-lm-head", .type = CLI_FLAG, .dst = &t->fp32_attn,
         .help = "attention products and lm_head in fp32 (`halfs train --help`)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json,
         .help = "print {\"loss\": ..., \"perplexity\": ..., \"tokens\": ...} (null for\n"
                 "a loss that is not finite)"},
        {.name = "--threads", .type = CLI_I64, .dst = &t->threads, .lo = 0, .hi = 1024,
         .arg = "N", .help = "threads, 0 = all cores (default: 0)"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void eval_help(FILE *out) {
    fprintf(out,
        "usage: halfs eval DIR [--data PATH] [--batches N] [--batch B] [--seq T] [--recipe R]\n"
        "                  [--role ITEMS] [--json] [--threads N]\n"
        "\n"
        "Loss (mean cross-entropy, nats per token) and perplexity of a trained model on\n"
        "llm.c token shards. DIR is a run directory (its latest checkpoint is used), a\n"
        "checkpoint directory, or a GGUF file written by `halfs export` (recipe fp32 by\n"
        "default: the weights as exported).\n"
        "\n"
        "options:\n");
    eval_args t;
    cli_opt opts[EVAL_NOPTS];
    eval_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error, or a loss that is not finite (NaN/Inf);\n"
        "2 internal error.\n"
        "example: halfs eval runs/nano --data val.bin\n");
}

int cmd_eval(int argc, char **argv) {
    eval_args t;
    cli_opt opts[EVAL_NOPTS];
    eval_table(&t, opts);
    const char *dir = NULL;
    int rc = cli_model_args(argc, argv, "eval", "DIR --data PATH", opts, eval_help, &dir);
    if (rc != CLI_OK || !dir) return rc; /* an error, or --help */
    const char *data = t.data, *recipe_name = t.recipe;
    int64_t batches = t.batches, B = t.batch, T = t.seq;
    int json = t.json;
    if (t.threads > 0) omp_set_num_threads((int)t.threads);
    cli_model cm;
    rc = cli_model_open(dir, &cm);
    if (rc != CLI_OK) return rc;
    hs_model *m = cm.model;
    const hs_train_config *run = cm.run;
    if (!data) {
        if (!run || !run->val_path[0]) {
            cli_error("no --data given and the checkpoint records no validation data");
            cli_hint("pass --data PATH (llm.c .bin shards encoded with the model's tokenizer)");
            cli_model_close(&cm);
            return CLI_USAGE;
        }
        data = run->val_path;
    }
    if (T == 0) /* the run's T when the model can take it, else min(256, context) */
        T = run && run->seq <= m->cfg.max_seq ? run->seq
                                              : (m->cfg.max_seq < 256 ? m->cfg.max_seq : 256);
    if (T > m->cfg.max_seq) {
        cli_error("--seq %lld is longer than the model's context of %d tokens", (long long)T,
                  m->cfg.max_seq);
        cli_model_close(&cm);
        return CLI_USAGE;
    }
    hs_recipe_opts ro;
    hs_recipe recipe;
    if ((rc = cli_model_recipe(&cm, recipe_name, 0, &ro, &recipe)) != CLI_OK) {
        cli_model_close(&cm);
        return rc;
    }
    if (t.role || t.fp32_attn) { /* the overrides after the recipe's own, built again */
        size_t used = strlen(ro.roles);
        if (t.role && used + 1 + strlen(t.role) >= sizeof ro.roles) {
            cli_error("--role is too long (at most %zu characters)", sizeof ro.roles - 2 - used);
            cli_model_close(&cm);
            return CLI_USAGE;
        }
        if (t.role)
            snprintf(ro.roles + used, sizeof ro.roles - used, "%s%s", used ? "," : "", t.role);
        if (t.fp32_attn) ro.fp32_attn_lm_head = 1;
        hs_status rs = hs_recipe_build(&ro, cm.run ? cm.run->seed : 0, &recipe);
        if (rs != HS_OK) {
            cli_model_close(&cm);
            return cli_fail_status(rs, "--role");
        }
    }
    hs_dataset *d = NULL;
    hs_status st = hs_dataset_open(data, &d);
    if (st != HS_OK) {
        cli_model_close(&cm);
        return cli_fail_status(st, "opening --data");
    }
    if (hs_dataset_max_token(d) >= m->cfg.vocab) {
        cli_error("'%s' has token id %d, outside the model's vocabulary of %d", data,
                  hs_dataset_max_token(d), m->cfg.vocab);
        cli_hint("evaluate on data encoded with the model's tokenizer");
        rc = CLI_USAGE;
    } else if (hs_dataset_size(d) < T + 1) {
        cli_error("'%s' has %lld tokens, too few for one window of %lld", data,
                  (long long)hs_dataset_size(d), (long long)T + 1);
        rc = CLI_USAGE;
    }
    int64_t n_windows = rc == CLI_OK ? (hs_dataset_size(d) - 1) / T : 0;
    if (batches > 0 && batches * B < n_windows) n_windows = batches * B;
    int32_t *in = malloc((size_t)(B * T) * sizeof *in), *tg = malloc((size_t)(B * T) * sizeof *tg);
    if (rc == CLI_OK && (!in || !tg)) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
    }
    double sum = 0; /* Σ over windows of (mean loss × tokens) */
    int64_t tokens = 0;
    const uint16_t *tk = hs_dataset_tokens(d);
    for (int64_t w0 = 0; rc == CLI_OK && w0 < n_windows; w0 += B) {
        int b_now = (int)(n_windows - w0 < B ? n_windows - w0 : B);
        for (int b = 0; b < b_now; b++)
            for (int t = 0; t < T; t++) {
                in[b * T + t] = tk[(w0 + b) * T + t];
                tg[b * T + t] = tk[(w0 + b) * T + t + 1];
            }
        float loss;
        if ((st = hs_model_forward(m, &recipe, 0, in, tg, b_now, (int)T, &loss)) != HS_OK) {
            rc = cli_fail_status(st, "forward pass");
            break;
        }
        sum += (double)loss * b_now * T;
        tokens += (int64_t)b_now * T;
    }
    if (rc == CLI_OK) {
        double loss = sum / (double)tokens;
        if (json) {
            /* JSON has no NaN or Inf: a loss that is not finite (or its perplexity) is null */
            char ls[32] = "null", ps[32] = "null";
            if (isfinite(loss)) snprintf(ls, sizeof ls, "%.6f", loss);
            if (isfinite(exp(loss))) snprintf(ps, sizeof ps, "%.4f", exp(loss));
            printf("{\"loss\": %s, \"perplexity\": %s, \"tokens\": %lld, \"windows\": %lld, "
                   "\"seq\": %lld, \"recipe\": ",
                   ls, ps, (long long)tokens, (long long)n_windows, (long long)T);
            cli_json_put_string(ro.name);
            printf(", \"checkpoint\": ");
            cli_json_put_string(cm.ckpt);
            printf("}\n");
        } else
            printf("loss %.4f nats/token, perplexity %.2f (%lld tokens in %lld windows of %lld; "
                   "recipe %s; %s)\n",
                   loss, exp(loss), (long long)tokens, (long long)n_windows, (long long)T, ro.name,
                   cm.ckpt);
        if (!isfinite(loss)) {
            cli_error("the loss is %s: the model's outputs are not finite in recipe %s",
                      isnan(loss) ? "NaN" : "Inf", ro.name);
            if (strcmp(ro.name, "fp32"))
                cli_hint("try --recipe fp32: finite weights can still overflow in a "
                         "low-precision recipe");
            rc = CLI_USAGE;
        }
    }
    free(in);
    free(tg);
    hs_dataset_close(d);
    cli_model_close(&cm);
    return rc;
}
