/* cmd_export.c: `halfs export DIR -o MODEL.gguf [--weights mxfp4|bf16|f16|f32] [--rule R]`: a
 * trained model as a GGUF llama model for llama.cpp (src/train/gguf.h, docs/EXPORT.md). DIR is a
 * run directory (its latest checkpoint) or a checkpoint directory, and must hold the tokenizer.
 *
 * MXFP4 weights: when the run trained with an MXFP4 forward-weight role (E2M1, E8M0 scales in
 * blocks of 32 along K, no RHT, not stochastic), the file holds the codes and scales that role
 * gives the saved weights, i.e. what the next forward pass would compute with; otherwise, or when
 * --rule is given, an MXFP4 quantizer with rule R (default halfs) and RNE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nn/model.h"
#include "nn/recipe.h"
#include "train/checkpoint.h"
#include "train/fileio.h"
#include "train/gguf.h"
#include "train/trainer.h"

typedef struct {
    const char *out, *weights, *other, *rule, *name;
} export_args;

enum { EXPORT_NOPTS = 6 };

static void export_table(export_args *t, cli_opt *opts) {
    *t = (export_args){.weights = "mxfp4", .other = "f32"};
    const cli_opt o[EXPORT_NOPTS] = {
        {.name = "--out", .alias = "-o", .type = CLI_STR, .dst = &t->out, .arg = "PATH",
         .help = "the GGUF file to write (required)"},
        {.name = "--weights", .type = CLI_STR, .dst = &t->weights, .arg = "T",
         .help = "type of the seven linear weights of every block: mxfp4, bf16,\n"
                 "f16 or f32 (default: mxfp4)"},
        {.name = "--rule", .type = CLI_STR, .dst = &t->rule, .arg = "R",
         .help = "MXFP4 scale rule (ocp ceil rceil even half halfs halfs-sigma mse);\n"
                 "default: the run's forward-weight quantizer when it is MXFP4 with\n"
                 "blocks of 32, else halfs"},
        {.name = "--other", .type = CLI_STR, .dst = &t->other, .arg = "T",
         .help = "type of the embedding and output matrices: f32, bf16 or f16\n"
                 "(default: f32; norms are always f32)"},
        {.name = "--name", .type = CLI_STR, .dst = &t->name, .arg = "TEXT",
         .help = "general.name of the model (default: halfs)"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void export_help(FILE *out) {
    fprintf(out,
        "usage: halfs export DIR -o MODEL.gguf [--weights mxfp4|bf16|f16|f32] [--rule R]\n"
        "                    [--other f32|bf16|f16] [--name TEXT]\n"
        "\n"
        "Write a trained model as a GGUF llama model that llama.cpp runs: the Llama\n"
        "hyperparameters, the tokenizer (gpt2 BPE with the GPT-2 pre-tokenizer) and the\n"
        "tensors under llama.cpp's names. With --weights mxfp4 the linear weights are\n"
        "ggml MXFP4 blocks of 32 along the input dimension: for a run trained with an\n"
        "MXFP4 forward-weight role, the very codes and scales its forward pass uses.\n"
        "DIR is a run directory (its latest checkpoint) or a checkpoint directory.\n"
        "\n"
        "options:\n");
    export_args t;
    cli_opt opts[EXPORT_NOPTS];
    export_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error (no output file is left); 2 internal error.\n"
        "example: halfs export runs/small -o small-mxfp4.gguf\n"
        "         llama-cli -m small-mxfp4.gguf -p \"And God said\" -n 100\n");
}

/* The MXFP4 quantizer: the run's forward-weight spec when usable and no --rule, else rule. */
static int export_spec(const cli_model *cm, const char *rule, hs_quant_spec *spec) {
    if (!rule && cm->run) {
        hs_recipe r;
        hs_recipe_opts ro = cm->run->recipe;
        ro.n_layers = cm->run->model.n_layers;
        if (hs_recipe_build(&ro, cm->run->seed, &r) == HS_OK) {
            if (hs_gguf_spec_is_mxfp4(&r.role[HS_ROLE_FWD_W])) {
                *spec = r.role[HS_ROLE_FWD_W];
                fprintf(stderr, "halfs: note: MXFP4 codes and scales of the run's forward-weight "
                        "quantizer (recipe %s, rule %s)\n", cm->run->recipe.name,
                        hs_rule_name(spec->rule));
                if (r.hp_layers)
                    fprintf(stderr, "halfs: note: the blocks of --hp-layers trained in bf16; "
                            "they are written with the same MXFP4 quantizer\n");
                return CLI_OK;
            }
            fprintf(stderr, "halfs: note: the run's forward weights (recipe %s) are not MXFP4 in "
                    "blocks of 32: quantizing with rule halfs\n", cm->run->recipe.name);
        }
    }
    if (!rule && !cm->run)
        fprintf(stderr, "halfs: note: '%s' records no training recipe: quantizing with rule "
                "halfs\n", cm->ckpt);
    hs_quant_spec_init(spec, HS_FMT_MXFP4);
    spec->block = HS_GGUF_MXFP4_BLOCK;
    spec->rounding = HS_ROUND_RNE;
    if (rule) {
        hs_rule ru;
        if (hs_rule_parse(rule, &ru) != HS_OK) return cli_fail_status(HS_ERR_INVALID_ARG, "--rule");
        spec->rule = ru;
    }
    hs_status st = hs_quant_spec_validate(spec);
    if (st != HS_OK) return cli_fail_status(st, "--rule");
    return CLI_OK;
}

