/* checkpoint.c: atomic checkpoint directories: model.safetensors + config.json (Hugging Face
 * Llama), tokenizer.json, optimizer.safetensors + trainer_state.json (checkpoint.h). */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/dist.h"
#include "train/fileio.h"
#include "train/safetensors.h"
#include "train/train_config.h"

#define PATH_N 4096
#define STATE_FORMAT "halfs-trainer-state-1"

/* ------------------------------------------------------------------ small helpers */

/* Remove a flat directory (the files in it, then itself). */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[PATH_N + 300];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* "ckpt-" followed by exactly 6+ digits and nothing else: its step, else -1. */
static long long ckpt_step(const char *name) {
    if (strncmp(name, "ckpt-", 5)) return -1;
    const char *p = name + 5;
    if (strlen(p) < 6) return -1;
    long long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000000LL) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int is_complete(const char *ckpt) {
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/model.safetensors", ckpt);
    if (!hs_is_file(p)) return 0;
    snprintf(p, sizeof p, "%s/config.json", ckpt);
    return hs_is_file(p);
}

/* Shortest decimal that reads back as exactly the float v. */
static cJSON *json_float(float v) {
    char buf[48];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

/* A double written with 17 significant digits: reads back bit-exactly. */
static cJSON *json_double(double v) {
    char buf[48];
    snprintf(buf, sizeof buf, "%.17g", v);
    return cJSON_CreateRaw(buf);
}

static hs_status write_json(const char *path, cJSON *root) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return hs_fail(HS_ERR_NOMEM, "out of memory writing '%s'", path);
    size_t n = strlen(text);
    text[n] = '\n';
    hs_status st = hs_file_write_atomic(path, text, n + 1);
    free(text);
    return st;
}

static hs_status read_json(const char *path, cJSON **out) {
    char *text;
    size_t n;
    hs_status st = hs_file_read_all(path, (size_t)64 << 20, &text, &n);
    if (st != HS_OK) return st;
    *out = cJSON_ParseWithLength(text, n);
    free(text);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return hs_fail(HS_ERR_CORRUPT, "'%s' is not a valid JSON object", path);
    }
    return HS_OK;
}

/* ------------------------------------------------------------------ config.json */

static cJSON *llama_config(const hs_model_config *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddItemToObject(j, "architectures", arch);
    cJSON_AddStringToObject(j, "model_type", "llama");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->ffn_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "head_dim", c->n_heads > 0 ? c->dim / c->n_heads : 0);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_seq);
    cJSON_AddItemToObject(j, "rms_norm_eps", json_float(c->norm_eps));
    cJSON_AddItemToObject(j, "rope_theta", json_float(c->rope_theta));
    cJSON_AddNullToObject(j, "rope_scaling");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied_embeddings != 0);
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddBoolToObject(j, "attention_bias", 0);
    cJSON_AddBoolToObject(j, "mlp_bias", 0);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    return j;
}

static int get_int(const cJSON *j, const char *key, int32_t *out, int required, int32_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return !required;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int32_t)v->valuedouble) return 0;
    *out = (int32_t)v->valuedouble;
    return 1;
}

hs_status hs_checkpoint_read_model_config(const char *ckpt, hs_model_config *out) {
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/config.json", ckpt);
    cJSON *j;
    hs_status st = read_json(p, &j);
    if (st != HS_OK) return st;
    memset(out, 0, sizeof *out);
    static const char *const req[5] = {"vocab_size", "hidden_size", "intermediate_size",
                                       "num_hidden_layers", "num_attention_heads"};
    int32_t *dst[5] = {&out->vocab, &out->dim, &out->ffn_dim, &out->n_layers, &out->n_heads};
    for (int k = 0; k < 5; k++)
        if (!get_int(j, req[k], dst[k], 1, 0)) {
            cJSON_Delete(j);
            return hs_fail(HS_ERR_CORRUPT, "'%s': %s is missing or not an integer", p, req[k]);
        }
    int32_t kv;
    if (!get_int(j, "max_position_embeddings", &out->max_seq, 1, 0) ||
        !get_int(j, "num_key_value_heads", &kv, 0, out->n_heads)) {
        cJSON_Delete(j);
        return hs_fail(HS_ERR_CORRUPT, "'%s': max_position_embeddings or num_key_value_heads is "
                       "missing or not an integer", p);
    }
    if (kv != out->n_heads) {
        cJSON_Delete(j);
        return hs_fail(HS_ERR_UNSUPPORTED, "'%s': grouped-query attention (num_key_value_heads %d "
                       "!= num_attention_heads %d) is not supported", p, kv, out->n_heads);
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "rms_norm_eps");
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(j, "rope_theta");
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    const char *bad = NULL;
    if (!cJSON_IsNumber(eps)) bad = "rms_norm_eps is missing or not a number";
    else if (theta && !cJSON_IsNumber(theta)) bad = "rope_theta is not a number";
    else if (tie && !cJSON_IsBool(tie)) bad = "tie_word_embeddings is not a boolean";
    else if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu")))
        bad = "hidden_act is not \"silu\"";
    else if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "llama")))
        bad = "model_type is not \"llama\"";
    else if (rs && !cJSON_IsNull(rs)) bad = "rope_scaling is not supported";
    if (bad) {
        cJSON_Delete(j);
        return hs_fail(HS_ERR_CORRUPT, "'%s': %s", p, bad);
    }
    out->norm_eps = (float)eps->valuedouble;
    out->rope_theta = theta ? (float)theta->valuedouble : 10000.0f;
    out->tied_embeddings = tie ? cJSON_IsTrue(tie) : 0;
    cJSON_Delete(j);
    st = hs_model_config_validate(out);
    if (st != HS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", hs_last_error());
        return hs_fail(HS_ERR_CORRUPT, "'%s' describes an impossible model: %s", p, msg);
    }
    return HS_OK;
}

