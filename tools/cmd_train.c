/* cmd_train.c: `halfs train`: train a Llama-style model in a chosen FP4 recipe
 * (src/train/trainer.h, src/nn/recipe.h, src/nn/model.h).
 *
 * The options and their --help lines come from the training config's field table
 * (src/train/train_config.h), plus --resume, --init, --replan-decay, --force and --quiet. Three
 * steps: parse (argv into a config and a "given" mark per field), resolve (a new run: preset,
 * dimensions, data, run directory; --resume: the run's saved config with the options given
 * that may change applied, whatever their value, and those that may not refused), run (lock
 * the run directory, train). Every option has a default; impossible configurations are refused
 * before any work (exit 1). The run directory's contract (lock, resume, exit statuses, signals,
 * divergence guard) is docs/RUNS.md. Progress: a \r-updated line on a terminal, plain periodic
 * lines otherwise (stderr).
 *
 * Under mpirun (src/train/dist.h, docs/DISTRIBUTED.md) every rank resolves the same
 * configuration (rank 0 first: it may prepare the embedded corpus), the ranks check that they
 * agree on it, and rank 0 alone takes the lock, writes and prints. An error every rank meets
 * before training ends them all the same way; one that a single rank meets during training ends
 * the job (MPI_Abort) so that no rank waits for it forever.
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
#include "train/dist.h"
#include "train/fileio.h"
#include "train/train_config.h"
#include "train/trainer.h"

enum { TRAIN_MAX_FIELDS = 64, TRAIN_MAX_OPTS = TRAIN_MAX_FIELDS + 6 };

/* Everything the command line said. */
typedef struct {
    hs_train_config cfg; /* the defaults, with every option given applied */
    unsigned char given[TRAIN_MAX_FIELDS]; /* per field of the table: its option was given */
    const char *resume, *init;
    int quiet, force, replan;
} train_args;

/* What to run: the resolved configuration and where its state comes from. */
typedef struct {
    hs_train_config c;     /* the run's configuration */
    int resume, init;      /* continue the run of ckpt / start from ckpt's weights */
    char ckpt[4096];       /* the checkpoint directory of --resume or --init */
    hs_corpus corpus;      /* the embedded corpus, when the run trains on it */
    const char *tokenizer; /* tokenizer.json for the checkpoints (NULL: found by them) */
    int quiet, force, replan;
    int64_t saved_steps;   /* --resume: the run's --steps before this invocation */
    char changed[512];     /* --resume: the options applied, "--eval-every 50, ..." */
} train_plan;

static const char *const sections[] = {"model", "recipe", "data", "schedule", "run"};

static cli_type cli_type_of(hs_cfg_type t) {
    switch (t) {
    case HS_CFG_STR: return CLI_BUF;
    case HS_CFG_LIST: return CLI_LIST;
    case HS_CFG_I32: return CLI_I32;
    case HS_CFG_I64: return CLI_I64;
    case HS_CFG_U64: return CLI_U64;
    case HS_CFG_FLAG: return CLI_FLAG;
    default: return CLI_F64; /* HS_CFG_F64; no F32 field has an option */
    }
}

/* The option table of `halfs train` over a, ended by a NULL name: the config fields that have
 * an option, section by section in table order, then --resume, --init and --quiet.
 * field_of[k] is the config field of entry k (-1 for the others). With help (room for
 * TRAIN_MAX_OPTS texts), each field's help text gets its default appended. */
