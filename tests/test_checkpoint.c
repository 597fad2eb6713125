/* test_checkpoint.c: checkpoint directories (checkpoint.h): save → load gives bit-identical
 * weights, optimizer state and next-step loss; config.json is a LlamaConfig; keep-K pruning;
 * a corrupt or half-written checkpoint is rejected and the previous one stays usable; shape
 * mismatches between config.json and model.safetensors are clear errors; a resumed run equals
 * an uninterrupted one; non-finite weights or moments are refused naming the tensor; pruning
 * keeps the best-validation and pinned checkpoints; fields added to the run state later read
 * as their defaults from an older trainer_state.json. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/fileio.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util.h"

static hs_model *nano(int tied, uint64_t seed) {
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("nano", &c), HS_OK);
    c.vocab = 300;
    c.tied_embeddings = tied;
    hs_model *m = NULL;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    hs_model_init_weights(m, seed);
    return m;
}

static void fill_state(hs_train_state *s, const hs_model *m, int64_t step) {
    memset(s, 0, sizeof *s);
    s->val_loss = NAN;
    s->step = step;
    s->tokens = step * 4096;
    s->n_params = m->n_params;
    s->m = malloc((size_t)m->n_params * sizeof(float));
    s->v = malloc((size_t)m->n_params * sizeof(float));
    for (int64_t i = 0; i < m->n_params; i++) {
        s->m[i] = sinf((float)i) * 1e-3f;
        s->v[i] = (float)(i % 97) * 1e-7f;
    }
}

/* A nano model with a default training config for it and AdamW state at `step` (free s->m,
 * s->v and the model). */
static hs_model *nano_run(int tied, uint64_t seed, int64_t step, hs_train_config *c,
                          hs_train_state *s) {
    hs_model *m = nano(tied, seed);
    hs_train_config_defaults(c);
    c->model = m->cfg;
    fill_state(s, m, step);
    return m;
}