/* ------------------------------------------------------------------ trainer_state.json */

/* The "config" object: every field of the table (train_config.h), in its order, under its
 * group ("model", "recipe") or at the top. */
static cJSON *train_config_json(const hs_train_config *c) {
    cJSON *j = cJSON_CreateObject(), *grp = NULL;
    const char *gname = NULL;
    hs_train_config d;
    hs_train_config_defaults(&d);
    for (int i = 0; i < hs_train_config_n_fields; i++) {
        const hs_cfg_field *f = &hs_train_config_fields[i];
        if (f->omit_default &&
            !memcmp(hs_cfg_field_cptr(f, c), hs_cfg_field_cptr(f, &d), f->size))
            continue;
        cJSON *o = j;
        if (f->group) {
            if (!gname || strcmp(gname, f->group)) {
                grp = cJSON_CreateObject();
                cJSON_AddItemToObject(j, f->group, grp);
                gname = f->group;
            }
            o = grp;
        }
        const void *p = hs_cfg_field_cptr(f, c);
        switch (f->type) {
        case HS_CFG_STR:
        case HS_CFG_LIST:
            cJSON_AddStringToObject(o, f->key, p);
            break;
        case HS_CFG_I32:
        case HS_CFG_FLAG:
            cJSON_AddNumberToObject(o, f->key, *(const int32_t *)p);
            break;
        case HS_CFG_I64:
            cJSON_AddNumberToObject(o, f->key, (double)*(const int64_t *)p);
            break;
        case HS_CFG_U64: {
            char v[32]; /* a string: 64 bits do not fit a double */
            snprintf(v, sizeof v, "%" PRIu64, *(const uint64_t *)p);
            cJSON_AddStringToObject(o, f->key, v);
            break;
        }
        case HS_CFG_F32:
            cJSON_AddItemToObject(o, f->key, json_float(*(const float *)p));
            break;
        case HS_CFG_F64:
            cJSON_AddItemToObject(o, f->key, json_double(*(const double *)p));
            break;
        }
    }
    return j;
}

/* Read every field of the table from the "config" object j: all are required but the optional
 * ones, which take their default when absent (a run recorded before they existed). */
static hs_status parse_train_config(const cJSON *j, const char *path, hs_train_config *c) {
    hs_train_config d;
    hs_train_config_defaults(&d);
    memset(c, 0, sizeof *c);
    for (int i = 0; i < hs_train_config_n_fields; i++) {
        const hs_cfg_field *f = &hs_train_config_fields[i];
        const cJSON *o = j;
        if (f->group) {
            o = cJSON_GetObjectItemCaseSensitive(j, f->group);
            if (!cJSON_IsObject(o))
                return hs_fail(HS_ERR_CORRUPT, "'%s': config.%s is missing", path, f->group);
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f->key);
        void *p = hs_cfg_field_ptr(f, c);
        if (!v && f->optional) {
            if (f->absent) hs_cfg_field_set_text(f, c, f->absent);
            else memcpy(p, hs_cfg_field_cptr(f, &d), f->size);
            continue;
        }
        int ok;
        if (f->type == HS_CFG_STR || f->type == HS_CFG_LIST || f->type == HS_CFG_U64) {
            ok = cJSON_IsString(v) && strlen(v->valuestring) < (f->type == HS_CFG_U64 ? 32 : f->size);
            if (ok && f->type == HS_CFG_U64) {
                char *end = NULL;
                *(uint64_t *)p = strtoull(v->valuestring, &end, 10);
                ok = v->valuestring[0] && !*end;
            } else if (ok) {
                memcpy(p, v->valuestring, strlen(v->valuestring) + 1);
            }
        } else {
            ok = cJSON_IsNumber(v);
            double d = ok ? v->valuedouble : 0;
            if (f->type == HS_CFG_I32 || f->type == HS_CFG_FLAG) *(int32_t *)p = (int32_t)d;
            else if (f->type == HS_CFG_I64) *(int64_t *)p = (int64_t)d;
            else if (f->type == HS_CFG_F32) *(float *)p = (float)d;
            else *(double *)p = d;
        }
        if (!ok)
            return hs_fail(HS_ERR_CORRUPT, "'%s': config.%s is missing or malformed", path, f->key);
    }
    return HS_OK;
}