static void train_table(train_args *a, cli_opt *opts, int *field_of, char (*help)[512]) {
    hs_train_config d;
    hs_train_config_defaults(&d);
    int n = 0;
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        for (int i = 0; i < hs_train_config_n_fields; i++) {
            const hs_cfg_field *f = &hs_train_config_fields[i];
            if (!f->opt || strcmp(f->section, sections[s])) continue;
            cli_opt *o = &opts[n];
            *o = (cli_opt){.name = f->opt, .type = cli_type_of(f->type),
                           .dst = hs_cfg_field_ptr(f, &a->cfg), .lo = f->lo, .hi = f->hi,
                           .flo = (double)f->lo, .fhi = (double)f->hi, .size = f->size,
                           .arg = f->arg, .help = f->help, .section = f->section};
            if (help) {
                /* The default, from the defaults themselves, unless the text states it. */
                char v[64];
                hs_cfg_field_format(f, &d, v, sizeof v);
                const char *last = strrchr(f->help, '\n');
                size_t len = strlen(last ? last + 1 : f->help);
                if (f->type == HS_CFG_FLAG || strstr(f->help, "default"))
                    snprintf(help[n], sizeof help[n], "%s", f->help);
                else
                    snprintf(help[n], sizeof help[n], "%s%s(default: %s)", f->help,
                             len + strlen(v) + 12 > 64 ? "\n" : " ", v);
                o->help = help[n];
            }
            field_of[n++] = i;
        }
    }
    const cli_opt extra[] = {
        {.name = "--resume", .type = CLI_STR, .dst = &a->resume, .arg = "DIR", .section = "run",
         .help = "continue the run in DIR up to --steps (total); of its settings,\n"
                 "--steps, --eval-every, --eval-batches, --save-every, --threads and\n"
                 "the --guard-* thresholds may change; the others are refused"},
        {.name = "--replan-decay", .type = CLI_FLAG, .dst = &a->replan, .section = "run",
         .help = "with --resume: the cosine decay ends at the new --steps (default:\n"
                 "the run's schedule is kept, lr stays min_lr past its end)"},
        {.name = "--init", .type = CLI_STR, .dst = &a->init, .arg = "DIR", .section = "run",
         .help = "start a new run from the weights of a checkpoint"},
        {.name = "--force", .type = CLI_FLAG, .dst = &a->force, .section = "run",
         .help = "a new run into a run directory that holds a run: remove that run's\n"
                 "files (metrics.csv, latest, pinned, ckpt-*) first"},
        {.name = "--quiet", .type = CLI_FLAG, .dst = &a->quiet, .section = "run",
         .help = "no progress line"},
        {.name = NULL},
    };
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) {
        opts[n] = extra[k];
        field_of[n++] = -1;
    }
}

static void train_help(FILE *out) {
    static train_args a;
    static cli_opt opts[TRAIN_MAX_OPTS];
    static int field_of[TRAIN_MAX_OPTS];
    static char help[TRAIN_MAX_OPTS][512];
    hs_train_config_defaults(&a.cfg);
    train_table(&a, opts, field_of, help);
    fprintf(out,
        "usage: halfs train [--model CFG] [--recipe R] [--data PATH] [--val PATH] [--steps N]\n"
        "                   [--out DIR] [options]\n"
        "\n"
        "Trains a Llama-style language model (RMSNorm, RoPE attention, SwiGLU) whose every\n"
        "linear layer runs its three GEMMs (fprop, dgrad, wgrad) in the recipe's formats.\n"
        "Writes DIR/metrics.csv (step,tokens,train_loss,val_loss,lr,grad_norm,ms_per_step,\n"
        "tokens_per_s) and checkpoints; without --data it trains on the embedded corpus.\n"
        "\n");
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error (a run directory in use included);\n"
        "2 internal error; 3 interrupted by SIGINT or SIGTERM after saving a checkpoint\n"
        "(continue with --resume); 4 diverged: a NaN/Inf loss or the divergence guard\n"
        "(the last checkpoint is the last good state). The run directory's contract:\n"
        "docs/RUNS.md.\n"
        "example: halfs train --model nano --recipe mxfp4-halfs --steps 200 --out runs/nano\n");
}

/* Several ranks: *rc becomes the largest of the ranks' codes. Returns nonzero when that is an
 * error (a rank that met none returns it silently: the rank that met it said why). */
static int agree(int *rc) {
    *rc = hs_dist_max_int(*rc);
    return *rc != CLI_OK;
}