/* ck/config.json parsed (its path into p); the caller deletes it. */
static cJSON *read_config(const char *ck, char *p, size_t np) {
    snprintf(p, np, "%s/config.json", ck);
    char *text = util_read_file(p, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static float loss_of(hs_model *m) {
    enum { B = 2, T = 16 };
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (i * 37 + 11) % m->cfg.vocab;
        tg[i] = (i * 53 + 5) % m->cfg.vocab;
    }
    float loss = 0;
    assert_int_equal(hs_model_forward(m, NULL, 0, in, tg, B, T, &loss), HS_OK);
    return loss;
}

static void test_save_load_identical(void **state) {
    (void)state;
    for (int tied = 0; tied <= 1; tied++) {
        hs_train_config c;
        hs_train_state s;
        hs_model *m = nano_run(tied, 7, 42, &c, &s);
        c.seed = 0x8000000000000005ULL; /* above 2^53: must survive JSON */
        c.lr = 1.0 / 3.0;               /* needs 17 digits */
        snprintf(c.recipe.roles, sizeof c.recipe.roles, "fwd.x=mxfp4:halfs:block=16");
        char run[512], saved[4096];
        snprintf(run, sizeof run, "%s/run%d", util_scratch_dir(), tied);
        assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 0, saved, sizeof saved), HS_OK);
        char want[600];
        snprintf(want, sizeof want, "%s/ckpt-000042", run);
        assert_string_equal(saved, want);

        char ck[4096];
        assert_int_equal(hs_checkpoint_resolve(run, ck, sizeof ck), HS_OK);
        assert_string_equal(ck, want);
        assert_int_equal(hs_checkpoint_resolve(want, ck, sizeof ck), HS_OK); /* a ckpt dir too */
        hs_model_config mc;
        assert_int_equal(hs_checkpoint_read_model_config(ck, &mc), HS_OK);
        assert_int_equal(mc.dim, m->cfg.dim);
        assert_int_equal(mc.tied_embeddings, tied);
        assert_true(mc.norm_eps == m->cfg.norm_eps && mc.rope_theta == m->cfg.rope_theta);
        hs_model *m2 = NULL;
        assert_int_equal(hs_model_create(&mc, &m2), HS_OK);
        hs_train_state s2;
        fill_state(&s2, m2, 0);
        memset(s2.m, 0, (size_t)m2->n_params * 4);
        assert_int_equal(hs_checkpoint_load(ck, m2, &s2), HS_OK);
        assert_memory_equal(m2->params, m->params, (size_t)m->n_params * 4);
        assert_memory_equal(s2.m, s.m, (size_t)m->n_params * 4);
        assert_memory_equal(s2.v, s.v, (size_t)m->n_params * 4);
        assert_int_equal(s2.step, 42);
        assert_int_equal(s2.tokens, 42 * 4096);
        float l1 = loss_of(m), l2 = loss_of(m2);
        assert_memory_equal(&l1, &l2, sizeof l1); /* identical next-step loss */

        hs_train_config c2;
        assert_int_equal(hs_checkpoint_read_train_config(ck, &c2), HS_OK);
        assert_true(c2.seed == c.seed);
        assert_memory_equal(&c2.lr, &c.lr, sizeof c.lr);
        assert_true(c2.min_lr == c.min_lr && c2.wd == c.wd && c2.beta2 == c.beta2 && c2.eps == c.eps);
        assert_int_equal(c2.steps, c.steps);
        assert_int_equal(c2.batch, c.batch);
        assert_int_equal(c2.warmup, c.warmup);
        assert_string_equal(c2.recipe.name, c.recipe.name);
        assert_string_equal(c2.recipe.roles, c.recipe.roles);
        assert_string_equal(c2.model_preset, c.model_preset);
        assert_int_equal(c2.model.ffn_dim, c.model.ffn_dim);
        /* every field of the config table reads back as saved */
        for (int i = 0; i < hs_train_config_n_fields; i++) {
            const hs_cfg_field *f = &hs_train_config_fields[i];
            const void *a = hs_cfg_field_cptr(f, &c), *b = hs_cfg_field_cptr(f, &c2);
            if (f->type == HS_CFG_STR || f->type == HS_CFG_LIST)
                assert_string_equal((const char *)a, (const char *)b);
            else
                assert_memory_equal(a, b, f->size);
        }

        /* config.json is a LlamaConfig; model.safetensors has the HF names. */
        char p[4200];
        cJSON *j = read_config(ck, p, sizeof p);
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "architectures"), 0)->valuestring,
                            "LlamaForCausalLM");
        assert_string_equal(cJSON_GetObjectItem(j, "model_type")->valuestring, "llama");
        assert_string_equal(cJSON_GetObjectItem(j, "hidden_act")->valuestring, "silu");
        assert_int_equal(cJSON_GetObjectItem(j, "hidden_size")->valueint, m->cfg.dim);
        assert_int_equal(cJSON_GetObjectItem(j, "num_key_value_heads")->valueint, m->cfg.n_heads);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "tie_word_embeddings")), tied);
        cJSON_Delete(j);
        hs_model_free(m2);
        free(s2.m);
        free(s2.v);
        hs_model_free(m);
        free(s.m);
        free(s.v);
    }
}

static void test_keep_and_latest(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_state s;
    hs_model *m = nano_run(1, 3, 0, &c, &s);
    char run[512], p[700];
    util_path(run, sizeof run, "keep");
    for (int step = 1; step <= 5; step++) {
        s.step = step;
        assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 2, NULL, 0), HS_OK);
    }
    for (int step = 1; step <= 5; step++) {
        snprintf(p, sizeof p, "%s/ckpt-%06d", run, step);
        assert_int_equal(hs_is_dir(p), step >= 4);
    }
    char *text;
    size_t n;
    snprintf(p, sizeof p, "%s/latest", run);
    assert_int_equal(hs_file_read_all(p, 100, &text, &n), HS_OK);
    assert_string_equal(text, "ckpt-000005\n");
    free(text);
    /* Saving the same step again replaces it cleanly. */
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 2, NULL, 0), HS_OK);
    snprintf(p, sizeof p, "%s/ckpt-000005.old", run);
    assert_false(hs_is_dir(p));

    /* A weights-only checkpoint: loads, but cannot be resumed. */
    char w[512], ck[4096];
    util_path(w, sizeof w, "weights");
    assert_int_equal(hs_checkpoint_save(w, m, NULL, NULL, NULL, 1, ck, sizeof ck), HS_OK);
    hs_train_config c2;
    assert_int_equal(hs_checkpoint_read_train_config(ck, &c2), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "--init"));
    assert_int_equal(hs_checkpoint_load(ck, m, NULL), HS_OK);
    assert_int_equal(hs_checkpoint_load(ck, m, &s), HS_ERR_IO);
    free(s.m);
    free(s.v);
    hs_model_free(m);
}

