/* bench_train.c: `halfs bench train`: training throughput, peak memory and a time breakdown of
 * every preset recipe, measured in one run on synthetic tokens. A recipe may carry `halfs train`'s
 * recipe options (mxfp4-halfs+rht=16+sr), so the cost of each ingredient is a ratio in one run.
 *
 * Each recipe runs in its own fork()ed child (create the trainer, one untimed warm-up step,
 * then N timed steps), so its peak resident memory is its own: wait4() returns the child's
 * rusage, whose ru_maxrss is that child's peak. The parent never starts OpenMP or allocates
 * much, so children start from the same small footprint. The breakdown comes from the model's
 * timers (src/nn/model.h): GEMM (the linear layers' products, incl. lm_head), quantization
 * (quantizing / converting / dequantizing GEMM operands), attention (forward + backward), and
 * the rest (norms, RoPE, SwiGLU, loss, embedding, optimizer, data).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/cli.h"
#include "bench.h"
#include "halfs/gemm.h"
#include "train/train_config.h"
#include "train/trainer.h"

typedef struct {
    int ok;
    double tokens_per_s, ms_per_step;
    double gemm_ms, quant_ms, attn_ms, model_ms; /* per step */
    double loss;
    char err[256];
} train_result;

/* What the options set. */
typedef struct {
    const char *model, *recipes;
    int64_t steps, batch, seq, threads, rounds;
    int json, act_only, fp32_attn;
    const char *isa;
} train_args;

enum { TRAIN_NOPTS = 12 };