hs_status hs_checkpoint_read_train_config(const char *ckpt, hs_train_config *out) {
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/trainer_state.json", ckpt);
    if (!hs_is_file(p))
        return hs_fail(HS_ERR_IO, "'%s' has no trainer_state.json (a weights-only checkpoint "
                       "cannot be resumed; use --init to start a new run from it)", ckpt);
    cJSON *j;
    hs_status st = read_json(p, &j);
    if (st != HS_OK) return st;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, STATE_FORMAT)) {
        cJSON_Delete(j);
        return hs_fail(HS_ERR_CORRUPT, "'%s' is not a %s file", p, STATE_FORMAT);
    }
    st = parse_train_config(cJSON_GetObjectItemCaseSensitive(j, "config"), p, out);
    cJSON_Delete(j);
    return st;
}

/* ------------------------------------------------------------------ save */

/* The tensors of m's table over base (params, or an AdamW moment in the same layout). */
static hs_st_tensor *tensor_list(const hs_model *m, const float *base, const char *prefix,
                                 char (*names)[96]) {
    hs_st_tensor *t = calloc((size_t)m->n_tensors, sizeof *t);
    if (!t) return NULL;
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *p = &m->tensors[i];
        snprintf(names[i], 96, "%s%s", prefix, p->name);
        t[i].name = names[i];
        t[i].dtype = HS_DT_F32;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
        t[i].data = base + p->offset;
    }
    return t;
}

static hs_status write_tensors(const char *path, const hs_model *m, const float *base,
                               const char *prefix) {
    char (*names)[96] = calloc((size_t)m->n_tensors, sizeof *names);
    hs_st_tensor *t = names ? tensor_list(m, base, prefix, names) : NULL;
    hs_status st;
    if (!t) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
    } else {
        const char *meta[2] = {"format", "pt"};
        st = hs_safetensors_write(path, t, m->n_tensors, meta, 1);
    }
    free(t);
    free(names);
    return st;
}

static hs_status copy_file(const char *src, const char *dst) {
    char *buf;
    size_t n;
    hs_status st = hs_file_read_all(src, (size_t)1 << 30, &buf, &n);
    if (st != HS_OK) return st;
    st = hs_file_write_atomic(dst, buf, n);
    free(buf);
    return st;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The validation loss a checkpoint recorded (its trainer_state.json "val_loss"), else NAN. */
static double ckpt_val_loss(const char *ckpt) {
    char p[PATH_N + 400];
    snprintf(p, sizeof p, "%s/trainer_state.json", ckpt);
    cJSON *j = NULL;
    double v = NAN;
    if (hs_is_file(p) && read_json(p, &j) == HS_OK) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "val_loss");
        if (cJSON_IsNumber(x)) v = x->valuedouble;
    }
    cJSON_Delete(j);
    hs_clear_error();
    return v;
}

/* 1 if run_dir/pinned names the checkpoint of this step. */
static int is_pinned(const char *run_dir, long long step) {
    char p[PATH_N + 16], want[64];
    snprintf(p, sizeof p, "%.4000s/pinned", run_dir);
    snprintf(want, sizeof want, "ckpt-%06lld", step);
    char *text;
    size_t n;
    if (!hs_is_file(p) || hs_file_read_all(p, (size_t)1 << 20, &text, &n) != HS_OK) {
        hs_clear_error();
        return 0;
    }
    int found = 0;
    for (char *line = strtok(text, "\n"); line && !found; line = strtok(NULL, "\n"))
        found = !strcmp(line, want);
    free(text);
    return found;
}