static void truncate_file(const char *path, long keep) {
    assert_int_equal(truncate(path, keep), 0);
}

static void test_corrupt_and_interrupted(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_state s;
    hs_model *m = nano_run(0, 5, 10, &c, &s);
    char run[512], p[700], ck[4096];
    util_path(run, sizeof run, "crash");
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 3, NULL, 0), HS_OK);
    float *good = malloc((size_t)m->n_params * 4);
    memcpy(good, m->params, (size_t)m->n_params * 4);

    /* A kill during the next save leaves ckpt-000020.tmp: the run still resolves to step 10. */
    snprintf(p, sizeof p, "%s/ckpt-000020.tmp", run);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/ckpt-000020.tmp/model.safetensors", run);
    FILE *f = fopen(p, "wb");
    fputs("partial", f);
    fclose(f);
    assert_int_equal(hs_checkpoint_resolve(run, ck, sizeof ck), HS_OK);
    snprintf(p, sizeof p, "%s/ckpt-000010", run);
    assert_string_equal(ck, p);
    /* `latest` lost or naming a missing checkpoint: the newest complete one is used. */
    snprintf(p, sizeof p, "%s/latest", run);
    f = fopen(p, "wb");
    fputs("ckpt-000099\n", f);
    fclose(f);
    assert_int_equal(hs_checkpoint_resolve(run, ck, sizeof ck), HS_OK);
    assert_non_null(strstr(ck, "ckpt-000010"));

    /* A later checkpoint whose weights got truncated is rejected; the model is untouched and
     * the earlier checkpoint still loads. */
    s.step = 20;
    hs_model_init_weights(m, 99);
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 3, NULL, 0), HS_OK);
    snprintf(p, sizeof p, "%s/ckpt-000020/model.safetensors", run);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    truncate_file(p, (long)sb.st_size - 100);
    hs_model *m2 = nano(0, 1);
    float *before = malloc((size_t)m2->n_params * 4);
    memcpy(before, m2->params, (size_t)m2->n_params * 4);
    snprintf(p, sizeof p, "%s/ckpt-000020", run);
    assert_int_equal(hs_checkpoint_load(p, m2, NULL), HS_ERR_CORRUPT);
    assert_memory_equal(m2->params, before, (size_t)m2->n_params * 4);
    snprintf(p, sizeof p, "%s/ckpt-000010", run);
    assert_int_equal(hs_checkpoint_load(p, m2, NULL), HS_OK);
    assert_memory_equal(m2->params, good, (size_t)m2->n_params * 4);

    /* Corrupt optimizer state: rejected, state untouched. */
    snprintf(p, sizeof p, "%s/ckpt-000010/optimizer.safetensors", run);
    f = fopen(p, "r+b");
    fseek(f, 0, SEEK_SET);
    fputc(0xff, f);
    fputc(0xff, f);
    fclose(f);
    hs_train_state s2;
    fill_state(&s2, m2, 0);
    snprintf(p, sizeof p, "%s/ckpt-000010", run);
    assert_int_equal(hs_checkpoint_load(p, m2, &s2), HS_ERR_CORRUPT);
    assert_int_equal(s2.step, 0);
    free(s2.m);
    free(s2.v);
    free(before);
    free(good);
    free(s.m);
    free(s.v);
    hs_model_free(m2);
    hs_model_free(m);
}

/* Rewrite one integer field of ckpt/config.json. */
static void edit_config(const char *ck, const char *key, int value) {
    char p[4200];
    cJSON *j = read_config(ck, p, sizeof p);
    cJSON_ReplaceItemInObject(j, key, cJSON_CreateNumber(value));
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    assert_int_equal(hs_file_write_atomic(p, out, strlen(out)), HS_OK);
    free(out);
}

