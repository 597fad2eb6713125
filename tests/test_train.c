/* test_train.c: the training loop: it learns, it is deterministic across thread counts, it
 * refuses impossible configurations, and it stops cleanly on a NaN; the CLI's run-directory
 * contract (docs/RUNS.md): the lock, resume rules and schedule, the divergence guard, SIGTERM.
 *
 * "Learns": nano on a short repeated text reaches a loss far below the text's unigram entropy
 * (what a model that ignores context can reach at best), in fp32 and in mxfp4-halfs.
 */
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
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nn/ops.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/trainer.h"

static const char TEXT[] =
    "the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
    "all that glitters is not gold. the early bird catches the worm. ";

/* Tokens: characters of TEXT mapped to a small alphabet, repeated to n tokens. */
static hs_dataset *make_data(int64_t n, int *vocab, double *unigram_nats) {
    int map[256];
    int V = 0;
    for (int i = 0; i < 256; i++) map[i] = -1;
    for (const char *p = TEXT; *p; p++)
        if (map[(unsigned char)*p] < 0) map[(unsigned char)*p] = V++;
    uint16_t *tok = malloc(sizeof(uint16_t) * (size_t)n);
    double count[256] = {0};
    size_t L = strlen(TEXT);
    for (int64_t i = 0; i < n; i++) {
        tok[i] = (uint16_t)map[(unsigned char)TEXT[i % L]];
        count[tok[i]] += 1;
    }
    double H = 0;
    for (int v = 0; v < V; v++)
        if (count[v] > 0) H -= count[v] / n * log(count[v] / n);
    hs_dataset *d = NULL;
    assert_int_equal(hs_dataset_from_tokens(tok, n, &d), HS_OK);
    free(tok);
    *vocab = V;
    *unigram_nats = H;
    return d;
}

static void nano_config(hs_train_config *c, const char *recipe, int vocab) {
    hs_train_config_defaults(c);
    hs_model_config_preset("nano", &c->model);
    c->model.vocab = vocab;
    snprintf(c->recipe.name, sizeof c->recipe.name, "%s", recipe);
    c->batch = 8;
    c->seq = 64;
    c->steps = 150;
    c->lr = 1e-2;
    c->min_lr = 1e-3;
    c->warmup = 10;
    c->eval_every = 0;
    c->eval_batches = 2;
    c->save_every = 0;
    c->seed = 42;
}

static void learns(const char *recipe) {
    int V;
    double H;
    hs_dataset *d = make_data(20000, &V, &H);
    hs_train_config c;
    nano_config(&c, recipe, V);
    hs_trainer *t;
    assert_int_equal(hs_trainer_create(&c, d, d, &t), HS_OK);
    hs_step_metrics r = {0};
    double first = 0;
    for (int64_t s = 0; s < c.steps; s++) {
        hs_status st = hs_trainer_step(t, &r);
        if (st != HS_OK) fail_msg("%s step %lld: %s", recipe, (long long)s, hs_last_error());
        if (s == 0) first = r.train_loss;
    }
    double vl;
    assert_int_equal(hs_trainer_eval(t, &vl), HS_OK);
    hs_model_timers *tm = &hs_trainer_model(t)->timers;
    printf("  %s: unigram entropy %.3f nats; loss %.3f -> %.3f (val %.3f); model %.2fs "
           "(gemm %.2f quant %.2f attention %.2f)\n",
           recipe, H, first, r.train_loss, vl, tm->total, tm->gemm, tm->quant, tm->attention);
    // The text is deterministic given a few characters of context: a model that uses context
    // must get far below the unigram entropy (≈ 2.9 nats here).
    if (!(vl < 0.25 * H)) fail_msg("%s: val loss %.3f not below a quarter of the unigram "
                                   "entropy %.3f", recipe, vl, H);
    assert_true(first > 0.8 * log((double)V)); // started near chance
    hs_trainer_free(t);
    hs_dataset_close(d);
}

static void test_learns_fp32(void **state) {
    (void)state;
    learns("fp32");
}

static void test_learns_mxfp4_halfs(void **state) {
    (void)state;
    learns("mxfp4-halfs");
}

/* ---- determinism: metrics.csv identical (except timing columns) for 1 and 2 threads ---- */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    b[n] = '\0';
    fclose(f);
    return b;
}

/* Drop the last two columns (ms_per_step, tokens_per_s) of every line. */
static void strip_timing(char *s) {
    char *out = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int commas = 0;
        size_t keep = len;
        for (size_t i = len; i > 0; i--)
            if (line[i - 1] == ',' && ++commas == 2) {
                keep = i - 1;
                break;
            }
        memmove(out, line, keep);
        out += keep;
        *out++ = '\n';
        line += len + (nl ? 1 : 0);
    }
    *out = '\0';
}

