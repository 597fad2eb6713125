/* cmd_train.c: `halfs train`: train a Llama-style model in a chosen FP4 recipe
 * (src/train/trainer.h, src/nn/recipe.h, src/nn/model.h).
 *
 * Every option has a default; impossible configurations are refused before any work (exit 1).
 * A NaN/Inf loss stops the run with a message, keeps the last good checkpoint, exits 1.
 * Progress: a \r-updated line on a terminal, plain periodic lines otherwise (stderr).
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train/checkpoint.h"
#include "train/corpus.h"
#include "train/dataset.h"
#include "train/trainer.h"

static void train_help(FILE *out) {
    hs_train_config d;
    hs_train_config_defaults(&d);
    fprintf(out,
        "usage: halfs train [--model CFG] [--recipe R] [--data PATH] [--val PATH] [--steps N]\n"
        "                   [--out DIR] [options]\n"
        "\n"
        "Trains a Llama-style language model (RMSNorm, RoPE attention, SwiGLU) whose every\n"
        "linear layer runs its three GEMMs (fprop, dgrad, wgrad) in the recipe's formats.\n"
        "Writes DIR/metrics.csv (step,tokens,train_loss,val_loss,lr,grad_norm,ms_per_step,\n"
        "tokens_per_s) and checkpoints; without --data it trains on the embedded corpus.\n"
        "\n"
        "model:\n"
        "  --model CFG        nano | tiny | small | medium (default: %s)\n"
        "  --dim N --layers N --heads N --ffn N --vocab N --max-seq N\n"
        "                     override one dimension of the preset (vocab defaults to the\n"
        "                     tokenizer's size with the embedded corpus, else the preset's)\n"
        "  --tied             tie lm_head to the embedding (default: untied)\n"
        "recipe:\n"
        "  --recipe R         fp32 bf16 mxfp4-ocp mxfp4-max mxfp4-halfs mxfp4-half nvfp4\n"
        "                     nvfp4-4over6 fp4row-max fp4row-halfs (default: %s)\n"
        "  --act-only         quantize only activations and output gradients (weights fp32)\n"
        "  --role SPEC        override roles, e.g. fwd.x=mxfp4:halfs:block=16:sr; SPEC is\n"
        "                     ROLE=FORMAT{:FIELD}, ROLE in fwd.x fwd.w dgrad.dy dgrad.w wgrad.dy\n"
        "                     wgrad.x (or x, w, dy, all); FIELD a scale rule, rne|rna|rts|sr,\n"
        "                     block=N, rht=D or 2d; repeatable or ','-separated\n"
        "  --sr               stochastic rounding on every backward-pass role\n"
        "  --rht D            random Hadamard transform of size D (16..128) on the wgrad operands\n"
        "  --block N          block size of the MX roles (16, 32, 64, 128; default 32)\n"
        "  --hp-layers LIST   blocks kept in bf16, e.g. 0,5 or 0-1 (default: none)\n"
        "  --quant-lm-head    run the lm_head in the recipe too (default: fp32, like the embedding)\n"
        "data:\n"
        "  --data PATH        training shard (.bin) or directory of shards (default: embedded\n"
        "                     corpus, prepared and cached on first use)\n"
        "  --val PATH         validation shards (default: the corpus's; none with --data)\n"
        "schedule:\n"
        "  --steps N          total optimizer steps (default: %lld)\n"
        "  --batch B          sequences per micro-batch (default: %d)\n"
        "  --seq T            tokens per sequence (default: %d, ≤ the model's max-seq)\n"
        "  --accum N          micro-batches per step (default: %d)\n"
        "  --lr LR            peak learning rate (default: %g)\n"
        "  --min-lr LR        final learning rate of the cosine decay (default: %g)\n"
        "  --warmup N         linear warmup steps (default: %lld, at most steps/5)\n"
        "  --wd X             AdamW decoupled weight decay, matrices only (default: %g)\n"
        "  --clip X           global gradient-norm clip, 0 = off (default: %g)\n"
        "  --seed S           weights, batches, SR and RHT streams (default: %llu)\n"
        "run:\n"
        "  --out DIR          run directory (default: runs/MODEL-RECIPE)\n"
        "  --eval-every N     evaluate every N steps and at the end, 0 = end only (default: %lld)\n"
        "  --eval-batches N   validation batches per evaluation (default: %d)\n"
        "  --save-every N     checkpoint every N steps and at the end, 0 = end only (default: %lld)\n"
        "  --threads N        threads, 0 = all cores (default: 0)\n"
        "  --resume DIR       continue the run in DIR up to --steps (total)\n"
        "  --init DIR         start a new run from the weights of a checkpoint\n"
        "  --quiet            no progress line\n"
        "  --help             this text\n"
        "\n"
        "exit status: 0 ok; 1 usage/input error or a NaN/Inf loss; 2 internal error.\n"
        "example: halfs train --model nano --recipe mxfp4-halfs --steps 200 --out runs/nano\n",
        d.model_preset, d.recipe.name, (long long)d.steps, d.batch, d.seq, d.accum, d.lr,
        d.min_lr, (long long)d.warmup, d.wd, d.clip, (unsigned long long)d.seed,
        (long long)d.eval_every, d.eval_batches, (long long)d.save_every);
}

/* OpenMP's default wait policy spins idle threads; on a machine whose cores are shared (this
 * 2-core VM with other jobs) that made a training step up to 7× slower than sleeping waits
 * (measured: nano 85 → 12 ms/step). libgomp reads OMP_WAIT_POLICY once, at program load, so
 * when the user has not chosen one we set `passive` and re-execute ourselves, once.
 * full_argv is the process's argv (argv[0] = the program). Returns only if exec fails. */