hs_status hs_checkpoint_pin(const char *run_dir, long long step) {
    if (is_pinned(run_dir, step)) return HS_OK;
    char p[PATH_N + 16], line[64];
    snprintf(p, sizeof p, "%.4000s/pinned", run_dir);
    char *old = NULL;
    size_t n = 0;
    if (hs_is_file(p)) {
        hs_status st = hs_file_read_all(p, (size_t)1 << 20, &old, &n);
        if (st != HS_OK) return st;
    }
    int k = snprintf(line, sizeof line, "ckpt-%06lld\n", step);
    const void *parts[2] = {old ? old : "", line};
    size_t sizes[2] = {n, (size_t)k};
    hs_status st = hs_file_write_atomic_parts(p, parts, sizes, 2);
    free(old);
    return st;
}

/* Remove old checkpoints beyond the newest `keep`, and stale temporary directories; never the
 * current one, those run_dir/pinned names, nor the one with the lowest recorded validation
 * loss. */
static void prune(const char *run_dir, int keep, long long current) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    long long *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    char p[PATH_N + 300];
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "ckpt-", 5) && len > 4 &&
            (!strcmp(e->d_name + len - 4, ".tmp") || !strcmp(e->d_name + len - 4, ".old"))) {
            snprintf(p, sizeof p, "%s/%s", run_dir, e->d_name);
            remove_flat_dir(p);
            continue;
        }
        long long s = ckpt_step(e->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            long long *q = realloc(steps, cap * sizeof *q);
            if (!q) break;
            steps = q;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (steps) qsort(steps, n, sizeof *steps, cmp_ll);
    long long best = -1;
    double best_v = INFINITY;
    for (size_t i = 0; n > (size_t)keep && i < n; i++) {
        snprintf(p, sizeof p, "%s/ckpt-%06lld", run_dir, steps[i]);
        double v = ckpt_val_loss(p);
        if (v < best_v) best_v = v, best = steps[i];
    }
    for (size_t i = 0; n > (size_t)keep && i < n - (size_t)keep; i++) {
        if (steps[i] == current || steps[i] == best || is_pinned(run_dir, steps[i])) continue;
        snprintf(p, sizeof p, "%s/ckpt-%06lld", run_dir, steps[i]);
        remove_flat_dir(p);
    }
    free(steps);
}