static char *run_metrics(const char *recipe, int threads, const char *dir, int steps) {
    int V;
    double H;
    hs_dataset *d = make_data(5000, &V, &H);
    hs_train_config c;
    nano_config(&c, recipe, V);
    c.steps = steps;
    c.threads = threads;
    c.eval_every = 3;
    c.batch = 4;
    c.seq = 32;
    snprintf(c.out_dir, sizeof c.out_dir, "%s", dir);
    hs_trainer *t;
    assert_int_equal(hs_trainer_create(&c, d, d, &t), HS_OK);
    hs_status st = hs_trainer_run(t, NULL);
    if (st != HS_OK) fail_msg("run %s: %s", recipe, hs_last_error());
    hs_trainer_free(t);
    hs_dataset_close(d);
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    char *m = read_file(path);
    assert_non_null(m);
    unlink(path);
    return m;
}

static void test_deterministic_threads(void **state) {
    (void)state;
    char tmpl[] = "/tmp/halfs-train-XXXXXX";
    const char *base = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/halfs-train-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    (void)tmpl;
    const char *recipes[] = {"fp32", "mxfp4-halfs", "nvfp4", "bf16"};
    for (int i = 0; i < 4; i++) {
        char *a = run_metrics(recipes[i], 1, dir, 6);
        char *b = run_metrics(recipes[i], 2, dir, 6);
        static const char hdr[] =
            "step,tokens,train_loss,val_loss,lr,grad_norm,ms_per_step,tokens_per_s\n";
        assert_true(strncmp(a, hdr, strlen(hdr)) == 0);
        int rows = 0;
        for (char *p = a; *p; p++) rows += *p == '\n';
        assert_int_equal(rows, 7); // header + 6 steps
        strip_timing(a);
        strip_timing(b);
        if (strcmp(a, b)) fail_msg("%s: metrics differ between 1 and 2 threads:\n%s\n---\n%s",
                                   recipes[i], a, b);
        // val_loss only on steps 3 and 6
        assert_non_null(strstr(a, "\n3,"));
        free(a);
        free(b);
    }
    rmdir(dir);
}

/* ---- refused configurations ---- */
static void test_refuses(void **state) {
    (void)state;
    int V;
    double H;
    hs_dataset *d = make_data(2000, &V, &H);
    hs_train_config c;
    hs_trainer *t = NULL;
    nano_config(&c, "mxfp4-halfs", V);
    c.model.n_heads = 5; // 64 % 5
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "heads"));
    nano_config(&c, "mxfp4-halfs", V);
    c.seq = c.model.max_seq + 1;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "seq"));
    nano_config(&c, "mxfp4-halfs", V);
    c.batch = 0;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    nano_config(&c, "mxfp4-halfs", V - 1); // data holds token V-1
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "vocab"));
    nano_config(&c, "mxfp4-fast", V);
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    nano_config(&c, "mxfp4-halfs", V);
    c.recipe.rht = 128; // wgrad reduces over B·T = 8·64 = 512: fine; but ...
    c.batch = 3;        // ... 3·64 = 192 is not a multiple of 128
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "RHT"));
    nano_config(&c, "mxfp4-halfs", V);
    snprintf(c.recipe.hp_layers, sizeof c.recipe.hp_layers, "%s", "5");
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    nano_config(&c, "mxfp4-halfs", V);
    c.min_lr = 2 * c.lr;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    nano_config(&c, "mxfp4-halfs", V);
    c.seq = 4000; // longer than the data too, but max_seq is checked first
    c.model.max_seq = 4096;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_ERR_INVALID_ARG);
    assert_null(t);
    hs_dataset_close(d);
}