/* Defaults into *t and the option table over it into opts[TRAIN_NOPTS]. */
static void train_table(train_args *t, cli_opt *opts) {
    *t = (train_args){.model = "small", .steps = 5, .batch = 16, .seq = 256, .rounds = 1};
    const cli_opt o[TRAIN_NOPTS] = {
        {.name = "--model", .type = CLI_STR, .dst = &t->model, .arg = "CFG",
         .help = "nano | tiny | small | medium | base (default: small)"},
        {.name = "--recipes", .type = CLI_STR, .dst = &t->recipes, .arg = "LIST",
         .help = "comma-separated recipes (default: every preset): a preset name, or\n"
                 "NAME+OPT[=VALUE]+... with halfs train's recipe options without\n"
                 "their dashes, e.g. mxfp4-halfs+rht=16+sr (values without , or +)"},
        {.name = "--steps", .type = CLI_I64, .dst = &t->steps, .lo = 1, .hi = 256, .arg = "N",
         .help = "timed steps per recipe, after one warm-up step (default: 5);\n"
                 "tokens/s comes from the median step, the breakdown from the mean"},
        {.name = "--rounds", .type = CLI_I64, .dst = &t->rounds, .lo = 1, .hi = 100, .arg = "R",
         .help = "run every recipe R times, interleaved, keep each one's fastest\n"
                 "round (default: 1; use more on a busy machine)"},
        {.name = "--batch", .type = CLI_I64, .dst = &t->batch, .lo = 1, .hi = 1 << 20,
         .arg = "B", .help = "sequences per step (default: 16)"},
        {.name = "--seq", .type = CLI_I64, .dst = &t->seq, .lo = 1, .hi = 1 << 20, .arg = "T",
         .help = "tokens per sequence (default: 256)"},
        {.name = "--threads", .type = CLI_I64, .dst = &t->threads, .lo = 0, .hi = 1 << 20,
         .arg = "T", .help = "threads (default: all cores)"},
        {.name = "--act-only", .type = CLI_FLAG, .dst = &t->act_only,
         .help = "quantize only activations and gradients (weights fp32)"},
        {.name = "--fp32-attn-lm-head", .type = CLI_FLAG, .dst = &t->fp32_attn,
         .help = "attention products and lm_head in fp32 in every recipe (default:\n"
                 "bf16 in every recipe but fp32)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json,
         .help = "JSON: tokens_per_s, peak_rss_mb, ms_per_step and breakdown_ms,\n"
                 "each an object keyed by recipe name"},
        BENCH_ISA_OPT(&t->isa),
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void help(FILE *out) {
    fprintf(out,
        "usage: halfs bench train [--model CFG] [--recipes LIST] [--steps N] [--batch B]\n"
        "                         [--seq T] [--threads T] [--act-only]\n"
        "                         [--fp32-attn-lm-head] [--json]\n\n"
        "Tokens/s, peak RSS and the time breakdown (GEMM, quantization, attention, rest) of\n"
        "training steps in each recipe, each recipe in its own child process, synthetic tokens.\n\n"
        "options:\n");
    train_args t;
    cli_opt opts[TRAIN_NOPTS];
    train_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "For OpenBLAS's AVX-512 kernels: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE halfs bench train\n");
}

/* A --recipes item, NAME or NAME+OPT[=VALUE]+...: the preset NAME with `halfs train`'s recipe
 * options written without their dashes (rht=16, sr, block=16, role=all=mxfp4:mse, hp-layers=3),
 * set in c->recipe. 0, or -1 with the reason in err. */
static int apply_item(const char *item, hs_train_config *c, char *err, size_t n) {
    char buf[512];
    if (strlen(item) >= sizeof buf) return snprintf(err, n, "'%.80s...': too long", item), -1;
    snprintf(buf, sizeof buf, "%s", item);
    char *save = NULL, *tok = strtok_r(buf, "+", &save);
    if (!tok || strlen(tok) >= sizeof c->recipe.name)
        return snprintf(err, n, "'%.80s': expected NAME or NAME+OPTION[=VALUE]+...", item), -1;
    snprintf(c->recipe.name, sizeof c->recipe.name, "%s", tok);
    while ((tok = strtok_r(NULL, "+", &save))) {
        char *val = strchr(tok, '=');
        if (val) *val++ = '\0';
        const hs_cfg_field *f = NULL;
        for (int i = 0; i < hs_train_config_n_fields; i++) {
            const hs_cfg_field *g = &hs_train_config_fields[i];
            if (g->opt && g->section && !strcmp(g->section, "recipe") && strcmp(g->opt, "--recipe") &&
                !strcmp(g->opt + 2, tok))
                f = g;
        }
        if (!f)
            return snprintf(err, n, "'%.80s': '%.80s' is not a recipe option of halfs train (rht, sr, "
                            "block, role, hp-layers, ...)", item, tok), -1;
        void *p = hs_cfg_field_ptr(f, c);
        if (f->type == HS_CFG_FLAG) {
            if (val) return snprintf(err, n, "'%.80s': %.40s takes no value", item, tok), -1;
            *(int32_t *)p = 1;
            continue;
        }
        if (!val || !*val) return snprintf(err, n, "'%.80s': %.40s needs =VALUE", item, tok), -1;
        if (f->type == HS_CFG_I32) {
            char *end = NULL;
            long v = strtol(val, &end, 10);
            if (*end || v < f->lo || v > f->hi)
                return snprintf(err, n, "'%.80s': %.40s=%.40s: expected an integer in %lld..%lld", item, tok,
                                val, (long long)f->lo, (long long)f->hi), -1;
            *(int32_t *)p = (int32_t)v;
        } else if (f->type == HS_CFG_STR || f->type == HS_CFG_LIST) {
            if (strlen(val) >= f->size) return snprintf(err, n, "'%.80s': %.40s: too long", item, tok), -1;
            snprintf(p, f->size, "%s", val);
        } else {
            return snprintf(err, n, "'%.80s': %.40s cannot be set here", item, tok), -1;
        }
    }
    return 0;
}

/* The child's work: train `steps` steps of `recipe` (a --recipes item) and report through *r. */
static void run_recipe(const char *model, const char *recipe, int steps, int B, int T,
                       int threads, int act_only, int fp32_attn, train_result *r) {
    memset(r, 0, sizeof *r);
    hs_train_config c;
    hs_train_config_defaults(&c);
    hs_model_config_preset(model, &c.model);
    snprintf(c.model_preset, sizeof c.model_preset, "%s", model);
    c.recipe.act_only = act_only;
    c.recipe.fp32_attn_lm_head = fp32_attn;
    if (apply_item(recipe, &c, r->err, sizeof r->err)) return; // checked by the parent already
    c.batch = B;
    c.seq = T;
    c.steps = steps + 1;
    c.warmup = 1;
    c.threads = threads;
    int64_t n = (int64_t)B * T * 8 + 1;
    uint16_t *tok = malloc(sizeof(uint16_t) * (size_t)n);
    hs_dataset *d = NULL;
    hs_trainer *t = NULL;
    hs_status st = HS_ERR_NOMEM;
    if (!tok) goto fail;
    uint64_t x = 88172645463325252ull; // xorshift: synthetic tokens
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tok[i] = (uint16_t)(x % (uint64_t)c.model.vocab);
    }
    if ((st = hs_dataset_from_tokens(tok, n, &d)) != HS_OK) goto fail;
    if ((st = hs_trainer_create(&c, d, NULL, &t)) != HS_OK) goto fail;
    hs_step_metrics row;
    if ((st = hs_trainer_step(t, &row)) != HS_OK) goto fail; // warm-up: first touch, caches
    hs_model *m = hs_trainer_model(t);
    memset(&m->timers, 0, sizeof m->timers);
    double times[256];
    for (int s = 0; s < steps; s++) {
        double t0 = omp_get_wtime();
        if ((st = hs_trainer_step(t, &row)) != HS_OK) goto fail;
        times[s] = omp_get_wtime() - t0;
    }
    // the median step: robust to a step disturbed by other processes on a shared machine
    double med = bench_median(times, steps);
    r->ok = 1;
    r->ms_per_step = med * 1e3;
    r->tokens_per_s = (double)B * T / med;
    r->gemm_ms = m->timers.gemm / steps * 1e3;
    r->quant_ms = m->timers.quant / steps * 1e3;
    r->attn_ms = m->timers.attention / steps * 1e3;
    r->model_ms = m->timers.total / steps * 1e3;
    r->loss = row.train_loss;
    hs_trainer_free(t);
    hs_dataset_close(d);
    free(tok);
    return;
fail:
    snprintf(r->err, sizeof r->err, "%s", hs_last_error()[0] ? hs_last_error() : hs_status_str(st));
    hs_trainer_free(t);
    hs_dataset_close(d);
    free(tok);
}