int cmd_export(int argc, char **argv) {
    export_args t;
    cli_opt opts[EXPORT_NOPTS];
    export_table(&t, opts);
    const char *dir = NULL;
    int rc = cli_model_args(argc, argv, "export", "DIR -o MODEL.gguf", opts, export_help, &dir);
    if (rc != CLI_OK || !dir) return rc;
    if (!t.out) {
        cli_error("no output file");
        cli_hint("usage: halfs export DIR -o MODEL.gguf");
        return CLI_USAGE;
    }
    hs_gguf_export_opts eo = {.name = t.name};
    hs_status st = hs_gguf_type_parse(t.weights, &eo.weights);
    if (st != HS_OK) return cli_fail_status(st, "--weights");
    if ((st = hs_gguf_type_parse(t.other, &eo.other)) != HS_OK || eo.other == HS_GGUF_MXFP4) {
        cli_error("--other must be f32, bf16 or f16, got '%s'", t.other);
        return CLI_USAGE;
    }
    if (t.rule && eo.weights != HS_GGUF_MXFP4) {
        cli_error("--rule applies to --weights mxfp4 only");
        return CLI_USAGE;
    }
    if (hs_gguf_is_file(dir)) {
        cli_error("'%s' is a GGUF file; export reads a run or checkpoint directory", dir);
        return CLI_USAGE;
    }
    cli_model cm;
    if ((rc = cli_model_open(dir, &cm)) != CLI_OK) return rc;
    char tp[4200];
    char *json = NULL;
    size_t json_n = 0;
    if (hs_checkpoint_tokenizer(cm.ckpt, tp, sizeof tp) != HS_OK) {
        cli_error("'%s' has no tokenizer.json; a GGUF model carries its tokenizer", cm.ckpt);
        cli_hint("copy the tokenizer the run was trained with into the checkpoint directory");
        cli_model_close(&cm);
        return CLI_USAGE;
    }
    if ((st = hs_file_read_all(tp, (size_t)1 << 28, &json, &json_n)) != HS_OK) {
        cli_model_close(&cm);
        return cli_fail_status(st, "reading the tokenizer");
    }
    if (eo.weights == HS_GGUF_MXFP4) rc = export_spec(&cm, t.rule, &eo.spec);
    if (rc == CLI_OK) {
        st = hs_gguf_export(cm.model, json, &eo, t.out);
        if (st != HS_OK) {
            rc = cli_fail_status(st, "writing the GGUF file");
            if (st == HS_ERR_IO) cli_hint("check that the directory of '%s' exists and is writable",
                                          t.out);
            else if (st == HS_ERR_INVALID_ARG && eo.weights == HS_GGUF_MXFP4)
                cli_hint("--weights bf16, f16 or f32 take any dimensions");
        } else {
            fprintf(stderr, "halfs: wrote %s (%s linear weights, %s embedding/output) from %s\n",
                    t.out, hs_gguf_type_name(eo.weights), hs_gguf_type_name(eo.other), cm.ckpt);
        }
    }
    free(json);
    cli_model_close(&cm);
    return rc;
}