/* ---- NaN: the step is refused, the weights are untouched, the run stops with an error ---- */
static void test_nan_stops(void **state) {
    (void)state;
    int V;
    double H;
    hs_dataset *d = make_data(2000, &V, &H);
    hs_train_config c;
    nano_config(&c, "mxfp4-halfs", V);
    c.steps = 5;
    char dir[512];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/halfs-nan-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(c.out_dir, sizeof c.out_dir, "%s", dir);
    hs_trainer *t;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_OK);
    hs_step_metrics r;
    assert_int_equal(hs_trainer_step(t, &r), HS_OK);
    hs_model *m = hs_trainer_model(t);
    const hs_param_tensor *nt = hs_model_find_tensor(m, "model.norm.weight");
    m->params[nt->offset + 3] = NAN;
    float *copy = malloc(sizeof(float) * (size_t)m->n_params);
    memcpy(copy, m->params, sizeof(float) * (size_t)m->n_params);
    assert_int_equal(hs_trainer_run(t, NULL), HS_ERR_NUMERIC);
    assert_non_null(strstr(hs_last_error(), "NaN"));
    assert_int_equal(hs_trainer_state(t)->step, 1);
    assert_int_equal(memcmp(copy, m->params, sizeof(float) * (size_t)m->n_params), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    char *mc = read_file(path);
    assert_non_null(mc);
    assert_null(strstr(mc, "\n2,")); // no row for the failed step
    free(mc);
    free(copy);
    unlink(path);
    rmdir(dir);
    hs_trainer_free(t);
    hs_dataset_close(d);
}

/* Gradient accumulation: one step of accum = 2 equals the mean gradient of micro-batches 0 and
 * 1 of that step, each computed into a zeroed buffer with loss scale 1/2 and then added
 * (g_0 + g_1, the sum data-parallel ranks form too), followed by one AdamW update, done by hand
 * here with the library's pieces. */
static void test_accumulation(void **state) {
    (void)state;
    int V;
    double H;
    hs_dataset *d = make_data(3000, &V, &H);
    hs_train_config c;
    nano_config(&c, "fp32", V);
    c.batch = 4;
    c.seq = 32;
    c.accum = 2;
    c.clip = 0;
    hs_trainer *t;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_OK);
    hs_step_metrics r;
    assert_int_equal(hs_trainer_step(t, &r), HS_OK);
    assert_int_equal(r.tokens, 2 * 4 * 32);
    hs_model *ma = hs_trainer_model(t);
    // by hand, from the same initial weights
    hs_model *m;
    assert_int_equal(hs_model_create(&c.model, &m), HS_OK);
    hs_model_init_weights(m, c.seed);
    float *mom = calloc((size_t)m->n_params, sizeof(float));
    float *vel = calloc((size_t)m->n_params, sizeof(float));
    int32_t in[2][4 * 32], tg[2][4 * 32];
    float loss[2];
    float *g0 = malloc(sizeof(float) * (size_t)m->n_params);
    assert_non_null(g0);
    for (int micro = 0; micro < 2; micro++) {
        assert_int_equal(hs_dataset_batch(d, c.seed, 0, micro, 4, 32, in[micro], tg[micro]), HS_OK);
        assert_int_equal(hs_model_forward(m, NULL, 0, in[micro], tg[micro], 4, 32, &loss[micro]),
                         HS_OK);
        hs_model_zero_grad(m);
        assert_int_equal(hs_model_backward(m, NULL, 0, 0.5f), HS_OK);
        if (micro == 0) memcpy(g0, m->grads, sizeof(float) * (size_t)m->n_params);
    }
    for (int64_t i = 0; i < m->n_params; i++) m->grads[i] = g0[i] + m->grads[i];
    free(g0);
    assert_true(memcmp(in[0], in[1], sizeof in[0]) != 0); // two different micro-batches
    assert_true(fabs(r.train_loss - 0.5 * ((double)loss[0] + loss[1])) < 1e-6);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        hs_adamw_update(m->params + pt->offset, m->grads + pt->offset, mom + pt->offset,
                        vel + pt->offset, pt->numel, hs_train_lr(&c, 0), c.beta1, c.beta2, c.eps,
                        pt->decay ? c.wd : 0.0, 1);
    }
    assert_memory_equal(m->params, ma->params, sizeof(float) * (size_t)m->n_params);
    assert_memory_equal(mom, hs_trainer_state(t)->m, sizeof(float) * (size_t)m->n_params);
    free(mom);
    free(vel);
    hs_model_free(m);
    hs_trainer_free(t);
    hs_dataset_close(d);
}