/* The signal that asked the run to stop (SIGINT or SIGTERM), 0 while none has. */
static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

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
    if (p->quiet) return interrupted != 0;
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
    return interrupted != 0;
}

typedef struct {
    progress_ctx *progress;
    const char *tokenizer; // tokenizer.json to copy into checkpoints (NULL: let it find one)
    int64_t last_saved;    // step of the run's newest checkpoint; -1: none
    int64_t steps;         // steps of this invocation
    double ms, comm_ms;    // their time, and its part inside the ranks' exchanges
    int64_t comm_bytes;    // bytes this rank sent to the others
} hooks_ctx;

static int hook_progress(void *ctx, const hs_step_metrics *r, int64_t total, double eta) {
    hooks_ctx *h = ctx;
    h->steps++;
    h->ms += r->ms_per_step;
    h->comm_ms += r->comm_ms;
    h->comm_bytes += r->comm_bytes;
    return on_progress(h->progress, r, total, eta);
}

static hs_status hook_save(void *ctx, hs_trainer *t) {
    hooks_ctx *h = ctx;
    hs_status st = hs_checkpoint_save_trainer(t, h->tokenizer, 0);
    if (st == HS_OK) h->last_saved = hs_trainer_state(t)->step;
    return st;
}

/* The config table's index of the field at offset off of hs_train_config. */
static int field_at(size_t off) {
    for (int i = 0; i < hs_train_config_n_fields; i++)
        if (hs_train_config_fields[i].offset == off) return i;
    return -1;
}
#define GIVEN(a, member) ((a)->given[field_at(offsetof(hs_train_config, member))])

/* Parse: argv into a (the defaults, each option given applied and marked given). Returns
 * CLI_OK, CLI_HELP, or the exit code after printing why. */
static int train_parse(int argc, char **argv, train_args *a) {
    memset(a, 0, sizeof *a);
    hs_train_config_defaults(&a->cfg);
    if (hs_train_config_n_fields > TRAIN_MAX_FIELDS) {
        cli_error("internal: the training config has more than %d fields", TRAIN_MAX_FIELDS);
        return CLI_INTERNAL;
    }
    cli_opt opts[TRAIN_MAX_OPTS];
    int field_of[TRAIN_MAX_OPTS];
    train_table(a, opts, field_of, NULL);
    const cli_command cmd = {"train", opts, train_help, 0, "train takes only options"};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc != CLI_OK) return rc;
    for (int k = 0; opts[k].name; k++)
        if (field_of[k] >= 0 && opts[k].given) a->given[field_of[k]] = 1;
    return CLI_OK;
}

/* Copy field i from src to dst. */
static void copy_field(int i, hs_train_config *dst, const hs_train_config *src) {
    const hs_cfg_field *f = &hs_train_config_fields[i];
    memcpy(hs_cfg_field_ptr(f, dst), hs_cfg_field_cptr(f, src), f->size);
}

/* Resolve --resume: the run's saved configuration, with the options given that may change
 * (HS_CFG_CHANGE) applied whatever their value, and this invocation's HS_CFG_EACH_RUN values. */