int bench_train_main(int argc, char **argv) {
    train_args ta;
    cli_opt opts[TRAIN_NOPTS];
    train_table(&ta, opts);
    const cli_command cmd = {"bench train", opts, help, 0, "bench train takes only options"};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    if (bench_apply_isa(ta.isa)) return CLI_USAGE;
    const char *model = ta.model, *recipes = ta.recipes;
    int64_t steps = ta.steps, B = ta.batch, T = ta.seq, threads = ta.threads, rounds = ta.rounds;
    int json = ta.json, act_only = ta.act_only, fp32_attn = ta.fp32_attn;
    // the list of recipes, checked before any work
    const char *names[64];
    char buf[1024];
    int nr = 0;
    if (!recipes) {
        for (int i = 0; hs_recipe_preset_names[i] && nr < 64; i++) names[nr++] = hs_recipe_preset_names[i];
    } else {
        if (strlen(recipes) >= sizeof buf) {
            cli_error("--recipes: list too long");
            return CLI_USAGE;
        }
        snprintf(buf, sizeof buf, "%s", recipes);
        char *save = NULL;
        for (char *p = strtok_r(buf, ",", &save); p && nr < 64; p = strtok_r(NULL, ",", &save))
            names[nr++] = p;
    }
    hs_train_config c;
    hs_train_config_defaults(&c);
    if (hs_model_config_preset(model, &c.model) != HS_OK) {
        cli_error("--model '%s': unknown model (nano, tiny, small, medium, base)", model);
        return CLI_USAGE;
    }
    c.batch = (int32_t)B;
    c.seq = (int32_t)T;
    c.recipe.act_only = act_only;
    c.recipe.fp32_attn_lm_head = fp32_attn;
    int w = 14; // the label column: the longest item
    for (int i = 0; i < nr; i++) {
        hs_train_config ci = c;
        char err[300];
        if (apply_item(names[i], &ci, err, sizeof err)) {
            cli_error("--recipes: %s", err);
            return CLI_USAGE;
        }
        hs_status st = hs_train_config_validate(&ci);
        if (st != HS_OK) return cli_fail_status(st, "bench train");
        if ((int)strlen(names[i]) > w) w = (int)strlen(names[i]);
    }
    double mem = (double)hs_model_config_params(&c.model) * 16 +
                 (double)B * T * (c.model.n_layers * (12.0 * c.model.dim + 3.0 * c.model.ffn_dim) +
                                  2.0 * c.model.vocab) * 4;
    if (bench_check_memory(mem, "bench train")) return CLI_USAGE;

    train_result res[64];
    double rss_mb[64];
    memset(res, 0, sizeof res);
    for (int round = 0; round < rounds; round++)
    for (int i = 0; i < nr; i++) {
        int fd[2];
        if (pipe(fd) != 0) {
            cli_error("bench train: pipe failed");
            return CLI_INTERNAL;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            cli_error("bench train: fork failed");
            return CLI_INTERNAL;
        }
        if (pid == 0) {
            close(fd[0]);
            train_result r;
            run_recipe(model, names[i], (int)steps, (int)B, (int)T, (int)threads, act_only,
                       fp32_attn, &r);
            ssize_t w = write(fd[1], &r, sizeof r);
            _exit(w == (ssize_t)sizeof r ? 0 : 3);
        }
        close(fd[1]);
        train_result r;
        memset(&r, 0, sizeof r);
        ssize_t got = read(fd[0], &r, sizeof r);
        close(fd[0]);
        int status = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        wait4(pid, &status, 0, &ru);
        if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            r.ok = 0;
            if (got != (ssize_t)sizeof r)
                snprintf(r.err, sizeof r.err, "child process failed (status %d)", status);
        }
        // several rounds: keep each recipe's fastest round (the least disturbed by other load)
        if (round == 0 || (r.ok && (!res[i].ok || r.tokens_per_s > res[i].tokens_per_s))) {
            res[i] = r;
            rss_mb[i] = ru.ru_maxrss / 1024.0; // kilobytes on Linux
        }
        if (!json)
            fprintf(stderr, "  round %d %-*s %s\n", round + 1, w, names[i], r.ok ? "done" : r.err);
    }
    double base = 0, base16 = 0;
    for (int i = 0; i < nr; i++) {
        if (res[i].ok && !strcmp(names[i], "fp32")) base = res[i].tokens_per_s;
        if (res[i].ok && !strcmp(names[i], "bf16")) base16 = res[i].tokens_per_s;
    }
    int threads_run = threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (json) {
        printf("{\"model\": \"%s\", \"batch\": %lld, \"seq\": %lld, \"steps\": %lld, "
               "\"threads\": %d, \"act_only\": %s, \"fp32_attn_lm_head\": %s, \"kernels\": \"%s\", "
               "\"openblas_core\": \"%s\",\n",
               model, (long long)B, (long long)T, (long long)steps, threads_run,
               act_only ? "true" : "false", fp32_attn ? "true" : "false", hs_isa_name(),
               bench_blas_core());
        const char *keys[] = {"tokens_per_s", "peak_rss_mb", "ms_per_step"};
        for (int k = 0; k < 3; k++) {
            printf(" \"%s\": {", keys[k]);
            int first = 1;
            for (int i = 0; i < nr; i++) {
                if (!res[i].ok) continue;
                double v = k == 0 ? res[i].tokens_per_s : k == 1 ? rss_mb[i] : res[i].ms_per_step;
                printf("%s\"%s\": %.1f", first ? "" : ", ", names[i], v);
                first = 0;
            }
            printf("},\n");
        }
        printf(" \"breakdown_ms\": {");
        int first = 1;
        for (int i = 0; i < nr; i++) {
            if (!res[i].ok) continue;
            double rest = res[i].ms_per_step - res[i].gemm_ms - res[i].quant_ms - res[i].attn_ms;
            printf("%s\n  \"%s\": {\"gemm\": %.1f, \"quant\": %.1f, \"attention\": %.1f, "
                   "\"rest\": %.1f}",
                   first ? "" : ",", names[i], res[i].gemm_ms, res[i].quant_ms, res[i].attn_ms,
                   rest);
            first = 0;
        }
        printf("},\n \"errors\": {");
        first = 1;
        for (int i = 0; i < nr; i++) {
            if (res[i].ok) continue;
            printf("%s\"%s\": \"", first ? "" : ", ", names[i]);
            for (const char *p = res[i].err; *p; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) putchar(*p);
            printf("\"");
            first = 0;
        }
        printf("}}\n");
    } else {
        printf("bench train: model %s, B=%lld T=%lld, %lld timed steps, %d threads%s%s, "
               "kernels %s, fp32 on OpenBLAS %s\n",
               model, (long long)B, (long long)T, (long long)steps, threads_run,
               act_only ? ", act-only" : "", fp32_attn ? ", fp32 attention and lm_head" : "",
               hs_isa_name(), bench_blas_core());
        printf("%-*s %10s %8s %8s %9s %8s | %8s %8s %8s %8s  (ms/step)\n", w, "recipe", "tokens/s",
               "vs fp32", "vs bf16", "ms/step", "RSS MB", "GEMM", "quant", "attn", "rest");
        for (int i = 0; i < nr; i++) {
            if (!res[i].ok) {
                printf("%-*s failed: %s\n", w, names[i], res[i].err);
                continue;
            }
            double rest = res[i].ms_per_step - res[i].gemm_ms - res[i].quant_ms - res[i].attn_ms;
            char vs[16] = "-", vs16[16] = "-";
            if (base > 0) snprintf(vs, sizeof vs, "%.2fx", res[i].tokens_per_s / base);
            if (base16 > 0) snprintf(vs16, sizeof vs16, "%.2fx", res[i].tokens_per_s / base16);
            printf("%-*s %10.0f %8s %8s %9.1f %8.0f | %8.1f %8.1f %8.1f %8.1f\n", w, names[i],
                   res[i].tokens_per_s, vs, vs16, res[i].ms_per_step, rss_mb[i], res[i].gemm_ms,
                   res[i].quant_ms, res[i].attn_ms, rest);
        }
    }
    for (int i = 0; i < nr; i++)
        if (!res[i].ok) return CLI_INTERNAL;
    return CLI_OK;
}
