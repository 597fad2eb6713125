/* cli_model.c: what the commands that run a trained model (`sample`, `eval`) share: their
 * arguments (`halfs CMD DIR [--name value]...`, options from a table) and opening the model. DIR
 * is a run directory (its latest complete checkpoint) or a checkpoint directory; the run's
 * training config, when the checkpoint records one, supplies the default forward-pass recipe and
 * its seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "nn/recipe.h"
#include "train/trainer.h"

/* Set option o from value v (NULL for a flag). Returns 1, or 0 after printing why v is bad. */
static int set_opt(const cli_opt *o, const char *v) {
    switch (o->type) {
    case 's':
        *(const char **)o->dst = v;
        return 1;
    case 'i':
        return cli_parse_i64(o->name, v, (int64_t)o->lo, (int64_t)o->hi, (int64_t *)o->dst);
    case 'u':
        return cli_parse_u64(o->name, v, (uint64_t *)o->dst);
    case 'f':
        return cli_parse_f64(o->name, v, o->lo, o->hi, (double *)o->dst);
    default: /* 'b' */
        *(int *)o->dst = 1;
        return 1;
    }
}

static const cli_opt *find_opt(const cli_opt *opts, const char *a, int flag) {
    for (; opts->name; opts++)
        if ((opts->type == 'b') == flag && !strcmp(opts->name, a)) return opts;
    return NULL;
}

int cli_model_args(int argc, char **argv, const char *cmd, const char *usage, const cli_opt *opts,
                   void (*help)(FILE *), const char **dir) {
    *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const cli_opt *o;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            *dir = NULL;
            return CLI_OK;
        } else if ((o = find_opt(opts, a, 1)) != NULL) {
            set_opt(o, NULL);
        } else if (a[0] == '-' && a[1] == '-') {
            const char *v = cli_opt_next(argc, argv, &i, cmd);
            if (!v) return CLI_USAGE;
            if ((o = find_opt(opts, a, 0)) == NULL) {
                cli_error("unknown option '%s'", a);
                cli_hint("run `halfs %s --help`", cmd);
                return CLI_USAGE;
            }
            if (!set_opt(o, v)) return CLI_USAGE;
        } else if (!*dir) {
            *dir = a;
        } else {
            cli_error("unexpected argument '%s' (one DIR only)", a);
            return CLI_USAGE;
        }
    }
    if (!*dir) {
        cli_error("no model: give a run or checkpoint directory");
        cli_hint("usage: halfs %s %s; see `halfs %s --help`", cmd, usage, cmd);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_model_open(const char *dir, cli_model *cm) {
    cm->model = NULL;
    cm->run = NULL;
    hs_status st = hs_checkpoint_open_model(dir, &cm->model, cm->ckpt, sizeof cm->ckpt);
    if (st != HS_OK) return cli_fail_status(st, "loading the model");
    hs_train_config *tc = malloc(sizeof *tc);
    if (!tc) {
        cli_error("out of memory");
        cli_model_close(cm);
        return CLI_INTERNAL;
    }
    /* A weights-only checkpoint has no trainer state: not an error, just no run defaults. */
    if (hs_checkpoint_read_train_config(cm->ckpt, tc) == HS_OK)
        cm->run = tc;
    else
        free(tc);
    return CLI_OK;
}

int cli_model_recipe(const cli_model *cm, const char *name, uint64_t seed, hs_recipe_opts *opts,
                     hs_recipe *recipe) {
    hs_recipe_opts_defaults(opts);
    if (name) {
        /* An over-long name cannot be a preset: truncated, it still fails with its start shown. */
        snprintf(opts->name, sizeof opts->name, "%.*s", (int)sizeof opts->name - 1, name);
    } else if (cm->run) {
        *opts = cm->run->recipe;
    } else {
        snprintf(opts->name, sizeof opts->name, "fp32");
    }
    hs_status st = hs_recipe_build(opts, cm->run ? cm->run->seed : seed, recipe);
    return st == HS_OK ? CLI_OK : cli_fail_status(st, "--recipe");
}

void cli_model_close(cli_model *cm) {
    hs_model_free(cm->model);
    free(cm->run);
    cm->model = NULL;
    cm->run = NULL;
}