static int resolve_resume(const train_args *a, train_plan *p) {
    hs_status st;
    for (int i = 0; i < hs_train_config_n_fields; i++)
        if (a->given[i] && hs_train_config_fields[i].resume == HS_CFG_REFUSE) {
            cli_error("--resume continues the run as it was set up: %s cannot change (model, "
                      "recipe, data, seed, batch shape, learning-rate schedule and directory "
                      "are the run's own)", hs_train_config_fields[i].opt);
            cli_hint("to train with other settings, start a new run from its weights: halfs "
                     "train --init %s --out NEW_DIR ...", a->resume);
            return CLI_USAGE;
        }
    if (a->force) {
        cli_error("--force clears a run directory for a new run; it does not go with --resume");
        return CLI_USAGE;
    }
    if ((st = hs_checkpoint_resolve(a->resume, p->ckpt, sizeof p->ckpt)) != HS_OK)
        return cli_fail_status(st, "--resume");
    if ((st = hs_checkpoint_read_train_config(p->ckpt, &p->c)) != HS_OK) {
        int rc = cli_fail_status(st, "--resume");
        cli_hint("a run directory written by `halfs train` holds the trainer state");
        return rc;
    }
    // a run recorded before the horizon was saved decays to its own --steps
    if (p->c.horizon == 0) p->c.horizon = p->c.steps;
    p->saved_steps = p->c.steps;
    size_t used = 0;
    for (int i = 0; i < hs_train_config_n_fields; i++) {
        const hs_cfg_field *f = &hs_train_config_fields[i];
        if ((f->resume == HS_CFG_CHANGE && a->given[i]) || f->resume == HS_CFG_EACH_RUN)
            copy_field(i, &p->c, &a->cfg);
        if (f->resume == HS_CFG_CHANGE && a->given[i] && used < sizeof p->changed) {
            char v[64];
            hs_cfg_field_format(f, &p->c, v, sizeof v);
            used += (size_t)snprintf(p->changed + used, sizeof p->changed - used, "%s%s %s",
                                     used ? ", " : "", f->opt, v);
        }
    }
    if (a->replan) p->c.horizon = p->c.steps;
    // the global batch (ranks × accum micro-batches) is the run's; split it over this job
    int64_t global = (int64_t)p->c.ranks * p->c.accum;
    int n = hs_dist_size();
    if (p->c.ranks < 1 || global % n) {
        cli_error("--resume: the run's global batch of %lld micro-batches (%d rank(s) × accum "
                  "%d) does not divide over %d ranks", (long long)global, p->c.ranks,
                  p->c.accum, n);
        cli_hint("resume with a number of ranks that divides %lld", (long long)global);
        return CLI_USAGE;
    }
    if (p->c.ranks != n && used < sizeof p->changed)
        used += (size_t)snprintf(p->changed + used, sizeof p->changed - used,
                                 "%s%d rank(s) (was %d) with accum %lld, the same global batch",
                                 used ? ", " : "", n, p->c.ranks, (long long)(global / n));
    p->c.accum = (int32_t)(global / n);
    p->c.ranks = n;
    // a run directory, or one of its checkpoints (then the run is its parent)
    const char *run = a->resume;
    char parent[4096];
    if (!strcmp(p->ckpt, a->resume)) {
        snprintf(parent, sizeof parent, "%s/..", a->resume);
        run = parent;
    }
    if (strlen(run) >= sizeof p->c.out_dir) {
        cli_error("--resume: path too long");
        return CLI_USAGE;
    }
    memcpy(p->c.out_dir, run, strlen(run) + 1);
    p->resume = 1;
    return CLI_OK;
}

/* Resolve a new run (from scratch or --init): the model preset with the dimensions given,
 * the data (the embedded corpus unless --data), the run directory, the warmup cap. */