hs_status hs_checkpoint_save(const char *run_dir, const hs_model *m, const hs_train_config *c,
                             const hs_train_state *s, const char *tokenizer_json, int keep,
                             char *saved, size_t saved_n) {
    if (!run_dir || !*run_dir || !m)
        return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_save: no run directory or model");
    if ((c == NULL) != (s == NULL))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_save: give both config and state, or neither");
    if (s && (s->n_params != m->n_params || !s->m || !s->v || s->sharded))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_save: the optimizer state does not match the model");
    if (keep <= 0) keep = HS_CHECKPOINT_KEEP;
    hs_status st = hs_mkdir_p(run_dir);
    if (st != HS_OK) return st;
    long long step = s ? (long long)s->step : 0;
    char final[PATH_N], tmp[PATH_N + 8], old[PATH_N + 8], p[PATH_N + 64];
    snprintf(final, sizeof final, "%.4000s/ckpt-%06lld", run_dir, step);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    snprintf(old, sizeof old, "%s.old", final);
    remove_flat_dir(tmp); /* a leftover of an interrupted save */
    if (mkdir(tmp, 0755) != 0)
        return hs_fail(HS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));

    snprintf(p, sizeof p, "%s/model.safetensors", tmp);
    st = write_tensors(p, m, m->params, "");
    if (st == HS_OK) {
        snprintf(p, sizeof p, "%s/config.json", tmp);
        st = write_json(p, llama_config(&m->cfg));
    }
    /* The tokenizer: given, or in the run directory, or beside the training data. */
    char tok[PATH_N + 64] = "";
    if (tokenizer_json) {
        snprintf(tok, sizeof tok, "%s", tokenizer_json);
    } else {
        snprintf(tok, sizeof tok, "%.4000s/tokenizer.json", run_dir);
        if (!hs_is_file(tok) && c && c->data_path[0]) {
            if (hs_is_dir(c->data_path)) {
                snprintf(tok, sizeof tok, "%.4000s/tokenizer.json", c->data_path);
            } else {
                const char *slash = strrchr(c->data_path, '/');
                int dl = slash ? (int)(slash - c->data_path) : 1;
                snprintf(tok, sizeof tok, "%.*s/tokenizer.json", dl > 4000 ? 4000 : dl,
                         slash ? c->data_path : ".");
            }
        }
        if (!hs_is_file(tok)) tok[0] = '\0';
    }
    if (st == HS_OK && tok[0]) {
        snprintf(p, sizeof p, "%s/tokenizer.json", tmp);
        st = copy_file(tok, p);
    }
    if (st == HS_OK && s) {
        snprintf(p, sizeof p, "%s/optimizer.safetensors", tmp);
        char (*names)[96] = calloc((size_t)m->n_tensors * 2, sizeof *names);
        hs_st_tensor *t1 = names ? tensor_list(m, s->m, "exp_avg.", names) : NULL;
        hs_st_tensor *t2 = t1 ? tensor_list(m, s->v, "exp_avg_sq.", names + m->n_tensors) : NULL;
        hs_st_tensor *all = t2 ? calloc((size_t)m->n_tensors * 2, sizeof *all) : NULL;
        if (!all) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
        } else {
            memcpy(all, t1, (size_t)m->n_tensors * sizeof *all);
            memcpy(all + m->n_tensors, t2, (size_t)m->n_tensors * sizeof *all);
            const char *meta[2] = {"format", "pt"};
            st = hs_safetensors_write(p, all, 2 * m->n_tensors, meta, 1);
        }
        free(all);
        free(t2);
        free(t1);
        free(names);
    }
    if (st == HS_OK && s) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "format", STATE_FORMAT);
        cJSON_AddNumberToObject(j, "step", (double)s->step);
        cJSON_AddNumberToObject(j, "tokens", (double)s->tokens);
        cJSON_AddNumberToObject(j, "n_params", (double)s->n_params);
        if (isfinite(s->loss_ema) && isfinite(s->loss_best)) {
            cJSON_AddItemToObject(j, "loss_ema", json_double(s->loss_ema));
            cJSON_AddItemToObject(j, "loss_best", json_double(s->loss_best));
        }
        if (isfinite(s->val_loss)) cJSON_AddItemToObject(j, "val_loss", json_double(s->val_loss));
        cJSON_AddItemToObject(j, "config", train_config_json(c));
        snprintf(p, sizeof p, "%s/trainer_state.json", tmp);
        st = write_json(p, j);
    }
    if (st == HS_OK) st = hs_dir_fsync(tmp);
    if (st != HS_OK) {
        remove_flat_dir(tmp);
        return st;
    }
    /* Replace a checkpoint of the same step (a re-save after resuming) via a .old name. */
    if (hs_is_dir(final)) {
        remove_flat_dir(old);
        if (rename(final, old) != 0) {
            st = hs_fail(HS_ERR_IO, "cannot move '%s' aside: %s", final, strerror(errno));
            remove_flat_dir(tmp);
            return st;
        }
    }
    if (rename(tmp, final) != 0) {
        st = hs_fail(HS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        remove_flat_dir(tmp);
        return st;
    }
    st = hs_dir_fsync(run_dir);
    if (st != HS_OK) return st;
    char latest[PATH_N + 16], line[64];
    snprintf(latest, sizeof latest, "%.4000s/latest", run_dir);
    int k = snprintf(line, sizeof line, "ckpt-%06lld\n", step);
    st = hs_file_write_atomic(latest, line, (size_t)k);
    if (st != HS_OK) return st;
    remove_flat_dir(old);
    prune(run_dir, keep, step);
    if (saved && saved_n) snprintf(saved, saved_n, "%s", final);
    return HS_OK;
}

