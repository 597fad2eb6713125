/* cli_model.c: what the commands that run a trained model (`sample`, `eval`, `capture`) share:
 * their arguments (`halfs CMD DIR [--name value]...`, options from a cli_opt table) and opening
 * the model. DIR is a run directory (its latest complete checkpoint) or a checkpoint directory;
 * the run's training config, when the checkpoint records one, supplies the default forward-pass
 * recipe and its seed. DIR may also be a GGUF file (`halfs export`): its weights run in fp32 by
 * default, and its tokenizer.json comes with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/gguf.h"
#include "nn/recipe.h"
#include "train/trainer.h"

int cli_model_args(int argc, char **argv, const char *cmd, const char *usage, cli_opt *opts,
                   void (*help)(FILE *), const char **dir) {
    *dir = NULL;
    const cli_command c = {cmd, opts, help, 1, "one DIR only"};
    int n = 0;
    int rc = cli_parse(&c, argc, argv, dir, &n);
    if (rc == CLI_HELP) {
        *dir = NULL;
        return CLI_OK;
    }
    if (rc != CLI_OK) return rc;
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
    cm->gguf = 0;
    cm->tokenizer_json = NULL;
    if (hs_gguf_is_file(dir)) {
        /* A GGUF model: its weights as stored (MXFP4 codes decoded), no run config. */
        hs_status st = hs_gguf_open_model(dir, &cm->model, &cm->tokenizer_json);
        if (st != HS_OK) return cli_fail_status(st, "loading the GGUF model");
        snprintf(cm->ckpt, sizeof cm->ckpt, "%s", dir);
        cm->gguf = 1;
        return CLI_OK;
    }
    hs_status st = hs_checkpoint_open_model(dir, &cm->model, cm->ckpt, sizeof cm->ckpt);
    if (st != HS_OK) return cli_fail_status(st, "loading the model");
    hs_train_config *tc = malloc(sizeof *tc);
    if (!tc) {
        cli_error("out of memory");
        cli_model_close(cm);
        return CLI_INTERNAL;
    }
    /* A checkpoint of a run (it has optimizer.safetensors) must have a readable
     * trainer_state.json: its recipe and seed are the model's defaults. A weights-only
     * checkpoint has neither: no run defaults (cli_model_recipe says so). */
    char p[4200], q[4200];
    snprintf(p, sizeof p, "%s/trainer_state.json", cm->ckpt);
    snprintf(q, sizeof q, "%s/optimizer.safetensors", cm->ckpt);
    if (access(p, F_OK) == 0 || access(q, F_OK) == 0) {
        if (access(p, F_OK) != 0) {
            cli_error("'%s' is missing: the checkpoint holds a run's optimizer state but not its "
                      "training state", p);
            free(tc);
            cli_model_close(cm);
            return CLI_USAGE;
        }
        st = hs_checkpoint_read_train_config(cm->ckpt, tc);
        if (st != HS_OK) {
            free(tc);
            cli_model_close(cm);
            return cli_fail_status(st, "reading the run's training state");
        }
        cm->run = tc;
    } else {
        free(tc);
    }
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
    } else if (cm->gguf) {
        /* the weights hold what the export wrote (MXFP4 values, bf16, ...): run them as they are */
        snprintf(opts->name, sizeof opts->name, "fp32");
    } else {
        snprintf(opts->name, sizeof opts->name, "fp32");
        fprintf(stderr, "halfs: note: '%s' is a weights-only checkpoint (no trainer_state.json): "
                "recipe fp32 (--recipe chooses another)\n", cm->ckpt);
    }
    opts->n_layers = cm->model ? cm->model->cfg.n_layers : 0; // what `last` in --hp-layers names
    hs_status st = hs_recipe_build(opts, cm->run ? cm->run->seed : seed, recipe);
    return st == HS_OK ? CLI_OK : cli_fail_status(st, "--recipe");
}

void cli_model_close(cli_model *cm) {
    hs_model_free(cm->model);
    free(cm->run);
    free(cm->tokenizer_json);
    cm->tokenizer_json = NULL;
    cm->model = NULL;
    cm->run = NULL;
}