static int resolve_new(const train_args *a, train_plan *p) {
    hs_status st;
    hs_train_config *c = &p->c;
    *c = a->cfg;
    if (GIVEN(a, model_preset) &&
        hs_model_config_preset(c->model_preset, &c->model) != HS_OK) {
        cli_error("--model '%s': unknown model", c->model_preset);
        cli_hint("models: nano, tiny, small, medium, base");
        return CLI_USAGE;
    }
    int dims_given = 0; /* an architecture option (model group) was given */
    for (int i = 0; i < hs_train_config_n_fields; i++)
        if (a->given[i] && hs_train_config_fields[i].group &&
            !strcmp(hs_train_config_fields[i].group, "model"))
            dims_given = 1;
    int32_t vocab = GIVEN(a, model.vocab) ? a->cfg.model.vocab : -1;
    if (a->init) {
        // a new run from a checkpoint's weights: its architecture replaces the preset's
        if (dims_given) {
            cli_error("--init takes the architecture of the checkpoint; do not pass "
                      "dimension options");
            return CLI_USAGE;
        }
        if ((st = hs_checkpoint_resolve(a->init, p->ckpt, sizeof p->ckpt)) != HS_OK ||
            (st = hs_checkpoint_read_model_config(p->ckpt, &c->model)) != HS_OK)
            return cli_fail_status(st, "--init");
        vocab = c->model.vocab;
        p->init = 1;
    }
    // the dimensions given override the preset's (vocab below: it may come from the corpus)
    for (int i = 0; i < hs_train_config_n_fields; i++)
        if (a->given[i] && hs_train_config_fields[i].group &&
            !strcmp(hs_train_config_fields[i].group, "model") &&
            hs_train_config_fields[i].offset != offsetof(hs_train_config, model.vocab))
            copy_field(i, c, &a->cfg);
    if (!GIVEN(a, seq) && c->seq > c->model.max_seq) c->seq = c->model.max_seq;
    if (!GIVEN(a, data_path)) { // the embedded corpus, prepared and cached on first use
        if (GIVEN(a, val_path)) {
            cli_error("--val needs --data (the embedded corpus has its own validation split)");
            return CLI_USAGE;
        }
        st = hs_corpus_default(NULL, vocab > 0 ? (int)vocab : 0, &p->corpus);
        if (st != HS_OK) {
            int rc = cli_fail_status(st, "preparing the embedded corpus");
            cli_hint("pass --data PATH (llm.c .bin shards) to train on your own tokens");
            return rc;
        }
        if (strlen(p->corpus.train) >= sizeof c->data_path ||
            strlen(p->corpus.val) >= sizeof c->val_path) {
            cli_error("--data/--val/--out: path too long");
            return CLI_USAGE;
        }
        snprintf(c->data_path, sizeof c->data_path, "%s", p->corpus.train);
        snprintf(c->val_path, sizeof c->val_path, "%s", p->corpus.val);
        p->tokenizer = p->corpus.tokenizer;
        if (vocab < 0) vocab = p->corpus.vocab;
    }
    if (vocab > 0) c->model.vocab = vocab;
    if (!GIVEN(a, out_dir))
        snprintf(c->out_dir, sizeof c->out_dir, "runs/%s-%s", c->model_preset, c->recipe.name);
    if (!c->out_dir[0]) {
        cli_error("--out '' names no directory; a run needs one for its metrics and checkpoints");
        return CLI_USAGE;
    }
    if (a->replan) {
        cli_error("--replan-decay re-plans a resumed run's schedule; it needs --resume");
        return CLI_USAGE;
    }
    // a short run still reaches its peak learning rate: warmup defaults to at most steps/5
    if (!GIVEN(a, warmup) && c->warmup > c->steps / 5) c->warmup = c->steps / 5;
    c->horizon = c->steps;
    c->ranks = hs_dist_size();
    return CLI_OK;
}

/* Resolve: the configuration to run, from the options and, with --resume or --init, a
 * checkpoint; validated. Returns CLI_OK, or the exit code after printing why. */
static int train_resolve(const train_args *a, train_plan *p) {
    memset(p, 0, sizeof *p);
    p->quiet = a->quiet;
    p->force = a->force;
    p->replan = a->replan;
    if (a->resume && a->init) {
        cli_error("--resume and --init exclude each other");
        cli_hint("--resume continues a run; --init starts a new run from a checkpoint's weights");
        return CLI_USAGE;
    }
    int rc = a->resume ? resolve_resume(a, p) : resolve_new(a, p);
    if (rc != CLI_OK) return rc;
    hs_status st = hs_train_config_validate(&p->c);
    if (st != HS_OK) {
        rc = cli_fail_status(st, "invalid configuration");
        cli_hint("run `halfs train --help` for the options and their ranges");
        return rc;
    }
    return CLI_OK;
}

/* The one line that says what a resumed run will do: where it continues, the schedule (kept or
 * re-planned) and the options applied. */