hs_status hs_checkpoint_save_trainer(hs_trainer *t, const char *tokenizer_json, int keep) {
    if (!t) return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_save_trainer: NULL trainer");
    const hs_train_config *c = hs_trainer_config(t);
    if (!c->out_dir[0]) return HS_OK;
    const hs_train_state *s = hs_trainer_state(t);
    const int N = hs_dist_size(), rank = hs_dist_rank();
    if (N == 1 && !s->sharded)
        return hs_checkpoint_save(c->out_dir, hs_trainer_model(t), c, s, tokenizer_json, keep,
                                  NULL, 0);
    /* Several ranks: every rank comes here; the AdamW shards (ZeRO-1) are gathered to rank 0,
     * which alone writes, then tells the others how it went. */
    hs_train_state full = *s;
    hs_status st = HS_OK;
    float *fm = NULL, *fv = NULL;
    if (s->sharded) {
        int *counts = malloc(sizeof(int) * (size_t)N), *displs = malloc(sizeof(int) * (size_t)N);
        if (rank == 0) {
            fm = malloc(sizeof(float) * (size_t)(s->n_params ? s->n_params : 1));
            fv = malloc(sizeof(float) * (size_t)(s->n_params ? s->n_params : 1));
        }
        int bad = !counts || !displs || (rank == 0 && (!fm || !fv));
        if (hs_dist_max_int(bad)) {
            st = hs_fail(HS_ERR_NOMEM, "checkpoint: out of memory gathering the optimizer state");
        } else {
            hs_trainer_shards(t, counts, displs);
            st = hs_dist_gatherv_f32(s->m, fm, counts, displs);
            if (st == HS_OK) st = hs_dist_gatherv_f32(s->v, fv, counts, displs);
        }
        free(counts);
        free(displs);
        full.m = fm;
        full.v = fv;
        full.sharded = 0;
        full.shard_lo = full.shard_n = 0;
    }
    if (st == HS_OK && rank == 0)
        st = hs_checkpoint_save(c->out_dir, hs_trainer_model(t), c, &full, tokenizer_json, keep,
                                NULL, 0);
    free(fm);
    free(fv);
    int32_t code = st;
    hs_status bst = hs_dist_bcast_i32(&code, 1);
    if (bst != HS_OK) return bst;
    if (rank != 0 && code != HS_OK && st == HS_OK)
        return hs_fail((hs_status)code, "rank 0 could not save the checkpoint (its message says "
                       "why)");
    return st;
}

/* A run's own entries of a run directory: metrics.csv, latest, pinned, ckpt-* (complete or
 * not). The lock file and anything else are not the run's. */
static int is_run_entry(const char *name) {
    return !strcmp(name, "metrics.csv") || !strcmp(name, "latest") || !strcmp(name, "pinned") ||
           !strncmp(name, "ckpt-", 5);
}

hs_status hs_checkpoint_run_files(const char *run_dir, int clear, char *found, size_t n) {
    if (found && n) found[0] = '\0';
    DIR *d = opendir(run_dir);
    if (!d) {
        if (errno == ENOENT) return HS_OK;
        return hs_fail(HS_ERR_IO, "cannot read the directory '%s': %s", run_dir, strerror(errno));
    }
    struct dirent *e;
    char p[PATH_N + 300];
    hs_status st = HS_OK;
    while ((e = readdir(d)) != NULL) {
        if (!is_run_entry(e->d_name)) continue;
        if (found && n && !found[0]) snprintf(found, n, "%s", e->d_name);
        if (!clear) continue;
        snprintf(p, sizeof p, "%.4000s/%s", run_dir, e->d_name);
        if (hs_is_dir(p)) remove_flat_dir(p);
        else unlink(p);
        if (access(p, F_OK) == 0 && st == HS_OK)
            st = hs_fail(HS_ERR_IO, "cannot remove '%s'", p);
    }
    closedir(d);
    if (st == HS_OK && clear) st = hs_dir_fsync(run_dir);
    return st;
}

/* ------------------------------------------------------------------ resolve and load */

hs_status hs_checkpoint_resolve(const char *dir, char *out, size_t n) {
    if (!dir || !*dir) return hs_fail(HS_ERR_INVALID_ARG, "no checkpoint directory given");
    if (!hs_is_dir(dir)) return hs_fail(HS_ERR_IO, "'%s' is not a directory", dir);
    if (is_complete(dir)) {
        snprintf(out, n, "%s", dir);
        return HS_OK;
    }
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/latest", dir);
    char *text;
    size_t len;
    if (hs_file_read_all(p, 256, &text, &len) == HS_OK) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (ckpt_step(text) >= 0) {
            snprintf(p, sizeof p, "%s/%s", dir, text);
            if (is_complete(p)) {
                free(text);
                snprintf(out, n, "%s", p);
                return HS_OK;
            }
        }
        free(text);
    }
    hs_clear_error();
    /* No usable pointer: the newest complete checkpoint. */
    DIR *d = opendir(dir);
    long long best = -1;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            long long s = ckpt_step(e->d_name);
            if (s <= best) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (is_complete(p)) best = s;
        }
        closedir(d);
    }
    if (best < 0)
        return hs_fail(HS_ERR_IO, "'%s' is neither a checkpoint (model.safetensors + config.json) "
                       "nor a run directory with a complete checkpoint", dir);
    snprintf(out, n, "%s/ckpt-%06lld", dir, best);
    return HS_OK;
}

hs_status hs_checkpoint_tokenizer(const char *ckpt, char *out, size_t n) {
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/tokenizer.json", ckpt);
    if (!hs_is_file(p)) return hs_fail(HS_ERR_IO, "'%s' has no tokenizer.json", ckpt);
    snprintf(out, n, "%s", p);
    return HS_OK;
}