/* ---- the CLI (HALFS_BIN, set by `make test`): a short run, and refused configurations ---- */
static int run_cli(const char *args, char *err, size_t n) {
    const char *bin = getenv("HALFS_BIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' train %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(err, 1, n - 1, p);
    err[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A scratch directory with a nano-sized training shard (its vocabulary into *V). */
static void cli_scratch(const char *tag, char *dir, size_t dn, char *shard, size_t sn, int *V) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, dn, "%s/halfs-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    assert_non_null(mkdtemp(dir));
    double H;
    hs_dataset *d = make_data(3000, V, &H);
    snprintf(shard, sn, "%s/data.bin", dir);
    assert_int_equal(hs_shard_write(shard, hs_dataset_tokens(d), hs_dataset_size(d)), HS_OK);
    hs_dataset_close(d);
}

static void test_cli(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    char dir[256], shard[300], args[4096], out[8192];
    int V;
    cli_scratch("cli", dir, sizeof dir, shard, sizeof shard, &V);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --val %s --steps 3 --batch 2 --seq 32 "
             "--eval-every 2 --out %s/run --quiet", V, shard, shard, dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("halfs train failed (%d): %s", rc, out);
    char path[700];
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    char *m = read_file(path);
    assert_non_null(m);
    int rows = 0;
    for (char *q = m; *q; q++) rows += *q == '\n';
    assert_int_equal(rows, 4);
    free(m);
    snprintf(path, sizeof path, "%s/run/latest", dir);
    assert_int_equal(access(path, R_OK), 0); // a checkpoint was written
    const struct {
        const char *extra, *msg;
    } bad[] = {
        {"--heads 5", "heads"},   {"--seq 999", "seq"},          {"--batch 0", "batch"},
        {"--recipe mxfp3", "recipe"}, {"--role fwd.x=foo", "fwd.x=foo"}, {"--vocab 3", "vocab"},
        {"--steps x", "steps"},  {"--hp-layers 9", "hp-layers"}, {"--bogus", "bogus"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "--model nano --data %s --steps 3 --batch 2 --seq 32 --out %s/bad %s",
                 shard, dir, bad[i].extra);
        rc = run_cli(args, out, sizeof out);
        if (rc != 1) fail_msg("'%s': exit %d, want 1; output: %s", bad[i].extra, rc, out);
        if (!strstr(out, "halfs: error:") || !strstr(out, bad[i].msg))
            fail_msg("'%s': unclear message: %s", bad[i].extra, out);
        snprintf(path, sizeof path, "%s/bad/metrics.csv", dir);
        assert_int_not_equal(access(path, F_OK), 0); // refused before any work
    }
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    assert_int_equal(system(args), 0);
}

/* `--resume DIR` applies every option given on the command line, whatever its value: after a
 * 3-step run with --save-every 2, `--resume DIR --steps 1000 --save-every 500` (both values
 * equal to the defaults) trains on to step 1000 and checkpoints at 500, and the run's
 * trainer_state.json records save_every 500. Options not given keep the run's values. */
static void test_cli_resume_given(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    hs_train_config d;
    hs_train_config_defaults(&d);
    assert_int_equal(d.steps, 1000); /* the case: the values given equal the defaults */
    assert_int_equal(d.save_every, 500);
    char dir[256], shard[300], args[4096], out[8192], path[700];
    int V;
    cli_scratch("resume", dir, sizeof dir, shard, sizeof shard, &V);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 3 --batch 1 --seq 8 --eval-every 0 "
             "--eval-batches 1 --save-every 2 --threads 1 --out %s/run --quiet", V, shard, dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("halfs train failed (%d): %s", rc, out);
    snprintf(args, sizeof args, "--resume %s/run --steps 1000 --save-every 500 --threads 1 --quiet",
             dir);
    rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("halfs train --resume failed (%d): %s", rc, out);
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    char *m = read_file(path);
    assert_non_null(m);
    int rows = 0;
    for (char *q = m; *q; q++) rows += *q == '\n';
    assert_int_equal(rows, 1 + 1000); /* header + every step */
    assert_non_null(strstr(m, "\n1000,"));
    free(m);
    snprintf(path, sizeof path, "%s/run/ckpt-000500", dir);
    assert_int_equal(access(path, F_OK), 0); /* --save-every 500 applied */
    snprintf(path, sizeof path, "%s/run/ckpt-001000", dir);
    hs_train_config c;
    assert_int_equal(hs_checkpoint_read_train_config(path, &c), HS_OK);
    assert_int_equal(c.steps, 1000);
    assert_int_equal(c.save_every, 500);
    assert_int_equal(c.eval_every, 0); /* not given: the run's own */
    assert_int_equal(c.batch, 1);
    assert_int_equal(c.seq, 8);
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    assert_int_equal(system(args), 0);
}

/* ---- run integrity (docs/RUNS.md): lock, fresh runs, resume rules, guard, signals ---- */

/* Run a shell command line; its stdout and stderr into out; the exit status (-1: no exit). */
static int run_sh(const char *cmdline, char *out, size_t n) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s 2>&1", cmdline);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Start `halfs train ARGS` (split on spaces) in the background; stdout and stderr to log.
 * default_env: without OMP_WAIT_POLICY and HALFS_NO_REEXEC in its environment. */
static pid_t spawn_train(const char *args, const char *log, int default_env) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", args);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)getenv("HALFS_BIN");
    argv[n++] = "train";
    for (char *tok = strtok(buf, " "); tok && n < 63; tok = strtok(NULL, " ")) argv[n++] = tok;
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(1, 2) < 0) _exit(126);
        if (default_env) { /* as a user runs it: no wait policy chosen */
            unsetenv("OMP_WAIT_POLICY");
            unsetenv("HALFS_NO_REEXEC");
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Rows of path (0 if missing). */
static int count_lines(const char *path) {
    char *m = read_file(path);
    int rows = 0;
    for (char *q = m; q && *q; q++) rows += *q == '\n';
    free(m);
    return rows;
}

/* Wait (≤ 60 s) until path has at least `rows` lines, or pid exits (then returns 0). */
static int wait_rows(const char *path, int rows, pid_t pid) {
    for (int k = 0; k < 60000; k++) {
        if (count_lines(path) >= rows) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        sleep_ms(1);
    }
    return 0;
}

/* One writer per run directory: a second trainer is refused at once, naming the first one's
 * pid; a new run into a directory that holds a run is refused, --force clears it; --out '' is
 * refused. */
static void test_cli_run_dir(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    char dir[256], shard[300], args[4096], out[8192], path[700], log[700];
    int V;
    cli_scratch("lock", dir, sizeof dir, shard, sizeof shard, &V);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 100000 --batch 1 --seq 8 "
             "--eval-every 0 --save-every 0 --threads 1 --quiet --out %s/run", V, shard, dir);
    snprintf(log, sizeof log, "%s/a.log", dir);
    pid_t a = spawn_train(args, log, 1);
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    assert_true(wait_rows(path, 3, a)); /* the first trainer holds the directory */
    /* halfs chose the passive OpenMP wait policy itself (tools/halfs.c, every command) */
    char envp[64], *env;
    size_t en = 0;
    snprintf(envp, sizeof envp, "/proc/%d/environ", (int)a);
    FILE *ef = fopen(envp, "rb");
    assert_non_null(ef);
    env = calloc(1, 1 << 20);
    en = fread(env, 1, (1 << 20) - 1, ef);
    fclose(ef);
    int passive = 0;
    for (size_t k = 0; k < en; k += strlen(env + k) + 1)
        passive |= !strcmp(env + k, "OMP_WAIT_POLICY=passive");
    free(env);
    assert_true(passive);
    int rc = run_cli(args, out, sizeof out);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)a);
    if (rc != 1 || !strstr(out, "in use") || !strstr(out, pid))
        fail_msg("second trainer: exit %d, want 1 naming %s: %s", rc, pid, out);
    kill(a, SIGTERM);
    int st;
    assert_int_equal(waitpid(a, &st, 0), a);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3); /* interrupted, checkpoint saved */
    snprintf(path, sizeof path, "%s/run/latest", dir);
    assert_int_equal(access(path, F_OK), 0);

    /* a new run into it: refused, nothing changed; --force clears the old run first */
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 2 --batch 1 --seq 8 --eval-every 0 "
             "--threads 1 --quiet --out %s/run", V, shard, dir);
    snprintf(path, sizeof path, "%s/run/metrics.csv", dir);
    int before = count_lines(path);
    rc = run_cli(args, out, sizeof out);
    if (rc != 1 || !strstr(out, "holds a run") || !strstr(out, "--force"))
        fail_msg("fresh run into a run directory: exit %d: %s", rc, out);
    assert_int_equal(count_lines(path), before);
    strcat(args, " --force");
    rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("--force: exit %d: %s", rc, out);
    assert_int_equal(count_lines(path), 3); /* header + 2 steps: the new run only */
    snprintf(path, sizeof path, "%s/run", dir);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c ckpt-", path);
    assert_int_equal(run_sh(cmd, out, sizeof out), 0);
    assert_string_equal(out, "1\n"); /* ckpt-000002 only */

    /* --out '' and an unusable --out */
    snprintf(args, sizeof args, "--model nano --vocab %d --data %s --steps 2 --quiet --out ''",
             V, shard);
    rc = run_cli(args, out, sizeof out);
    if (rc != 1 || !strstr(out, "--out")) fail_msg("--out '': exit %d: %s", rc, out);
    snprintf(args, sizeof args, "--model nano --vocab %d --data %s --steps 2 --quiet --out %s",
             V, shard, shard); /* a file */
    rc = run_cli(args, out, sizeof out);
    if (rc != 1 || !strstr(out, "halfs: error:")) fail_msg("--out FILE: exit %d: %s", rc, out);
    rm_rf(dir);
}