static void say_resume(const train_plan *p, int64_t step) {
    const hs_train_config *c = &p->c;
    char sched[400];
    if (c->steps <= p->saved_steps)
        snprintf(sched, sizeof sched, "the schedule is the run's (decay to min_lr %g at step "
                 "%lld)", c->min_lr, (long long)c->horizon);
    else if (p->replan)
        snprintf(sched, sizeof sched, "extending %lld -> %lld steps; --replan-decay: the cosine "
                 "decay now ends at step %lld (lr at step %lld: %.3e)", (long long)p->saved_steps,
                 (long long)c->steps, (long long)c->horizon, (long long)step + 1,
                 hs_train_lr(c, step));
    else
        snprintf(sched, sizeof sched, "extending %lld -> %lld steps; the schedule is kept: lr "
                 "reaches min_lr %g at step %lld and stays there (--replan-decay decays to step "
                 "%lld instead)", (long long)p->saved_steps, (long long)c->steps, c->min_lr,
                 (long long)c->horizon, (long long)c->steps);
    fprintf(stderr, "halfs train: resuming %s at step %lld; %s%s%s\n", c->out_dir,
            (long long)step, sched, p->changed[0] ? "; applied: " : "", p->changed);
}

/* Take the run directory's lock; for a new run, refuse a directory that holds a run (or clear
 * it with --force). Returns CLI_OK with *lock_fd held, or the exit code after printing why. */