/* A NaN or Inf in a stored tensor is an error naming the tensor (file and index): training
 * on, evaluating or sampling from it would only spread it. */
static hs_status check_finite(const char *file, const char *name, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return hs_fail(HS_ERR_CORRUPT, "'%s': tensor '%s' holds a non-finite value (%s at "
                           "index %lld)", file, name, isnan(x[i]) ? "NaN" : "Inf", (long long)i);
    return HS_OK;
}

/* Read every tensor of m's table, named prefix+name, from st into dst (params layout), and
 * refuse tensors the table does not know. */
static hs_status load_tensors(const hs_safetensors *st, const char *file, const hs_model *m,
                              const char *prefix, float *dst) {
    char name[128];
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *p = &m->tensors[i];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        hs_status s = hs_safetensors_read_f32(st, name, p->ndim, shape, dst + p->offset);
        if (s != HS_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", hs_last_error());
            return hs_fail(HS_ERR_CORRUPT, "'%s' does not match config.json: %s", file, msg);
        }
        if ((s = check_finite(file, name, dst + p->offset, p->numel)) != HS_OK) return s;
    }
    size_t np = strlen(prefix);
    for (int i = 0; i < hs_safetensors_count(st); i++) {
        const char *nm = hs_safetensors_get(st, i)->name;
        if (strncmp(nm, prefix, np) || !hs_model_find_tensor(m, nm + np))
            return hs_fail(HS_ERR_CORRUPT, "'%s' has tensor '%s', which the model of config.json "
                           "(%d layers%s) does not have", file, nm, m->cfg.n_layers,
                           m->cfg.tied_embeddings ? ", tied embeddings" : "");
    }
    return HS_OK;
}

static const char *config_diff(const hs_model_config *a, const hs_model_config *b) {
    if (a->vocab != b->vocab) return "vocab_size";
    if (a->dim != b->dim) return "hidden_size";
    if (a->n_layers != b->n_layers) return "num_hidden_layers";
    if (a->n_heads != b->n_heads) return "num_attention_heads";
    if (a->ffn_dim != b->ffn_dim) return "intermediate_size";
    if (a->max_seq != b->max_seq) return "max_position_embeddings";
    if (a->rope_theta != b->rope_theta) return "rope_theta";
    if (a->norm_eps != b->norm_eps) return "rms_norm_eps";
    if ((a->tied_embeddings != 0) != (b->tied_embeddings != 0)) return "tie_word_embeddings";
    return NULL;
}