static void test_config_mismatch(void **state) {
    (void)state;
    hs_model *m = nano(0, 5);
    char run[512], ck[4096];
    util_path(run, sizeof run, "mismatch");
    assert_int_equal(hs_checkpoint_save(run, m, NULL, NULL, NULL, 1, ck, sizeof ck), HS_OK);
    hs_model_config mc;
    /* intermediate_size changed: the MLP tensors no longer match. */
    edit_config(ck, "intermediate_size", m->cfg.ffn_dim * 2);
    assert_int_equal(hs_checkpoint_read_model_config(ck, &mc), HS_OK);
    hs_model *m2 = NULL;
    assert_int_equal(hs_model_create(&mc, &m2), HS_OK);
    assert_int_equal(hs_checkpoint_load(ck, m2, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "gate_proj.weight' has shape"));
    hs_model_free(m2);
    /* fewer layers than the file has: an unexpected tensor. */
    edit_config(ck, "intermediate_size", m->cfg.ffn_dim);
    edit_config(ck, "num_hidden_layers", m->cfg.n_layers - 1);
    assert_int_equal(hs_checkpoint_read_model_config(ck, &mc), HS_OK);
    assert_int_equal(hs_model_create(&mc, &m2), HS_OK);
    assert_int_equal(hs_checkpoint_load(ck, m2, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "does not have"));
    /* a model whose config differs from config.json is refused before reading. */
    assert_int_equal(hs_checkpoint_load(ck, m, NULL), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "num_hidden_layers"));
    hs_model_free(m2);
    /* impossible configs: heads not dividing the width. */
    edit_config(ck, "num_attention_heads", 7);
    edit_config(ck, "num_key_value_heads", 7);
    assert_int_equal(hs_checkpoint_read_model_config(ck, &mc), HS_ERR_CORRUPT);
    /* not a checkpoint at all */
    assert_int_equal(hs_checkpoint_resolve(util_scratch_dir(), ck, sizeof ck), HS_ERR_IO);
    assert_non_null(strstr(hs_last_error(), "neither a checkpoint"));
    hs_model_free(m);
}

/* ---- resume == uninterrupted ---- */

typedef struct {
    int64_t stop_at; /* progress hook stops the run after this step (0 = never) */
} run_ctx;

static int on_progress(void *ctx, const hs_step_metrics *row, int64_t total, double eta) {
    (void)total;
    (void)eta;
    run_ctx *rc = ctx;
    return rc->stop_at > 0 && row->step >= rc->stop_at;
}

static hs_status on_save(void *ctx, hs_trainer *t) {
    (void)ctx;
    return hs_checkpoint_save_trainer(t, NULL, 2);
}