static int claim_run_dir(const train_plan *p, int *lock_fd) {
    const char *dir = p->c.out_dir;
    if (hs_dist_rank() != 0) return CLI_OK; // rank 0 writes the run directory
    hs_status st = hs_dir_lock(dir, lock_fd);
    if (st != HS_OK) {
        int rc = cli_fail_status(st, "--out");
        if (strstr(hs_last_error(), "in use"))
            cli_hint("one writer per run directory: wait for that process, or choose another --out");
        return rc;
    }
    if (p->resume) return CLI_OK;
    char found[300];
    st = hs_checkpoint_run_files(dir, p->force, found, sizeof found);
    if (st != HS_OK) {
        hs_dir_unlock(*lock_fd);
        return cli_fail_status(st, p->force ? "--force" : "--out");
    }
    if (found[0] && !p->force) {
        hs_dir_unlock(*lock_fd);
        cli_error("'%s' holds a run already (%s); a new run would mix with it", dir, found);
        cli_hint("continue it with --resume %s, remove it with --force, or choose another --out",
                 dir);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Run: lock the run directory, open the data, build the trainer (loading the checkpoint of
 * --resume or --init), train with progress and checkpoints. Returns the exit code. */
static int train_run(const train_plan *p) {
    const hs_train_config *c = &p->c;
    const int quiet = p->quiet;
    const char *data = c->data_path, *val = c->val_path[0] ? c->val_path : NULL;
    hs_status st;
    int lock_fd = -1;
    int rc = claim_run_dir(p, &lock_fd);
    if (agree(&rc)) return rc;
    hs_dataset *dtrain = NULL, *dval = NULL;
    hs_trainer *t = NULL;
    int agreed = 0; // rc, when set, is every rank's
    if ((st = hs_dataset_open(data, &dtrain)) != HS_OK) {
        rc = cli_fail_status(st, "opening --data");
        goto ready;
    }
    if (val && (st = hs_dataset_open(val, &dval)) != HS_OK) {
        rc = cli_fail_status(st, "opening --val");
        goto ready;
    }
    if ((st = hs_trainer_create(c, dtrain, dval, &t)) != HS_OK) {
        rc = cli_fail_status(st, "cannot train");
        if (strstr(hs_last_error(), "vocabulary")) cli_hint("pass --vocab N with N > the largest token id");
        goto ready;
    }
    if (p->resume || p->init) {
        st = hs_checkpoint_load(p->ckpt, hs_trainer_model(t), p->resume ? hs_trainer_state(t) : NULL);
        if (st != HS_OK) {
            rc = cli_fail_status(st, p->resume ? "--resume" : "--init");
            goto ready;
        }
        if (p->resume && hs_dist_rank() == 0) say_resume(p, hs_trainer_state(t)->step);
        if (p->resume && hs_trainer_state(t)->step >= c->steps && !quiet)
            fprintf(stderr, "halfs train: the run is already at step %lld of %lld\n",
                    (long long)hs_trainer_state(t)->step, (long long)c->steps);
    }
ready: // every rank has the same trainer, or every rank stops here
    if (hs_dist_size() > 1 && agree(&rc)) agreed = 1;
    if (rc != CLI_OK) goto done;
    if (hs_dist_size() > 1) {
        st = hs_dist_check_same((uint64_t)hs_trainer_state(t)->step, "the checkpoint's step");
        if (st != HS_OK) {
            rc = cli_fail_status(st, "--resume");
            agreed = 1;
            goto done;
        }
    }
    char desc[1024];
    hs_recipe_describe(hs_trainer_recipe(t), desc, sizeof desc);
    hs_model *m = hs_trainer_model(t);
    if (!quiet) {
        fprintf(stderr,
                "halfs train: model %s (dim %d, layers %d, heads %d, ffn %d, vocab %d; %.2fM "
                "params, %.2fM non-embedding)\n",
                c->model_preset, c->model.dim, c->model.n_layers, c->model.n_heads, c->model.ffn_dim,
                c->model.vocab, m->n_params / 1e6, hs_model_config_params_nonembed(&c->model) / 1e6);
        fprintf(stderr, "  recipe %s%s: %s\n", c->recipe.name, c->recipe.act_only ? " (act-only)" : "",
                desc);
        fprintf(stderr, "  data %s (%lld tokens), val %s; %lld steps of %d×%d×%d tokens -> %s\n",
                data, (long long)hs_dataset_size(dtrain), val ? val : "(none)",
                (long long)c->steps, c->accum, c->batch, c->seq, c->out_dir);
    }
    progress_ctx pc = {isatty(2), quiet, c->steps / 50 > 0 ? c->steps / 50 : 1, 0};
    /* SIGINT and SIGTERM (a scheduler's notice) finish the step, save and exit 3. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    hooks_ctx hc = {&pc, p->tokenizer, p->resume ? hs_trainer_state(t)->step : -1, 0, 0, 0, 0};
    hs_train_hooks hooks = {hook_progress, c->out_dir[0] ? hook_save : NULL, &hc};
    st = hs_trainer_run(t, &hooks);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (pc.printed_cr) fputc('\n', stderr);
    int64_t at = hs_trainer_state(t)->step;
    agreed = st == HS_OK || st == HS_ERR_NUMERIC; // the same numbers on every rank
    if (st == HS_ERR_NUMERIC && hs_dist_rank() != 0) {
        rc = CLI_DIVERGED; // rank 0 says why
    } else if (st == HS_ERR_NUMERIC) {
        cli_error("training stopped: %s", hs_last_error());
        if (hc.last_saved >= 0) {
            /* pruning must never remove the last good state */
            if (hs_checkpoint_pin(c->out_dir, hc.last_saved) != HS_OK)
                cli_error("cannot pin the last checkpoint: %s", hs_last_error());
            cli_hint("the last good state is %s/ckpt-%06lld (kept from pruning); lower --lr, "
                     "raise --warmup or use a more precise recipe", c->out_dir,
                     (long long)hc.last_saved);
        } else {
            cli_hint("no checkpoint was taken before; lower --lr, raise --warmup or use a more "
                     "precise recipe");
        }
        rc = CLI_DIVERGED;
    } else if (st != HS_OK) {
        rc = cli_fail_status(st, "training stopped");
    } else if (at < c->steps) { // stopped early: a signal here or, under mpirun, on a rank
        if (hs_dist_rank() == 0)
            fprintf(stderr, "halfs train: interrupted by %s after step %lld of %lld; checkpoint "
                "saved in %s; continue with `halfs train --resume %s`\n",
                interrupted == SIGTERM ? "SIGTERM" : interrupted ? "SIGINT" : "a signal to a rank",
                (long long)at, (long long)c->steps, c->out_dir, c->out_dir);
        rc = CLI_INTERRUPTED;
    } else if (!quiet) {
        hs_model_timers *tm = &m->timers;
        fprintf(stderr,
                "done: %lld steps, %lld tokens; time in model %.1fs (GEMM %.1fs, quantization "
                "%.1fs, attention %.1fs); metrics in %s/metrics.csv\n",
                (long long)hs_trainer_state(t)->step, (long long)hs_trainer_state(t)->tokens,
                tm->total, tm->gemm, tm->quant, tm->attention, c->out_dir);
        if (hs_dist_size() > 1 && hc.steps > 0)
            fprintf(stderr, "ranks: %d; gradient exchange %.1f%% of the step time (%.1f of %.1f "
                    "ms per step), %.3f MB sent per step per rank (gradient %.3f MB); AdamW "
                    "state %.3f MB on rank 0 (%.3f MB in all)\n",
                    hs_dist_size(), 100.0 * hc.comm_ms / hc.ms, hc.comm_ms / hc.steps,
                    hc.ms / hc.steps, hc.comm_bytes / 1e6 / hc.steps, m->n_params * 4 / 1e6,
                    (hs_trainer_state(t)->sharded ? hs_trainer_state(t)->shard_n : m->n_params) *
                        8 / 1e6,
                    m->n_params * 8 / 1e6);
    }
done:
    // an error only this rank met: the others may be waiting for it inside MPI
    if (rc != CLI_OK && !agreed && hs_dist_size() > 1) hs_dist_abort(rc);
    hs_trainer_free(t);
    hs_dataset_close(dtrain);
    hs_dataset_close(dval);
    hs_dir_unlock(lock_fd);
    return rc;
}