hs_status hs_checkpoint_load(const char *ckpt, hs_model *m, hs_train_state *s) {
    if (!ckpt || !m) return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_load: NULL argument");
    hs_model_config mc;
    hs_status st = hs_checkpoint_read_model_config(ckpt, &mc);
    if (st != HS_OK) return st;
    const char *diff = config_diff(&mc, &m->cfg);
    if (diff)
        return hs_fail(HS_ERR_INVALID_ARG, "'%s/config.json' differs from the model in %s", ckpt, diff);
    if (s && (s->n_params != m->n_params || !s->m || !s->v || s->sharded))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_load: the optimizer state does not match the model");
    /* Everything is read and checked into scratch first: on any error m and s are unchanged. */
    size_t bytes = (size_t)m->n_params * sizeof(float);
    float *w = malloc(bytes ? bytes : 4), *mm = NULL, *vv = NULL;
    if (!w) return hs_fail(HS_ERR_NOMEM, "out of memory");
    char p[PATH_N + 64];
    snprintf(p, sizeof p, "%s/model.safetensors", ckpt);
    hs_safetensors *sf = NULL;
    st = hs_safetensors_open(p, &sf);
    if (st == HS_OK) st = load_tensors(sf, p, m, "", w);
    hs_safetensors_close(sf);
    sf = NULL;
    int64_t step = 0, tokens = 0;
    double loss_ema = 0, loss_best = 0;
    if (st == HS_OK && s) {
        snprintf(p, sizeof p, "%s/trainer_state.json", ckpt);
        cJSON *j = NULL;
        if (!hs_is_file(p)) {
            st = hs_fail(HS_ERR_IO, "'%s' has no trainer_state.json (a weights-only checkpoint "
                         "cannot be resumed; use --init)", ckpt);
        } else {
            st = read_json(p, &j);
        }
        if (st == HS_OK) {
            const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "step");
            const cJSON *jt = cJSON_GetObjectItemCaseSensitive(j, "tokens");
            if (!cJSON_IsNumber(js) || !cJSON_IsNumber(jt) || js->valuedouble < 0 || jt->valuedouble < 0)
                st = hs_fail(HS_ERR_CORRUPT, "'%s': step or tokens is missing", p);
            else {
                step = (int64_t)js->valuedouble;
                tokens = (int64_t)jt->valuedouble;
            }
            /* The guard's memory (absent in a run recorded before the guard: it starts over) */
            const cJSON *je = cJSON_GetObjectItemCaseSensitive(j, "loss_ema");
            const cJSON *jb = cJSON_GetObjectItemCaseSensitive(j, "loss_best");
            if (st == HS_OK && ((je && !cJSON_IsNumber(je)) || (jb && !cJSON_IsNumber(jb))))
                st = hs_fail(HS_ERR_CORRUPT, "'%s': loss_ema or loss_best is not a number", p);
            else {
                loss_ema = cJSON_IsNumber(je) ? je->valuedouble : 0;
                loss_best = cJSON_IsNumber(jb) ? jb->valuedouble : 0;
            }
        }
        cJSON_Delete(j);
        mm = malloc(bytes ? bytes : 4);
        vv = malloc(bytes ? bytes : 4);
        if (st == HS_OK && (!mm || !vv)) st = hs_fail(HS_ERR_NOMEM, "out of memory");
        snprintf(p, sizeof p, "%s/optimizer.safetensors", ckpt);
        if (st == HS_OK) st = hs_safetensors_open(p, &sf);
        if (st == HS_OK) {
            /* Two prefixes in one file: check each against the table, then the total count. */
            for (int i = 0; st == HS_OK && i < m->n_tensors; i++) {
                const hs_param_tensor *t = &m->tensors[i];
                char name[128];
                int64_t shape[2] = {t->shape[0], t->shape[1]};
                snprintf(name, sizeof name, "exp_avg.%s", t->name);
                st = hs_safetensors_read_f32(sf, name, t->ndim, shape, mm + t->offset);
                if (st == HS_OK) {
                    snprintf(name, sizeof name, "exp_avg_sq.%s", t->name);
                    st = hs_safetensors_read_f32(sf, name, t->ndim, shape, vv + t->offset);
                }
                if (st != HS_OK) {
                    char msg[400];
                    snprintf(msg, sizeof msg, "%s", hs_last_error());
                    st = hs_fail(HS_ERR_CORRUPT, "'%s' does not match the model: %s", p, msg);
                }
                if (st == HS_OK) {
                    snprintf(name, sizeof name, "exp_avg.%s", t->name);
                    st = check_finite(p, name, mm + t->offset, t->numel);
                }
                if (st == HS_OK) {
                    snprintf(name, sizeof name, "exp_avg_sq.%s", t->name);
                    st = check_finite(p, name, vv + t->offset, t->numel);
                }
            }
            if (st == HS_OK && hs_safetensors_count(sf) != 2 * m->n_tensors)
                st = hs_fail(HS_ERR_CORRUPT, "'%s' has %d tensors, expected %d", p,
                             hs_safetensors_count(sf), 2 * m->n_tensors);
        }
        hs_safetensors_close(sf);
    }
    if (st == HS_OK) {
        memcpy(m->params, w, bytes);
        if (s) {
            memcpy(s->m, mm, bytes);
            memcpy(s->v, vv, bytes);
            s->step = step;
            s->tokens = tokens;
            s->loss_ema = loss_ema;
            s->loss_best = loss_best;
            s->val_loss = NAN;
        }
    }
    free(w);
    free(mm);
    free(vv);
    return st;
}

hs_status hs_checkpoint_open_model(const char *dir, hs_model **out, char *ckpt, size_t ckpt_n) {
    if (!out) return hs_fail(HS_ERR_INVALID_ARG, "hs_checkpoint_open_model: NULL argument");
    *out = NULL;
    char ck[PATH_N];
    hs_status st = hs_checkpoint_resolve(dir, ck, sizeof ck);
    if (st != HS_OK) return st;
    hs_model_config mc;
    st = hs_checkpoint_read_model_config(ck, &mc);
    if (st != HS_OK) return st;
    hs_model *m = NULL;
    st = hs_model_create(&mc, &m);
    if (st != HS_OK) return st;
    st = hs_checkpoint_load(ck, m, NULL);
    if (st != HS_OK) {
        hs_model_free(m);
        return st;
    }
    if (ckpt && ckpt_n) snprintf(ckpt, ckpt_n, "%s", ck);
    *out = m;
    return HS_OK;
}