/* Metrics rows' value of column col (0-based) on the row of step `step`. */
static double metric(const char *csv, int64_t step, int col) {
    char key[32];
    snprintf(key, sizeof key, "\n%lld,", (long long)step);
    const char *p = strstr(csv, key);
    assert_non_null(p);
    p++;
    for (int c = 0; c < col; c++) p = strchr(p, ',') + 1;
    return strtod(p, NULL);
}

/* --resume keeps the run's schedule when --steps extends it (lr stays min_lr past the first
 * run's end) and says so; --replan-decay decays to the new end; options that would make it a
 * different run are refused naming the option; those that may change are recorded. */
static void test_cli_resume_schedule(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    char dir[256], shard[300], args[4096], out[8192], path[700];
    int V;
    cli_scratch("sched", dir, sizeof dir, shard, sizeof shard, &V);
    for (int r = 0; r < 2; r++) {
        snprintf(args, sizeof args,
                 "--model nano --vocab %d --data %s --steps 10 --batch 1 --seq 8 "
                 "--eval-every 0 --threads 1 --quiet --out %s/run%d", V, shard, dir, r);
        int rc = run_cli(args, out, sizeof out);
        if (rc != 0) fail_msg("train: exit %d: %s", rc, out);
    }
    snprintf(args, sizeof args, "--resume %s/run0 --steps 20 --eval-every 5 --threads 1 --quiet",
             dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 0 || !strstr(out, "schedule is kept") || !strstr(out, "--eval-every 5"))
        fail_msg("resume: exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/run0/metrics.csv", dir);
    char *m = read_file(path);
    double lr10 = metric(m, 10, 4), lr11 = metric(m, 11, 4), lr20 = metric(m, 20, 4);
    assert_true(lr10 > 3.5e-4 && lr10 < 4.5e-4); /* near the end of the first run's decay */
    assert_true(fabs(lr11 - 3e-4) < 1e-12 && fabs(lr20 - 3e-4) < 1e-12);
    free(m);
    hs_train_config c;
    snprintf(path, sizeof path, "%s/run0/ckpt-000020", dir);
    assert_int_equal(hs_checkpoint_read_train_config(path, &c), HS_OK);
    assert_int_equal(c.horizon, 10);
    assert_int_equal(c.steps, 20);
    assert_int_equal(c.eval_every, 5);

    snprintf(args, sizeof args, "--resume %s/run1 --steps 20 --replan-decay --threads 1 --quiet",
             dir);
    rc = run_cli(args, out, sizeof out);
    if (rc != 0 || !strstr(out, "--replan-decay")) fail_msg("replan: exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/run1/metrics.csv", dir);
    m = read_file(path);
    assert_true(metric(m, 11, 4) > 1e-3); /* the decay restarts towards step 20 */
    assert_true(fabs(metric(m, 20, 4) - 3e-4) < 5e-5);
    free(m);
    snprintf(path, sizeof path, "%s/run1/ckpt-000020", dir);
    assert_int_equal(hs_checkpoint_read_train_config(path, &c), HS_OK);
    assert_int_equal(c.horizon, 20);

    const char *refused[] = {"--lr 0.01", "--seed 3", "--batch 2", "--recipe fp32", "--sr",
                             "--warmup 2", "--min-lr 0.0001", "--seq 4", "--accum 2",
                             "--model tiny", "--force"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(args, sizeof args, "--resume %s/run0 --steps 30 --quiet %s", dir, refused[i]);
        rc = run_cli(args, out, sizeof out);
        char opt[32];
        snprintf(opt, sizeof opt, "%s", refused[i]);
        *strchrnul(opt, ' ') = '\0';
        if (rc != 1 || !strstr(out, opt)) fail_msg("'%s': exit %d: %s", refused[i], rc, out);
    }
    snprintf(path, sizeof path, "%s/run0/metrics.csv", dir);
    assert_int_equal(count_lines(path), 21); /* nothing ran */
    rm_rf(dir);
}