static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    enum { N = 6000 };
    uint16_t *tok = malloc(N * sizeof *tok);
    for (int i = 0; i < N; i++) tok[i] = (uint16_t)((i * 7 + (i / 13) * 3) % 250); /* learnable */
    hs_dataset *train, *val;
    assert_int_equal(hs_dataset_from_tokens(tok, N, &train), HS_OK);
    assert_int_equal(hs_dataset_from_tokens(tok + N / 2, N / 2, &val), HS_OK);
    free(tok);
    hs_train_config c;
    hs_train_config_defaults(&c);
    assert_int_equal(hs_model_config_preset("nano", &c.model), HS_OK);
    c.model.vocab = 256;
    c.steps = 6;
    c.batch = 2;
    c.seq = 16;
    c.warmup = 2;
    c.eval_every = 2;
    c.eval_batches = 2;
    c.save_every = 100; /* only at the end (or when stopped) */
    c.threads = 1;
    snprintf(c.recipe.name, sizeof c.recipe.name, "nvfp4"); /* SR and RHT streams too */

    /* Uninterrupted. */
    util_path(c.out_dir, sizeof c.out_dir, "runA");
    hs_trainer *t;
    if (hs_trainer_create(&c, train, val, &t) != HS_OK) {
        print_error("%s\n", hs_last_error());
        fail();
    }
    run_ctx ra = {0};
    hs_train_hooks ha = {on_progress, on_save, &ra};
    assert_int_equal(hs_trainer_run(t, &ha), HS_OK);
    hs_model *ma = hs_trainer_model(t);
    float *wa = malloc((size_t)ma->n_params * 4);
    memcpy(wa, ma->params, (size_t)ma->n_params * 4);
    int64_t np = ma->n_params;
    hs_trainer_free(t);

    /* Killed after step 3 (stops and saves), then resumed to the same total. */
    util_path(c.out_dir, sizeof c.out_dir, "runB");
    assert_int_equal(hs_trainer_create(&c, train, val, &t), HS_OK);
    run_ctx rb = {3};
    hs_train_hooks hb = {on_progress, on_save, &rb};
    assert_int_equal(hs_trainer_run(t, &hb), HS_OK);
    assert_int_equal(hs_trainer_state(t)->step, 3);
    hs_trainer_free(t);
    /* A stray metrics row past the checkpoint (as a kill between row and save leaves). */
    char p[600];
    util_path(p, sizeof p, "runB/metrics.csv");
    FILE *f = fopen(p, "a");
    fputs("4,999,1.0,,1.0,1.0,1.0,1.0\n", f);
    fclose(f);

    char ck[4096];
    assert_int_equal(hs_checkpoint_resolve(c.out_dir, ck, sizeof ck), HS_OK);
    hs_train_config rc;
    assert_int_equal(hs_checkpoint_read_train_config(ck, &rc), HS_OK);
    rc.steps = 6;
    assert_int_equal(hs_trainer_create(&rc, train, val, &t), HS_OK);
    assert_int_equal(hs_checkpoint_load(ck, hs_trainer_model(t), hs_trainer_state(t)), HS_OK);
    assert_int_equal(hs_trainer_state(t)->step, 3);
    run_ctx rr = {0};
    hs_train_hooks hr = {on_progress, on_save, &rr};
    assert_int_equal(hs_trainer_run(t, &hr), HS_OK);
    assert_int_equal(hs_model_config_params(&hs_trainer_model(t)->cfg), np);
    assert_memory_equal(hs_trainer_model(t)->params, wa, (size_t)np * 4);
    hs_trainer_free(t);

    char runa[600];
    util_path(runa, sizeof runa, "runA");
    char *ma_csv = util_metrics_det(runa), *mb_csv = util_metrics_det(c.out_dir);
    assert_string_equal(ma_csv, mb_csv);
    assert_non_null(strstr(ma_csv, "\n6,")); /* six rows were written */
    free(ma_csv);
    free(mb_csv);
    free(wa);
    hs_dataset_close(train);
    hs_dataset_close(val);
}

/* A NaN or Inf in the weights or the AdamW moments: loading is an error naming the tensor, and
 * the model and state are left as they were. */
static void test_nonfinite_rejected(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_state s;
    hs_model *m = nano_run(0, 7, 4, &c, &s);
    char run[512], ck[4096];
    util_path(run, sizeof run, "nonfinite");
    const hs_param_tensor *t = hs_model_find_tensor(m, "model.layers.1.mlp.up_proj.weight");
    assert_non_null(t);
    m->params[t->offset + 5] = NAN;
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 3, ck, sizeof ck), HS_OK);
    hs_model *m2 = nano(0, 1);
    assert_int_equal(hs_checkpoint_load(ck, m2, NULL), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "model.layers.1.mlp.up_proj.weight"));
    assert_non_null(strstr(hs_last_error(), "NaN"));
    /* finite weights, an Inf in the second moment */
    m->params[t->offset + 5] = 0.5f;
    s.step = 5;
    s.v[t->offset + 2] = INFINITY;
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 3, ck, sizeof ck), HS_OK);
    assert_int_equal(hs_checkpoint_load(ck, m2, NULL), HS_OK); /* the weights alone are fine */
    hs_train_state s2;
    fill_state(&s2, m2, 0);
    assert_int_equal(hs_checkpoint_load(ck, m2, &s2), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "exp_avg_sq.model.layers.1.mlp.up_proj.weight"));
    assert_int_equal(s2.step, 0);
    free(s2.m);
    free(s2.v);
    free(s.m);
    free(s.v);
    hs_model_free(m2);
    hs_model_free(m);
}

