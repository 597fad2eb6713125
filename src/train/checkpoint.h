/* checkpoint.h: save and load training checkpoints, in the directory layout and files below.
 *
 * A run directory DIR holds checkpoints DIR/ckpt-NNNNNN (NNNNNN = optimizer steps completed,
 * zero-padded to 6 digits) and a pointer file DIR/latest naming the newest complete one.
 * A checkpoint directory holds:
 *   model.safetensors        the weights, F32, Hugging Face Llama names and [out, in] shapes
 *                            (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight,
 *                            ..., model.norm.weight, lm_head.weight unless tied)
 *   config.json              LlamaConfig (architectures ["LlamaForCausalLM"], model_type "llama",
 *                            vocab_size, hidden_size, intermediate_size, num_hidden_layers,
 *                            num_attention_heads, num_key_value_heads, max_position_embeddings,
 *                            rms_norm_eps, rope_theta, tie_word_embeddings, hidden_act "silu",
 *                            torch_dtype "float32", ...)
 *   tokenizer.json           the run's tokenizer, when one is known (see hs_checkpoint_save)
 *   optimizer.safetensors    AdamW moments, F32, named exp_avg.<tensor> / exp_avg_sq.<tensor>
 *                            (torch.optim's state names), same shapes as the weights
 *   trainer_state.json       {"format": "halfs-trainer-state-1", "step", "tokens", "n_params",
 *                            "loss_ema", "loss_best" (the divergence guard's memory),
 *                            "val_loss" (when these weights were evaluated), "config"}:
 *                            config holds every field of hs_train_config under the keys of
 *                            its table (src/train/train_config.h; "model" and "recipe" as
 *                            nested objects), enough to resume exactly
 * The last two are present only when the trainer state was given.
 *
 * Atomicity: the files are written into DIR/ckpt-NNNNNN.tmp, each fsync'ed, the directory is
 * fsync'ed and renamed to DIR/ckpt-NNNNNN, then DIR/latest is replaced atomically (temp +
 * rename), then older checkpoints beyond the newest `keep` are removed, except the one with the
 * lowest recorded val_loss and those named in DIR/pinned (hs_checkpoint_pin). A kill at any moment
 * leaves the previous complete checkpoint intact and `latest` pointing at a complete one; the
 * resolver also falls back to the newest complete ckpt-* when `latest` is missing or stale.
 */
#ifndef HALFS_TRAIN_CHECKPOINT_H
#define HALFS_TRAIN_CHECKPOINT_H

#include <stddef.h>

#include "halfs/status.h"
#include "nn/model.h"
#include "train/trainer.h"

#define HS_CHECKPOINT_KEEP 3 /* default number of checkpoints kept in a run directory */

/* Save a checkpoint of m (and, if c and s are non-NULL, the optimizer and trainer state) into
 * run_dir/ckpt-<s->step> (step 0 without s), creating run_dir if needed. tokenizer_json: the
 * tokenizer.json to copy in; NULL = run_dir/tokenizer.json if it exists, else tokenizer.json
 * next to c->data_path (the default corpus keeps its shards beside it), else none. keep ≥ 1:
 * checkpoints kept (≤ 0 means HS_CHECKPOINT_KEEP). saved (may be NULL) receives the path. */
hs_status hs_checkpoint_save(const char *run_dir, const hs_model *m, const hs_train_config *c,
                             const hs_train_state *s, const char *tokenizer_json, int keep,
                             char *saved, size_t saved_n);

/* Save the trainer's model, optimizer state and config into its run directory (config
 * out_dir; a no-op when that is ""), as hs_checkpoint_save. For hs_train_hooks.save. */
hs_status hs_checkpoint_save_trainer(hs_trainer *t, const char *tokenizer_json, int keep);

/* Add run_dir/ckpt-<step> to run_dir/pinned (one checkpoint name a line): pruning never
 * removes it. The trainer's CLI pins the last checkpoint taken before the divergence guard
 * fired. */
hs_status hs_checkpoint_pin(const char *run_dir, long long step);

/* The run's files in run_dir (metrics.csv, latest, pinned and ckpt-* directories): found (may
 * be NULL) receives the name of one of them, "" when there is none (a missing run_dir has
 * none). With clear, they are removed (other files stay). */
hs_status hs_checkpoint_run_files(const char *run_dir, int clear, char *found, size_t n);

/* Resolve dir, a checkpoint directory or a run directory (its latest complete checkpoint),
 * to a checkpoint directory path. HS_ERR_IO with a clear message when there is none. */
hs_status hs_checkpoint_resolve(const char *dir, char *out, size_t n);

/* The model configuration in ckpt/config.json (validated). */
hs_status hs_checkpoint_read_model_config(const char *ckpt, hs_model_config *out);

/* The training configuration in ckpt/trainer_state.json (HS_ERR_IO if the checkpoint has no
 * trainer state, e.g. weights only). */
hs_status hs_checkpoint_read_train_config(const char *ckpt, hs_train_config *out);

/* Load the weights of ckpt into m, whose config must equal config.json's; every tensor's shape
 * is checked against it, and every value must be finite (HS_ERR_CORRUPT naming the tensor). If
 * s is non-NULL, also load step, tokens, the guard's memory and the AdamW moments (checked the
 * same way) into s (s->n_params must equal m->n_params; m and v allocated). */
hs_status hs_checkpoint_load(const char *ckpt, hs_model *m, hs_train_state *s);

/* Resolve dir (as hs_checkpoint_resolve), create the model of its config.json and load its
 * weights. ckpt (may be NULL) receives the checkpoint directory. */
hs_status hs_checkpoint_open_model(const char *dir, hs_model **out, char *ckpt, size_t ckpt_n);

/* Path of ckpt/tokenizer.json if that file exists (HS_ERR_IO otherwise). */
hs_status hs_checkpoint_tokenizer(const char *ckpt, char *out, size_t n);

#endif