/* The divergence guard: --lr 10 --clip 0 stops with the guard's message and exit 4, and the
 * last checkpoint before it is pinned; with the gradient-norm guard off the loss guard fires. */
static void test_cli_guard(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    char dir[256], shard[300], args[4096], out[8192], path[700];
    int V;
    cli_scratch("guard", dir, sizeof dir, shard, sizeof shard, &V);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 30 --batch 2 --seq 32 --lr 10 --clip 0 "
             "--save-every 1 --eval-every 0 --threads 1 --quiet --out %s/run", V, shard, dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 4 || !strstr(out, "divergence guard")) fail_msg("exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/run/pinned", dir);
    char *pin = read_file(path);
    assert_non_null(pin);
    assert_int_equal(strncmp(pin, "ckpt-", 5), 0);
    snprintf(path, sizeof path, "%s/run/%.11s", dir, pin);
    assert_true(hs_is_dir(path));
    free(pin);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 30 --batch 2 --seq 32 --lr 10 --clip 0 "
             "--guard-grad-norm 0 --eval-every 0 --threads 1 --quiet --out %s/run2", V, shard,
             dir);
    rc = run_cli(args, out, sizeof out);
    if (rc != 4 || !strstr(out, "smoothed training loss")) fail_msg("exit %d: %s", rc, out);
    /* a ratio that would fire on any noise is refused */
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 2 --batch 2 --seq 32 --guard-loss-ratio 1"
             " --quiet --out %s/run3", V, shard, dir);
    rc = run_cli(args, out, sizeof out);
    if (rc != 1 || !strstr(out, "--guard-loss-ratio")) fail_msg("ratio 1: exit %d: %s", rc, out);
    rm_rf(dir);
}