/* Pruning keeps the newest `keep`, plus the checkpoint with the lowest recorded validation loss
 * and every checkpoint named in run_dir/pinned. */
static void test_prune_keeps_best_and_pinned(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_state s;
    hs_model *m = nano_run(1, 3, 0, &c, &s);
    char run[512], p[700];
    util_path(run, sizeof run, "prunebest");
    const double val[8] = {5.0, 4.0, 2.5, 3.0, NAN, 3.5, 4.5, NAN};
    for (int step = 1; step <= 8; step++) {
        s.step = step;
        s.val_loss = val[step - 1];
        if (step == 4) assert_int_equal(hs_checkpoint_pin(run, 2), HS_OK);
        assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 2, NULL, 0), HS_OK);
    }
    for (int step = 1; step <= 8; step++) {
        snprintf(p, sizeof p, "%s/ckpt-%06d", run, step);
        /* 7, 8 newest; 3 lowest val_loss; 2 pinned */
        if (hs_is_dir(p) != (step >= 7 || step == 3 || step == 2))
            fail_msg("ckpt-%06d: present %d", step, hs_is_dir(p));
    }
    free(s.m);
    free(s.v);
    hs_model_free(m);
}

/* A trainer_state.json of a run recorded before the schedule's horizon, the divergence guard
 * and bf16 attention existed: those fields read as their defaults (horizon 0: the run's steps),
 * but fp32_attn_lm_head as 1 (the run resumes with the attention it ran with). */
static void test_optional_fields(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_state s;
    hs_model *m = nano_run(0, 3, 6, &c, &s);
    c.horizon = 6;
    c.guard_loss_ratio = 3;
    char run[512], ck[4096], p[4200];
    util_path(run, sizeof run, "optional");
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 1, ck, sizeof ck), HS_OK);
    snprintf(p, sizeof p, "%s/trainer_state.json", ck);
    size_t n;
    char *text = util_read_file(p, &n);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *cfg = cJSON_GetObjectItem(j, "config");
    cJSON_DeleteItemFromObject(cfg, "horizon");
    cJSON_DeleteItemFromObject(cfg, "guard_loss_ratio");
    cJSON_DeleteItemFromObject(cfg, "guard_grad_norm");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "recipe"), "fp32_attn_lm_head"));
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cfg, "recipe"), "fp32_attn_lm_head");
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    assert_int_equal(hs_file_write_atomic(p, out, strlen(out)), HS_OK);
    free(out);
    hs_train_config r, d;
    hs_train_config_defaults(&d);
    assert_int_equal(hs_checkpoint_read_train_config(ck, &r), HS_OK);
    assert_int_equal(r.horizon, 0);
    assert_true(r.guard_loss_ratio == d.guard_loss_ratio);
    assert_true(r.guard_grad_norm == d.guard_grad_norm);
    assert_int_equal(r.steps, c.steps);
    assert_int_equal(c.recipe.fp32_attn_lm_head, 0);
    assert_int_equal(r.recipe.fp32_attn_lm_head, 1);
    /* a required field missing is still an error */
    assert_int_equal(hs_checkpoint_save(run, m, &c, &s, NULL, 1, ck, sizeof ck), HS_OK);
    text = util_read_file(p, &n);
    j = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "config"), "seed");
    out = cJSON_Print(j);
    cJSON_Delete(j);
    assert_int_equal(hs_file_write_atomic(p, out, strlen(out)), HS_OK);
    free(out);
    assert_int_equal(hs_checkpoint_read_train_config(ck, &r), HS_ERR_CORRUPT);
    assert_non_null(strstr(hs_last_error(), "seed"));
    free(s.m);
    free(s.v);
    hs_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_identical),
        cmocka_unit_test(test_keep_and_latest),
        cmocka_unit_test(test_corrupt_and_interrupted),
        cmocka_unit_test(test_config_mismatch),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_nonfinite_rejected),
        cmocka_unit_test(test_prune_keeps_best_and_pinned),
        cmocka_unit_test(test_optional_fields),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
