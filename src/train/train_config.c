/* train_config.c: the table of the training configuration's fields (train_config.h) and the
 * defaults it gives (hs_train_config_defaults, trainer.h).
 */
#include "train/train_config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(grp, member, key_, type_) \
    .group = grp, .key = key_, .type = HS_CFG_##type_, \
    .offset = offsetof(hs_train_config, member), \
    .size = sizeof(((hs_train_config *)0)->member)

const hs_cfg_field hs_train_config_fields[] = {
    {FIELD(NULL, model_preset, "model_preset", STR), .dflt = "nano", .opt = "--model",
     .arg = "CFG", .section = "model", .help = "nano | tiny | small | medium | base",
     .resume = HS_CFG_REFUSE},
    /* The architecture: the preset's, then each dimension given overrides it. */
    {FIELD("model", model.vocab, "vocab", I32), .opt = "--vocab", .arg = "N", .lo = 2,
     .hi = 65536, .section = "model",
     .help = "vocabulary size (default: the tokenizer's size with the embedded\n"
             "corpus, else the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.dim, "dim", I32), .opt = "--dim", .arg = "N", .lo = 2, .hi = 65536,
     .section = "model", .help = "model width (default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.n_layers, "n_layers", I32), .opt = "--layers", .arg = "N", .lo = 1,
     .hi = 1024, .section = "model", .help = "transformer blocks (default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.n_heads, "n_heads", I32), .opt = "--heads", .arg = "N", .lo = 1,
     .hi = 65536, .section = "model", .help = "attention heads (default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.ffn_dim, "ffn_dim", I32), .opt = "--ffn", .arg = "N", .lo = 1,
     .hi = 1 << 20, .section = "model", .help = "SwiGLU width (default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.max_seq, "max_seq", I32), .opt = "--max-seq", .arg = "N", .lo = 1,
     .hi = 65536, .section = "model", .help = "longest sequence (default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("model", model.rope_theta, "rope_theta", F32)},
    {FIELD("model", model.norm_eps, "norm_eps", F32)},
    {FIELD("model", model.tied_embeddings, "tied_embeddings", FLAG), .opt = "--tied",
     .section = "model", .help = "tie lm_head to the embedding (default: untied)",
     .resume = HS_CFG_REFUSE},
    /* The recipe: built from these with the run's seed (nn/recipe.h). */
    {FIELD("recipe", recipe.name, "name", STR), .opt = "--recipe", .arg = "R",
     .section = "recipe",
     .help = "fp32 bf16 mxfp4-ocp mxfp4-max mxfp4-halfs mxfp4-half nvfp4\n"
             "nvfp4-4over6 fp4row-max fp4row-halfs",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.roles, "roles", LIST), .opt = "--role", .arg = "SPEC",
     .section = "recipe",
     .help = "override roles, e.g. fwd.x=mxfp4:halfs:block=16:sr; SPEC is\n"
             "ROLE=FORMAT{:FIELD}, ROLE in fwd.x fwd.w dgrad.dy dgrad.w wgrad.dy\n"
             "wgrad.x (or x, w, dy, all); FIELD a scale rule, rne|rna|rts|sr,\n"
             "block=N, rht=D or 2d; repeatable or ','-separated (default: none)",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.block, "block", I32), .opt = "--block", .arg = "N", .lo = 0,
     .hi = 128, .section = "recipe",
     .help = "block size of the MX roles (16, 32, 64, 128; default: the\n"
             "preset's, 32)",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.sr, "sr", FLAG), .opt = "--sr", .section = "recipe",
     .help = "stochastic rounding on every backward-pass role", .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.rht, "rht", I32), .opt = "--rht", .arg = "D", .lo = 0, .hi = 128,
     .section = "recipe",
     .help = "random Hadamard transform of size D (16..128) on the wgrad operands\n"
             "(default: the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.act_only, "act_only", FLAG), .opt = "--act-only",
     .section = "recipe",
     .help = "quantize only activations and output gradients (weights fp32)",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.hp_layers, "hp_layers", STR), .opt = "--hp-layers", .arg = "LIST",
     .section = "recipe",
     .help = "blocks kept in bf16, e.g. 0,5, 0-1 or last (the model's last block)\n"
             "(default: none, or the preset's)",
     .resume = HS_CFG_REFUSE},
    {FIELD("recipe", recipe.quant_lm_head, "quant_lm_head", FLAG), .opt = "--quant-lm-head",
     .section = "recipe",
     .help = "run the lm_head in the recipe too (default: bf16 in every recipe\n"
             "but fp32, where it is fp32)",
     .resume = HS_CFG_REFUSE},
    /* A run recorded before bf16 attention became the default read as 1: it resumes as it ran. */
    {FIELD("recipe", recipe.fp32_attn_lm_head, "fp32_attn_lm_head", FLAG), .dflt = "0",
     .opt = "--fp32-attn-lm-head", .section = "recipe",
     .help = "attention products and the lm_head in fp32 (default: bf16 operands,\n"
             "fp32 accumulation, in every recipe but fp32)",
     .resume = HS_CFG_REFUSE, .optional = 1, .absent = "1"},
    /* The schedule and the run. */
    {FIELD(NULL, steps, "steps", I64), .dflt = "1000", .opt = "--steps", .arg = "N", .lo = 1,
     .hi = INT64_MAX / 2, .section = "schedule",
     .help = "total optimizer steps; with --resume, the total to reach (the\n"
             "schedule stays the run's unless --replan-decay)",
     .resume = HS_CFG_CHANGE},
    {FIELD(NULL, batch, "batch", I32), .dflt = "16", .opt = "--batch", .arg = "B", .lo = 0,
     .hi = 1 << 20, .section = "schedule", .help = "sequences per micro-batch",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, seq, "seq", I32), .dflt = "256", .opt = "--seq", .arg = "T", .lo = 0,
     .hi = 1 << 20, .section = "schedule",
     .help = "tokens per sequence, ≤ the model's max-seq (lowered to it\n"
             "unless given)",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, accum, "accum", I32), .dflt = "1", .opt = "--accum", .arg = "N", .lo = 1,
     .hi = 1 << 20, .section = "schedule", .help = "micro-batches per step",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, lr, "lr", F64), .dflt = "0.003", .opt = "--lr", .arg = "LR", .lo = 0, .hi = 10,
     .section = "schedule", .help = "peak learning rate",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, min_lr, "min_lr", F64), .dflt = "0.0003", .opt = "--min-lr", .arg = "LR",
     .lo = 0, .hi = 10, .section = "schedule",
     .help = "final learning rate of the cosine decay",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, warmup, "warmup", I64), .dflt = "100", .opt = "--warmup", .arg = "N", .lo = 0,
     .hi = INT64_MAX / 2, .section = "schedule",
     .help = "linear warmup steps, at most steps/5 unless given",
     .resume = HS_CFG_REFUSE},
    /* The step where the cosine decay reaches min_lr: the run's first --steps, kept when a
     * resume extends the run (then lr stays min_lr past it) unless --replan-decay moves it.
     * 0 (library callers that do not set it) means `steps`. */
    {FIELD(NULL, horizon, "horizon", I64), .dflt = "0", .optional = 1},
    {FIELD(NULL, wd, "wd", F64), .dflt = "0.1", .opt = "--wd", .arg = "X", .lo = 0, .hi = 10,
     .section = "schedule", .help = "AdamW decoupled weight decay, matrices only",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, beta1, "beta1", F64), .dflt = "0.9"},
    {FIELD(NULL, beta2, "beta2", F64), .dflt = "0.95"},
    {FIELD(NULL, eps, "eps", F64), .dflt = "1e-8"},
    {FIELD(NULL, clip, "clip", F64), .dflt = "1.0", .opt = "--clip", .arg = "X", .lo = 0,
     .hi = 1000000000, .section = "schedule", .help = "global gradient-norm clip, 0 = off",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, eval_every, "eval_every", I64), .dflt = "100", .opt = "--eval-every",
     .arg = "N", .lo = 0, .hi = INT64_MAX / 2, .section = "run",
     .help = "evaluate every N steps and at the end, 0 = end only", .resume = HS_CFG_CHANGE},
    {FIELD(NULL, eval_batches, "eval_batches", I32), .dflt = "8", .opt = "--eval-batches",
     .arg = "N", .lo = 1, .hi = 1 << 20, .section = "run",
     .help = "validation batches per evaluation", .resume = HS_CFG_CHANGE},
    {FIELD(NULL, save_every, "save_every", I64), .dflt = "500", .opt = "--save-every",
     .arg = "N", .lo = 0, .hi = INT64_MAX / 2, .section = "run",
     .help = "checkpoint every N steps and at the end, 0 = end only",
     .resume = HS_CFG_CHANGE},
    /* The divergence guard (trainer.h): run state, changeable on resume. */
    {FIELD(NULL, guard_loss_ratio, "guard_loss_ratio", F64), .dflt = "2",
     .opt = "--guard-loss-ratio", .arg = "X", .lo = 0, .hi = 1000000000, .section = "run",
     .help = "stop when, after warmup, the smoothed training loss exceeds X times\n"
             "its best; 0 = off",
     .resume = HS_CFG_CHANGE, .optional = 1},
    {FIELD(NULL, guard_grad_norm, "guard_grad_norm", F64), .dflt = "10000",
     .opt = "--guard-grad-norm", .arg = "X", .lo = 0, .hi = 1000000000000000000, .section = "run",
     .help = "stop when the gradient norm (before clipping) exceeds X; 0 = off",
     .resume = HS_CFG_CHANGE, .optional = 1},
    {FIELD(NULL, seed, "seed", U64), .dflt = "1337", .opt = "--seed", .arg = "S",
     .section = "schedule", .help = "weights, batches, SR and RHT streams",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, threads, "threads", I32), .dflt = "0", .opt = "--threads", .arg = "N", .lo = 0,
     .hi = 1024, .section = "run", .help = "threads, 0 = all cores",
     .resume = HS_CFG_EACH_RUN},
    /* Data parallelism (docs/DISTRIBUTED.md). ranks is the job's size, set by the trainer; a
     * resumed run keeps the global batch ranks × accum and splits it over the new job's ranks. */
    {FIELD(NULL, ranks, "ranks", I32), .dflt = "1", .optional = 1, .omit_default = 1},
    {FIELD(NULL, zero, "zero", I32), .dflt = "0", .opt = "--zero", .arg = "N", .lo = 0, .hi = 1,
     .section = "run",
     .help = "under mpirun: 1 shards the AdamW state across the ranks (ZeRO-1;\n"
             "the same numbers, 1/ranks of its memory each), 0 = every rank holds it",
     .resume = HS_CFG_CHANGE, .optional = 1, .omit_default = 1},
    {FIELD(NULL, out_dir, "out_dir", STR), .opt = "--out", .arg = "DIR", .section = "run",
     .help = "run directory (default: runs/MODEL-RECIPE)", .resume = HS_CFG_REFUSE},
    {FIELD(NULL, data_path, "data_path", STR), .opt = "--data", .arg = "PATH",
     .section = "data",
     .help = "training shard (.bin) or directory of shards (default: embedded\n"
             "corpus, prepared and cached on first use)",
     .resume = HS_CFG_REFUSE},
    {FIELD(NULL, val_path, "val_path", STR), .opt = "--val", .arg = "PATH", .section = "data",
     .help = "validation shards (default: the corpus's; none with --data)",
     .resume = HS_CFG_REFUSE},
};
const int hs_train_config_n_fields =
    (int)(sizeof hs_train_config_fields / sizeof hs_train_config_fields[0]);