/* SIGTERM finishes the step, saves, exits 3; --resume then reproduces the uninterrupted run's
 * metrics line for line. */
static void test_cli_sigterm(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    char dir[256], shard[300], args[4096], out[8192], path[700], log[700];
    int V;
    cli_scratch("term", dir, sizeof dir, shard, sizeof shard, &V);
    const char *common = "--model nano --batch 2 --seq 16 --steps 300 --eval-every 7 "
                         "--eval-batches 2 --save-every 0 --threads 1 --quiet";
    snprintf(args, sizeof args, "%s --vocab %d --data %s --val %s --out %s/full", common, V,
             shard, shard, dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("train: exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/full/metrics.csv", dir);
    char *want = read_file(path);
    strip_timing(want);
    snprintf(args, sizeof args, "%s --vocab %d --data %s --val %s --out %s/part", common, V,
             shard, shard, dir);
    snprintf(log, sizeof log, "%s/part.log", dir);
    pid_t pid = spawn_train(args, log, 0);
    snprintf(path, sizeof path, "%s/part/metrics.csv", dir);
    assert_true(wait_rows(path, 20, pid));
    kill(pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    char *lg = read_file(log);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3 || !strstr(lg, "SIGTERM"))
        fail_msg("SIGTERM: status %d: %s", st, lg);
    free(lg);
    snprintf(path, sizeof path, "%s/part/latest", dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(args, sizeof args, "--resume %s/part --steps 300 --quiet", dir);
    rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("resume: exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/part/metrics.csv", dir);
    char *got = read_file(path);
    strip_timing(got);
    assert_string_equal(got, want);
    free(got);
    free(want);
    rm_rf(dir);
}

/* Non-finite state: eval of a model whose loss is not finite exits 1 and its --json stays JSON
 * (null); NaN weights are refused naming the tensor; a corrupt or missing trainer_state.json
 * is an error naming the file. --threads for eval gives the same numbers. */
static void test_cli_nonfinite(void **state) {
    (void)state;
    if (!getenv("HALFS_BIN")) skip();
    const char *bin = getenv("HALFS_BIN");
    char dir[256], shard[300], args[4096], out[8192], out2[8192], cmd[8192], ck[4096];
    int V;
    cli_scratch("nonfinite", dir, sizeof dir, shard, sizeof shard, &V);
    snprintf(args, sizeof args,
             "--model nano --vocab %d --data %s --steps 2 --batch 2 --seq 16 --recipe fp32 "
             "--eval-every 0 --quiet --out %s/run", V, shard, dir);
    int rc = run_cli(args, out, sizeof out);
    if (rc != 0) fail_msg("train: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' eval %s/run --data %s --json --threads 1", bin, dir, shard);
    assert_int_equal(run_sh(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "'%s' eval %s/run --data %s --json --threads 2", bin, dir, shard);
    assert_int_equal(run_sh(cmd, out2, sizeof out2), 0);
    assert_string_equal(out, out2);

    /* lm_head scaled to overflow: finite weights, a NaN loss */
    hs_model *m;
    assert_int_equal(hs_checkpoint_open_model(dir, &m, ck, sizeof ck), HS_ERR_IO);
    snprintf(args, sizeof args, "%s/run", dir);
    assert_int_equal(hs_checkpoint_open_model(args, &m, ck, sizeof ck), HS_OK);
    const hs_param_tensor *t = hs_model_find_tensor(m, "lm_head.weight");
    assert_non_null(t);
    for (int64_t i = 0; i < t->numel; i++) m->params[t->offset + i] = i % 2 ? 3e38f : -3e38f;
    snprintf(args, sizeof args, "%s/big", dir);
    assert_int_equal(hs_checkpoint_save(args, m, NULL, NULL, NULL, 1, NULL, 0), HS_OK);
    snprintf(cmd, sizeof cmd, "{ '%s' eval %s/big --data %s --recipe fp32 --json 2>/dev/null; }",
             bin, dir, shard);
    rc = run_sh(cmd, out, sizeof out);
    cJSON *j = cJSON_Parse(out);
    if (rc != 1 || !j || !cJSON_IsNull(cJSON_GetObjectItem(j, "loss")))
        fail_msg("eval of a non-finite loss: exit %d: %s", rc, out);
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "'%s' eval %s/big --data %s --recipe fp32", bin, dir, shard);
    rc = run_sh(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "not finite")) fail_msg("eval: exit %d: %s", rc, out);

    /* a NaN weight: refused on load, naming the tensor */
    m->params[t->offset + 1] = NAN;
    snprintf(args, sizeof args, "%s/nan", dir);
    assert_int_equal(hs_checkpoint_save(args, m, NULL, NULL, NULL, 1, NULL, 0), HS_OK);
    hs_model_free(m);
    snprintf(cmd, sizeof cmd, "'%s' eval %s/nan --data %s --recipe fp32 --json", bin, dir, shard);
    rc = run_sh(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "lm_head.weight") || !strstr(out, "NaN"))
        fail_msg("eval of NaN weights: exit %d: %s", rc, out);

    /* trainer_state.json corrupt, then missing: an error naming it */
    snprintf(args, sizeof args, "%s/run/ckpt-000002/trainer_state.json", dir);
    FILE *f = fopen(args, "w");
    fputs("{\"format\": ", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' sample %s/run --prompt ab --tokens 2", bin, dir);
    rc = run_sh(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "trainer_state.json")) fail_msg("sample: exit %d: %s", rc, out);
    unlink(args);
    rc = run_sh(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "trainer_state.json")) fail_msg("sample: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' eval %s/run --data %s", bin, dir, shard);
    rc = run_sh(cmd, out, sizeof out);
    if (rc != 1 || !strstr(out, "trainer_state.json")) fail_msg("eval: exit %d: %s", rc, out);
    rm_rf(dir);
}