void train_omp_passive_reexec(char **full_argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("HALFS_NO_REEXEC")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("HALFS_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", full_argv);
}

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    int tty, quiet;
    int64_t log_every;
    int printed_cr; // a \r line is on screen
} progress_ctx;

static void fmt_eta(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

static int on_progress(void *vctx, const hs_step_metrics *r, int64_t total, double eta) {
    progress_ctx *p = vctx;
    if (p->quiet) return interrupted;
    char e[32], val[48] = "";
    fmt_eta(eta, e, sizeof e);
    if (!isnan(r->val_loss)) snprintf(val, sizeof val, " | val %.4f", r->val_loss);
    if (p->tty) {
        fprintf(stderr, "\rstep %lld/%lld | loss %.4f%s | lr %.2e | %.0f tok/s | ETA %s   ",
                (long long)r->step, (long long)total, r->train_loss, val, r->lr, r->tokens_per_s,
                e);
        p->printed_cr = 1;
        if (!isnan(r->val_loss) || r->step == total) {
            fputc('\n', stderr);
            p->printed_cr = 0;
        }
    } else if (r->step % p->log_every == 0 || r->step == total || !isnan(r->val_loss)) {
        fprintf(stderr, "step %lld/%lld loss %.4f%s lr %.2e grad_norm %.3f %.0f tok/s ETA %s\n",
                (long long)r->step, (long long)total, r->train_loss, val, r->lr, r->grad_norm,
                r->tokens_per_s, e);
    }
    fflush(stderr);
    return interrupted;
}

typedef struct {
    progress_ctx *progress;
    const char *tokenizer; // tokenizer.json to copy into checkpoints (NULL: let it find one)
} hooks_ctx;

static int hook_progress(void *ctx, const hs_step_metrics *r, int64_t total, double eta) {
    return on_progress(((hooks_ctx *)ctx)->progress, r, total, eta);
}

static hs_status hook_save(void *ctx, hs_trainer *t) {
    return hs_checkpoint_save_trainer(t, ((hooks_ctx *)ctx)->tokenizer, 0);
}

int cmd_train(int argc, char **argv) {
    // argv is the process's argv shifted by one (tools/halfs.c passes argv + 1)
    train_omp_passive_reexec(argv - 1);
    hs_train_config c;
    hs_train_config_defaults(&c);
    const char *model = NULL, *data = NULL, *val = NULL, *out = NULL, *resume = NULL,
               *init = NULL;
    int64_t dim = -1, layers = -1, heads = -1, ffn = -1, vocab = -1, max_seq = -1;
    int tied = 0, quiet = 0, seq_given = 0, warmup_given = 0;
    size_t roles_len = 0;
    c.recipe.roles[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        double dv;
#define NEEDV()                                                                              \
    do {                                                                                     \
        if (!v) {                                                                            \
            cli_error("%s needs a value", a);                                                \
            cli_hint("run `halfs train --help`");                                            \
            return CLI_USAGE;                                                                \
        }                                                                                    \
        i++;                                                                                 \
    } while (0)
#define INT_OPT(name, lo, hi, dst)                                                           \
    if (!strcmp(a, name)) {                                                                  \
        NEEDV();                                                                             \
        if (!cli_parse_i64(a, v, lo, hi, &iv)) return CLI_USAGE;                             \
        dst = iv;                                                                            \
        continue;                                                                            \
    }
#define F64_OPT(name, lo, hi, dst)                                                           \
    if (!strcmp(a, name)) {                                                                  \
        NEEDV();                                                                             \
        if (!cli_parse_f64(a, v, lo, hi, &dv)) return CLI_USAGE;                             \
        dst = dv;                                                                            \
        continue;                                                                            \
    }
#define STR_OPT(name, dst)                                                                   \
    if (!strcmp(a, name)) {                                                                  \
        NEEDV();                                                                             \
        dst = v;                                                                             \
        continue;                                                                            \
    }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            train_help(stdout);
            return CLI_OK;
        }
        STR_OPT("--model", model)
        STR_OPT("--data", data)
        STR_OPT("--val", val)
        STR_OPT("--out", out)
        STR_OPT("--resume", resume)
        STR_OPT("--init", init)
        INT_OPT("--steps", 1, INT64_MAX / 2, c.steps)
        INT_OPT("--batch", 0, 1 << 20, c.batch)
        if (!strcmp(a, "--seq")) {
            NEEDV();
            if (!cli_parse_i64(a, v, 0, 1 << 20, &iv)) return CLI_USAGE;
            c.seq = (int32_t)iv;
            seq_given = 1;
            continue;
        }
        INT_OPT("--accum", 1, 1 << 20, c.accum)
        F64_OPT("--lr", 0, 10, c.lr)
        F64_OPT("--min-lr", 0, 10, c.min_lr)
        if (!strcmp(a, "--warmup")) {
            NEEDV();
            if (!cli_parse_i64(a, v, 0, INT64_MAX / 2, &iv)) return CLI_USAGE;
            c.warmup = iv;
            warmup_given = 1;
            continue;
        }
        F64_OPT("--wd", 0, 10, c.wd)
        F64_OPT("--clip", 0, 1e9, c.clip)
        INT_OPT("--eval-every", 0, INT64_MAX / 2, c.eval_every)
        INT_OPT("--eval-batches", 1, 1 << 20, c.eval_batches)
        INT_OPT("--save-every", 0, INT64_MAX / 2, c.save_every)
        INT_OPT("--threads", 0, 1024, c.threads)
        INT_OPT("--dim", 2, 65536, dim)
        INT_OPT("--layers", 1, 1024, layers)
        INT_OPT("--heads", 1, 65536, heads)
        INT_OPT("--ffn", 1, 1 << 20, ffn)
        INT_OPT("--vocab", 2, 65536, vocab)
        INT_OPT("--max-seq", 1, 65536, max_seq)
        INT_OPT("--rht", 0, 128, c.recipe.rht)
        INT_OPT("--block", 0, 128, c.recipe.block)
        if (!strcmp(a, "--seed")) {
            NEEDV();
            if (!cli_parse_u64(a, v, &c.seed)) return CLI_USAGE;
            continue;
        }
        if (!strcmp(a, "--recipe")) {
            NEEDV();
            if (strlen(v) >= sizeof c.recipe.name) {
                cli_error("--recipe '%s': unknown recipe", v);
                return CLI_USAGE;
            }
            snprintf(c.recipe.name, sizeof c.recipe.name, "%s", v);
            continue;
        }
        if (!strcmp(a, "--role")) {
            NEEDV();
            size_t n = strlen(v);
            if (roles_len + n + 2 > sizeof c.recipe.roles) {
                cli_error("--role: overrides longer than %zu characters", sizeof c.recipe.roles);
                return CLI_USAGE;
            }
            if (roles_len) c.recipe.roles[roles_len++] = ',';
            memcpy(c.recipe.roles + roles_len, v, n + 1);
            roles_len += n;
            continue;
        }
        if (!strcmp(a, "--hp-layers")) {
            NEEDV();
            if (strlen(v) >= sizeof c.recipe.hp_layers) {
                cli_error("--hp-layers: list too long");
                return CLI_USAGE;
            }
            snprintf(c.recipe.hp_layers, sizeof c.recipe.hp_layers, "%s", v);
            continue;
        }
        if (!strcmp(a, "--act-only")) { c.recipe.act_only = 1; continue; }
        if (!strcmp(a, "--sr")) { c.recipe.sr = 1; continue; }
        if (!strcmp(a, "--quant-lm-head")) { c.recipe.quant_lm_head = 1; continue; }
        if (!strcmp(a, "--tied")) { tied = 1; continue; }
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        cli_error("unknown option '%s'", a);
        cli_hint("run `halfs train --help` for the options");
        return CLI_USAGE;
    }
    if (resume && init) {
        cli_error("--resume and --init exclude each other");
        cli_hint("--resume continues a run; --init starts a new run from a checkpoint's weights");
        return CLI_USAGE;
    }
    char ckpt[4096] = "";
    hs_status st;
    if ((resume || init) &&
        (st = hs_checkpoint_resolve(resume ? resume : init, ckpt, sizeof ckpt)) != HS_OK)
        return cli_fail_status(st, resume ? "--resume" : "--init");
    hs_corpus corpus;
    const char *tokenizer = NULL; // tokenizer.json for the checkpoints (NULL: found by them)
    if (resume) {
        // The run's own configuration, from its checkpoint. --steps (always the total),
        // --threads, --eval-every, --save-every and --quiet may change; nothing else may.
        hs_train_config saved;
        if ((st = hs_checkpoint_read_train_config(ckpt, &saved)) != HS_OK) {
            int rc = cli_fail_status(st, "--resume");
            cli_hint("a run directory written by `halfs train` holds the trainer state");
            return rc;
        }
        if (model || data || val || out || dim >= 0 || layers >= 0 || heads >= 0 || ffn >= 0 ||
            vocab >= 0 || max_seq >= 0 || tied) {
            cli_error("--resume continues the run with its own model, data and directory; do "
                      "not pass --model, --data, --val, --out or dimension options");
            return CLI_USAGE;
        }
        hs_train_config d;
        hs_train_config_defaults(&d);
        hs_train_config given = c;
        c = saved;
        if (given.steps != d.steps) c.steps = given.steps;
        if (given.eval_every != d.eval_every) c.eval_every = given.eval_every;
        if (given.save_every != d.save_every) c.save_every = given.save_every;
        c.threads = given.threads;
        // a run directory, or one of its checkpoints (then the run is its parent)
        const char *run = resume;
        char parent[4096];
        if (!strcmp(ckpt, resume)) {
            snprintf(parent, sizeof parent, "%s/..", resume);
            run = parent;
        }
        if (strlen(run) >= sizeof c.out_dir) {
            cli_error("--resume: path too long");
            return CLI_USAGE;
        }
        memcpy(c.out_dir, run, strlen(run) + 1);
    } else {
        if (model) { // model: preset, then overrides
            if (strlen(model) >= sizeof c.model_preset ||
                hs_model_config_preset(model, &c.model) != HS_OK) {
                cli_error("--model '%s': unknown model", model);
                cli_hint("models: nano, tiny, small, medium");
                return CLI_USAGE;
            }
            snprintf(c.model_preset, sizeof c.model_preset, "%s", model);
        }
        if (init) {
            // a new run from a checkpoint's weights: its architecture replaces the preset's
            if (dim >= 0 || layers >= 0 || heads >= 0 || ffn >= 0 || max_seq >= 0 || tied ||
                vocab >= 0) {
                cli_error("--init takes the architecture of the checkpoint; do not pass "
                          "dimension options");
                return CLI_USAGE;
            }
            if ((st = hs_checkpoint_read_model_config(ckpt, &c.model)) != HS_OK)
                return cli_fail_status(st, "--init");
            vocab = c.model.vocab;
        }
        if (dim >= 0) c.model.dim = (int32_t)dim;
        if (layers >= 0) c.model.n_layers = (int32_t)layers;
        if (heads >= 0) c.model.n_heads = (int32_t)heads;
        if (ffn >= 0) c.model.ffn_dim = (int32_t)ffn;
        if (max_seq >= 0) c.model.max_seq = (int32_t)max_seq;
        if (tied) c.model.tied_embeddings = 1;
        if (!seq_given && c.seq > c.model.max_seq) c.seq = c.model.max_seq;
        if (!data) { // the embedded corpus, prepared and cached on first use
            if (val) {
                cli_error("--val needs --data (the embedded corpus has its own validation split)");
                return CLI_USAGE;
            }
            st = hs_corpus_default(NULL, vocab > 0 ? (int)vocab : 0, &corpus);
            if (st != HS_OK) {
                int rc = cli_fail_status(st, "preparing the embedded corpus");
                cli_hint("pass --data PATH (llm.c .bin shards) to train on your own tokens");
                return rc;
            }
            data = corpus.train;
            val = corpus.val;
            tokenizer = corpus.tokenizer;
            if (vocab < 0) vocab = corpus.vocab;
        }
        if (vocab > 0) c.model.vocab = (int32_t)vocab;
        if (strlen(data) >= sizeof c.data_path || (val && strlen(val) >= sizeof c.val_path) ||
            (out && strlen(out) >= sizeof c.out_dir)) {
            cli_error("--data/--val/--out: path too long");
            return CLI_USAGE;
        }
        memcpy(c.data_path, data, strlen(data) + 1);
        if (val) memcpy(c.val_path, val, strlen(val) + 1);
        if (!out)
            snprintf(c.out_dir, sizeof c.out_dir, "runs/%s-%s", c.model_preset, c.recipe.name);
        else
            memcpy(c.out_dir, out, strlen(out) + 1);
    }
    data = c.data_path;
    val = c.val_path[0] ? c.val_path : NULL;
    // a short run still reaches its peak learning rate: warmup defaults to at most steps/5
    if (!resume && !warmup_given && c.warmup > c.steps / 5) c.warmup = c.steps / 5;

    st = hs_train_config_validate(&c);
    if (st != HS_OK) {
        int rc = cli_fail_status(st, "invalid configuration");
        cli_hint("run `halfs train --help` for the options and their ranges");
        return rc;
    }
    hs_dataset *dtrain = NULL, *dval = NULL;
    if ((st = hs_dataset_open(data, &dtrain)) != HS_OK)
        return cli_fail_status(st, "opening --data");
    if (val && (st = hs_dataset_open(val, &dval)) != HS_OK) {
        hs_dataset_close(dtrain);
        return cli_fail_status(st, "opening --val");
    }
    hs_trainer *t;
    if ((st = hs_trainer_create(&c, dtrain, dval, &t)) != HS_OK) {
        int rc = cli_fail_status(st, "cannot train");
        if (strstr(hs_last_error(), "vocabulary")) cli_hint("pass --vocab N with N > the largest token id");
        hs_dataset_close(dtrain);
        hs_dataset_close(dval);
        return rc;
    }
    if (resume || init) {
        st = hs_checkpoint_load(ckpt, hs_trainer_model(t), resume ? hs_trainer_state(t) : NULL);
        if (st != HS_OK) {
            int rc = cli_fail_status(st, resume ? "--resume" : "--init");
            hs_trainer_free(t);
            hs_dataset_close(dtrain);
            hs_dataset_close(dval);
            return rc;
        }
        if (resume && hs_trainer_state(t)->step >= c.steps && !quiet)
            fprintf(stderr, "halfs train: the run is already at step %lld of %lld\n",
                    (long long)hs_trainer_state(t)->step, (long long)c.steps);
    }
    char desc[1024];
    hs_recipe_describe(hs_trainer_recipe(t), desc, sizeof desc);
    hs_model *m = hs_trainer_model(t);
    if (!quiet) {
        fprintf(stderr,
                "halfs train: model %s (dim %d, layers %d, heads %d, ffn %d, vocab %d; %.2fM "
                "params, %.2fM non-embedding)\n",
                c.model_preset, c.model.dim, c.model.n_layers, c.model.n_heads, c.model.ffn_dim,
                c.model.vocab, m->n_params / 1e6, hs_model_config_params_nonembed(&c.model) / 1e6);
        fprintf(stderr, "  recipe %s%s: %s\n", c.recipe.name, c.recipe.act_only ? " (act-only)" : "",
                desc);
        fprintf(stderr, "  data %s (%lld tokens), val %s; %lld steps of %d×%d×%d tokens -> %s\n",
                data, (long long)hs_dataset_size(dtrain), val ? val : "(none)",
                (long long)c.steps, c.accum, c.batch, c.seq, c.out_dir);
    }
    progress_ctx pc = {isatty(2), quiet, c.steps / 50 > 0 ? c.steps / 50 : 1, 0};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    hooks_ctx hc = {&pc, tokenizer};
    hs_train_hooks hooks = {hook_progress, c.out_dir[0] ? hook_save : NULL, &hc};
    st = hs_trainer_run(t, &hooks);
    sigaction(SIGINT, &old, NULL);
    if (pc.printed_cr) fputc('\n', stderr);
    int rc = CLI_OK;
    if (st != HS_OK) {
        rc = cli_fail_status(st, "training stopped");
        if (st == HS_ERR_NUMERIC)
            cli_hint("lower --lr, raise --warmup or use a more precise recipe; the last "
                     "checkpoint in %s is the last good state", c.out_dir);
    } else if (!quiet) {
        hs_model_timers *tm = &m->timers;
        fprintf(stderr,
                "done: %lld steps, %lld tokens; time in model %.1fs (GEMM %.1fs, quantization "
                "%.1fs, attention %.1fs); metrics in %s/metrics.csv\n",
                (long long)hs_trainer_state(t)->step, (long long)hs_trainer_state(t)->tokens,
                tm->total, tm->gemm, tm->quant, tm->attention, c.out_dir);
        if (interrupted) fprintf(stderr, "interrupted: stopped early\n");
    }
    hs_trainer_free(t);
    hs_dataset_close(dtrain);
    hs_dataset_close(dval);
    return rc;
}