/* FNV-1a of the resolved configuration (every field but the per-process ones: threads) and of
 * where its state comes from: what the ranks of one run must agree on. */
static uint64_t plan_hash(const train_plan *p) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < hs_train_config_n_fields; i++) {
        const hs_cfg_field *f = &hs_train_config_fields[i];
        if (f->resume == HS_CFG_EACH_RUN) continue;
        const unsigned char *b = hs_cfg_field_cptr(f, &p->c);
        size_t n = f->type == HS_CFG_STR || f->type == HS_CFG_LIST ? strnlen((const char *)b, f->size)
                                                                   : f->size;
        for (size_t k = 0; k < n; k++) h = (h ^ b[k]) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; // field separator
    }
    const int flags[2] = {p->resume, p->init};
    for (int k = 0; k < 2; k++) h = (h ^ (unsigned)flags[k]) * 1099511628211ull;
    return h;
}

int cmd_train(int argc, char **argv) {
    static train_args a; /* large (paths): static */
    static train_plan p;
    int rc = train_parse(argc, argv, &a);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    hs_status st = hs_dist_init();
    if (st != HS_OK) {
        rc = cli_fail_status(st, "mpirun");
        cli_hint("run `halfs train` without mpirun, or build halfs where mpicc is installed");
        return rc;
    }
    if (hs_dist_size() > 1 && hs_dist_rank() != 0) a.quiet = 1; // rank 0 prints
    /* rank 0 resolves first (it may prepare the embedded corpus's cache), then the others */
    rc = hs_dist_rank() == 0 ? train_resolve(&a, &p) : CLI_OK;
    if (!agree(&rc)) {
        if (hs_dist_rank() != 0) rc = train_resolve(&a, &p);
        agree(&rc);
    }
    if (rc == CLI_OK && hs_dist_size() > 1) {
        st = hs_dist_check_same(plan_hash(&p), "the training configuration");
        if (st != HS_OK) {
            rc = cli_fail_status(st, "mpirun");
            cli_hint("start every rank with the same command line and the same files");
        }
    }
    if (rc == CLI_OK) rc = train_run(&p);
    hs_dist_finalize();
    return rc;
}