/* Schedule: warmup ramps linearly, cosine ends at min_lr. */
static void test_schedule(void **state) {
    (void)state;
    hs_train_config c;
    hs_train_config_defaults(&c);
    c.lr = 1.0;
    c.min_lr = 0.1;
    c.warmup = 10;
    c.steps = 110;
    assert_true(fabs(hs_train_lr(&c, 0) - 0.1) < 1e-12);
    assert_true(fabs(hs_train_lr(&c, 9) - 1.0) < 1e-12);
    assert_true(fabs(hs_train_lr(&c, 10) - 1.0) < 1e-12);
    assert_true(fabs(hs_train_lr(&c, 60) - 0.55) < 1e-12);
    assert_true(fabs(hs_train_lr(&c, 110) - 0.1) < 1e-12);
    /* a horizon before the total: min_lr from it on; at horizon = steps, the same values */
    c.steps = 200;
    c.horizon = 110;
    assert_true(fabs(hs_train_lr(&c, 60) - 0.55) < 1e-12);
    assert_true(fabs(hs_train_lr(&c, 150) - 0.1) < 1e-12);
    c.horizon = 200;
    hs_train_config d = c;
    d.horizon = 0;
    for (int s = 0; s < 200; s += 7) assert_true(hs_train_lr(&c, s) == hs_train_lr(&d, s));
}

int main(int argc, char **argv) {
    (void)argc;
    // OpenMP threads that spin while idle make training crawl on a machine whose cores are
    // busy with other work (see tools/cmd_train.c); re-run once with sleeping waits.
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),         cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_accumulation),     cmocka_unit_test(test_cli),
        cmocka_unit_test(test_cli_resume_given), cmocka_unit_test(test_cli_run_dir),
        cmocka_unit_test(test_cli_resume_schedule), cmocka_unit_test(test_cli_guard),
        cmocka_unit_test(test_cli_sigterm),      cmocka_unit_test(test_cli_nonfinite),
        cmocka_unit_test(test_nan_stops),        cmocka_unit_test(test_deterministic_threads),
        cmocka_unit_test(test_learns_fp32),      cmocka_unit_test(test_learns_mxfp4_halfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