void hs_cfg_field_set_text(const hs_cfg_field *f, hs_train_config *c, const char *text) {
    void *p = hs_cfg_field_ptr(f, c);
    switch (f->type) {
    case HS_CFG_STR:
    case HS_CFG_LIST:
        snprintf(p, f->size, "%s", text);
        break;
    case HS_CFG_I32:
    case HS_CFG_FLAG:
        *(int32_t *)p = (int32_t)strtol(text, NULL, 10);
        break;
    case HS_CFG_I64:
        *(int64_t *)p = (int64_t)strtoll(text, NULL, 10);
        break;
    case HS_CFG_U64:
        *(uint64_t *)p = (uint64_t)strtoull(text, NULL, 10);
        break;
    case HS_CFG_F32:
        *(float *)p = strtof(text, NULL);
        break;
    case HS_CFG_F64:
        *(double *)p = strtod(text, NULL);
        break;
    }
}

void hs_train_config_defaults(hs_train_config *c) {
    memset(c, 0, sizeof *c);
    hs_recipe_opts_defaults(&c->recipe);
    for (int i = 0; i < hs_train_config_n_fields; i++)
        if (hs_train_config_fields[i].dflt)
            hs_cfg_field_set_text(&hs_train_config_fields[i], c, hs_train_config_fields[i].dflt);
    hs_model_config_preset(c->model_preset, &c->model);
}

void hs_cfg_field_format(const hs_cfg_field *f, const hs_train_config *c, char *buf, size_t n) {
    const void *p = hs_cfg_field_cptr(f, c);
    switch (f->type) {
    case HS_CFG_STR:
    case HS_CFG_LIST:
        snprintf(buf, n, "%s", (const char *)p);
        break;
    case HS_CFG_I32:
    case HS_CFG_FLAG:
        snprintf(buf, n, "%d", (int)*(const int32_t *)p);
        break;
    case HS_CFG_I64:
        snprintf(buf, n, "%lld", (long long)*(const int64_t *)p);
        break;
    case HS_CFG_U64:
        snprintf(buf, n, "%" PRIu64, *(const uint64_t *)p);
        break;
    case HS_CFG_F32:
        snprintf(buf, n, "%g", (double)*(const float *)p);
        break;
    case HS_CFG_F64:
        snprintf(buf, n, "%g", *(const double *)p);
        break;
    }
}
