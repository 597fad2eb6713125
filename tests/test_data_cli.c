/* test_data_cli.c: the data-side commands through the CLI ($HALFS_BIN): `halfs tokenizer
 * train|encode|decode` round trips bytes exactly; `halfs sample` and `halfs eval` run on a
 * checkpoint; every bad input (corrupt tokenizer.json, bad shard, corrupt or mismatched
 * checkpoint, prompt the model cannot take) exits 1 with exactly one "halfs: error:" line and
 * leaves no output file behind. Scratch files live in a fresh mkdtemp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/tokenizer.h"

static const char *g_bin;
static char g_dir[256];
static char *g_err; /* stderr of the last run() */

static int setup(void **state) {
    (void)state;
    g_bin = getenv("HALFS_BIN");
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/halfs-dcli-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(g_err);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static char *slurp(const char *p, size_t *n) {
    char *b = NULL;
    size_t k = 0;
    if (hs_file_read_all(p, (size_t)1 << 30, &b, &k) != HS_OK) return NULL;
    if (n) *n = k;
    return b;
}

/* Run HALFS_BIN argv... (NULL-terminated); stdout/stderr captured. Returns the exit status. */
static int run(char **out, char **err, ...) {
    char *args[32];
    int n = 0;
    args[n++] = (char *)g_bin;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 31;) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char po[400], pe[400];
    path_in(po, sizeof po, ".stdout");
    path_in(pe, sizeof pe, ".stderr");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(g_bin, args);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    char *o = slurp(po, NULL), *e = slurp(pe, NULL);
    if (out) *out = o; else free(o);
    free(g_err);
    g_err = e;
    if (err) *err = strdup(e ? e : "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Exit 1 with exactly one "halfs: error:" line (hints allowed) containing needle. */
static void expect_usage_error(int rc, const char *needle) {
    const char *err = g_err;
    int lines = 0;
    for (const char *p = err; p && (p = strstr(p, "halfs: error:")) != NULL; p++) lines++;
    if (rc != 1 || lines != 1 || (needle && !strstr(err, needle))) {
        print_error("rc %d, stderr:\n%s(wanted one error line with '%s')\n", rc, err ? err : "",
                    needle ? needle : "");
        fail();
    }
}

static const char text[] =
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep.\n"
    "And God said, Let there be light: and there was light. It's 1611; they'll see.\n";

static void write_text(const char *name, const void *bytes, size_t n) {
    char p[400];
    path_in(p, sizeof p, name);
    assert_int_equal(hs_file_write_atomic(p, bytes, n), HS_OK);
}

static void test_tokenizer_cli(void **state) {
    (void)state;
    if (!g_bin) skip();
    char corpus[4096] = "";
    for (int i = 0; i < 12; i++) strcat(corpus, text);
    write_text("corpus.txt", corpus, strlen(corpus));
    /* any bytes: NULs, invalid UTF-8, CR */
    unsigned char odd[300];
    for (int i = 0; i < 300; i++) odd[i] = (unsigned char)(i * 131 + 7);
    memcpy(odd + 10, "the \x00\xc3\x28 light", 14);
    write_text("odd.bin.txt", odd, sizeof odd);
    char tok[400], corp[400], oddp[400], shard[400], back[400], ids[400], back2[400];
    path_in(tok, sizeof tok, "tok.json");
    path_in(corp, sizeof corp, "corpus.txt");
    path_in(oddp, sizeof oddp, "odd.bin.txt");
    path_in(shard, sizeof shard, "odd.bin");
    path_in(back, sizeof back, "odd.back");
    path_in(ids, sizeof ids, "odd.ids");
    path_in(back2, sizeof back2, "odd.back2");
    char *err = NULL;
    assert_int_equal(run(NULL, &err, "tokenizer", "train", "--vocab", "300", "-o", tok, corp, NULL), 0);
    free(err);
    hs_tokenizer *t = NULL;
    assert_int_equal(hs_tokenizer_load(tok, &t), HS_OK);
    assert_int_equal(hs_tokenizer_vocab_size(t), 300);
    hs_tokenizer_free(t);
    assert_int_equal(run(NULL, NULL, "tokenizer", "encode", "--tokenizer", tok, "-o", shard, oddp, NULL), 0);
    assert_int_equal(run(NULL, NULL, "tokenizer", "decode", "--tokenizer", tok, "-o", back, shard, NULL), 0);
    size_t nb;
    char *b = slurp(back, &nb);
    assert_int_equal(nb, sizeof odd);
    assert_memory_equal(b, odd, sizeof odd);
    free(b);
    assert_int_equal(run(NULL, NULL, "tokenizer", "encode", "--ids", "--tokenizer", tok, "-o", ids, oddp, NULL), 0);
    assert_int_equal(run(NULL, NULL, "tokenizer", "decode", "--ids", "--tokenizer", tok, "-o", back2, ids, NULL), 0);
    b = slurp(back2, &nb);
    assert_int_equal(nb, sizeof odd);
    assert_memory_equal(b, odd, sizeof odd);
    free(b);
    hs_dataset *d;
    assert_int_equal(hs_dataset_open(shard, &d), HS_OK);
    assert_true(hs_dataset_max_token(d) < 300);
    hs_dataset_close(d);

    /* Bad inputs: exit 1, one error line, no output file. */
    char out[400];
    path_in(out, sizeof out, "never.json");
    expect_usage_error(run(NULL, NULL, "tokenizer", "train", "--vocab", "10", "-o", out, corp, NULL), "--vocab");
    expect_usage_error(run(NULL, NULL, "tokenizer", "train", "--vocab", "300", corp, NULL), "-o");
    expect_usage_error(run(NULL, NULL, "tokenizer", "train", "-o", out, "/nonexistent/x.txt", NULL), "cannot open");
    expect_usage_error(run(NULL, NULL, "tokenizer", "frobnicate", NULL), "frobnicate");
    assert_false(hs_is_file(out));
    write_text("bad.json", "{\"model\": {\"type\": \"BPE\"", 25);
    char bad[400];
    path_in(bad, sizeof bad, "bad.json");
    path_in(out, sizeof out, "never.bin");
    expect_usage_error(run(NULL, NULL, "tokenizer", "encode", "--tokenizer", bad, "-o", out, corp, NULL), "tokenizer");
    assert_false(hs_is_file(out));
    /* a shard with a wrong magic, a truncated shard, ids beyond the tokenizer */
    write_text("magic.bin", "not a shard at all, not even 1024 bytes", 39);
    char magic[400];
    path_in(magic, sizeof magic, "magic.bin");
    path_in(out, sizeof out, "never.txt");
    expect_usage_error(run(NULL, NULL, "tokenizer", "decode", "--tokenizer", tok, "-o", out, magic, NULL), "truncated");
    uint16_t big[3] = {1, 2, 299};
    big[2] = 4000;
    char bigp[400];
    path_in(bigp, sizeof bigp, "big.bin");
    assert_int_equal(hs_shard_write(bigp, big, 3), HS_OK);
    expect_usage_error(run(NULL, NULL, "tokenizer", "decode", "--tokenizer", tok, "-o", out, bigp, NULL), "outside the vocabulary");
    assert_false(hs_is_file(out));
}

static void make_checkpoint(const char *tok, char *ck, size_t n) {
    hs_model_config c;
    assert_int_equal(hs_model_config_preset("nano", &c), HS_OK);
    c.vocab = 300;
    c.max_seq = 32;
    hs_model *m;
    assert_int_equal(hs_model_create(&c, &m), HS_OK);
    hs_model_init_weights(m, 1);
    char run_dir[400];
    path_in(run_dir, sizeof run_dir, "run");
    assert_int_equal(hs_checkpoint_save(run_dir, m, NULL, NULL, tok, 1, ck, n), HS_OK);
    hs_model_free(m);
}

static void test_sample_eval_cli(void **state) {
    (void)state;
    if (!g_bin) skip();
    char tok[400], corp[400], shard[400], ck[4096], run_dir[400];
    path_in(tok, sizeof tok, "tok.json");
    path_in(corp, sizeof corp, "corpus.txt");
    path_in(shard, sizeof shard, "corpus.bin");
    path_in(run_dir, sizeof run_dir, "run");
    assert_true(hs_is_file(tok)); /* from test_tokenizer_cli */
    assert_int_equal(run(NULL, NULL, "tokenizer", "encode", "--tokenizer", tok, "-o", shard, corp, NULL), 0);
    make_checkpoint(tok, ck, sizeof ck);

    char *out = NULL, *err = NULL;
    /* sample: from the run directory (latest) and from the checkpoint; greedy is deterministic */
    assert_int_equal(run(&out, &err, "sample", run_dir, "--prompt", "And God said", "--tokens", "8",
                         "--temperature", "0", NULL), 0);
    assert_true(!strncmp(out, "And God said", 12));
    char *out2 = NULL;
    assert_int_equal(run(&out2, NULL, "sample", ck, "--prompt", "And God said", "--tokens", "8",
                         "--temperature", "0", NULL), 0);
    assert_string_equal(out, out2);
    free(out);
    free(out2);
    free(err);
    assert_int_equal(run(&out, NULL, "sample", run_dir, "--prompt", "light", "--tokens", "40",
                         "--seed", "3", NULL), 0); /* longer than the context: the window slides */
    free(out);

    /* eval: loss near ln(300) for an untrained model, and a perplexity */
    assert_int_equal(run(&out, &err, "eval", run_dir, "--data", shard, "--json", NULL), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    double loss = cJSON_GetObjectItem(j, "loss")->valuedouble;
    assert_true(loss > 4.0 && loss < 7.5); /* ln 300 = 5.7 */
    assert_true(cJSON_GetObjectItem(j, "perplexity")->valuedouble > 50);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* Bad inputs. */
    char longp[600];
    memset(longp, 0, sizeof longp);
    for (int i = 0; i < 60; i++) strcat(longp, "x, ");
    expect_usage_error(run(NULL, NULL, "sample", run_dir, "--prompt", longp, NULL), "context");
    expect_usage_error(run(NULL, NULL, "sample", run_dir, NULL), "--prompt");
    expect_usage_error(run(NULL, NULL, "sample", g_dir, "--prompt", "x", NULL), "neither a checkpoint");
    expect_usage_error(run(NULL, NULL, "eval", run_dir, NULL), "--data");
    char bigp[400];
    path_in(bigp, sizeof bigp, "big.bin"); /* holds id 4000 > vocab 300 */
    uint16_t many[64];
    for (int i = 0; i < 64; i++) many[i] = (uint16_t)(i == 5 ? 4000 : i);
    assert_int_equal(hs_shard_write(bigp, many, 64), HS_OK);
    expect_usage_error(run(NULL, NULL, "eval", run_dir, "--data", bigp, NULL), "vocabulary");
    /* a tokenizer with more tokens than the model: prompt ids beyond the model's vocabulary */
    char tok2[400];
    path_in(tok2, sizeof tok2, "tok2.json");
    assert_int_equal(run(NULL, NULL, "tokenizer", "train", "--vocab", "400", "-o", tok2, corp, NULL), 0);
    expect_usage_error(run(NULL, NULL, "sample", run_dir, "--prompt", "And God said, Let there be light",
                           "--tokenizer", tok2, NULL), "vocabulary");
    /* a config.json that does not match the weights */
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", ck);
    size_t n = 0;
    char *text_cfg = slurp(cfg, &n);
    cJSON *c = cJSON_Parse(text_cfg);
    cJSON_ReplaceItemInObject(c, "intermediate_size", cJSON_CreateNumber(256));
    char *edited = cJSON_Print(c);
    assert_int_equal(hs_file_write_atomic(cfg, edited, strlen(edited)), HS_OK);
    expect_usage_error(run(NULL, NULL, "eval", run_dir, "--data", shard, NULL), "shape");
    assert_int_equal(hs_file_write_atomic(cfg, text_cfg, n), HS_OK);
    free(edited);
    cJSON_Delete(c);
    free(text_cfg);
    /* a truncated model.safetensors */
    char st[4200];
    snprintf(st, sizeof st, "%s/model.safetensors", ck);
    assert_int_equal(truncate(st, 1000), 0);
    expect_usage_error(run(NULL, NULL, "sample", run_dir, "--prompt", "x", NULL), "safetensors");
}

static void test_corpus_cli(void **state) {
    (void)state;
    if (!g_bin) skip();
    char cache[400];
    path_in(cache, sizeof cache, "cache");
    setenv("HALFS_CACHE", cache, 1);
    for (int round = 0; round < 2; round++) {
        char *out = NULL;
        assert_int_equal(run(&out, NULL, "corpus", "--vocab", "300", "--json", NULL), 0);
        cJSON *j = cJSON_Parse(out);
        assert_non_null(j);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "cached")), round == 1);
        assert_int_equal(cJSON_GetObjectItem(j, "vocab")->valueint, 300);
        assert_non_null(strstr(cJSON_GetObjectItem(j, "dir")->valuestring, cache));
        const char *keys[5] = {"tokenizer", "train", "val", "ft_train", "ft_val"};
        for (int k = 0; k < 5; k++) assert_true(hs_is_file(cJSON_GetObjectItem(j, keys[k])->valuestring));
        assert_true(cJSON_GetObjectItem(j, "train_tokens")->valuedouble > 500000);
        assert_true(cJSON_GetObjectItem(j, "ft_val_tokens")->valuedouble > 1000);
        cJSON_Delete(j);
        free(out);
    }
    expect_usage_error(run(NULL, NULL, "corpus", "--vocab", "7", NULL), "--vocab");
    unsetenv("HALFS_CACHE");
}

/* Deterministic metrics columns (step..grad_norm) of RUN/metrics.csv. */
static char *metrics_cols(const char *run) {
    char p[600];
    snprintf(p, sizeof p, "%s/metrics.csv", run);
    size_t n;
    char *text = slurp(p, &n);
    assert_non_null(text);
    char *out = calloc(n + 1, 1), *o = out;
    int commas = 0;
    for (char *c = text; *c; c++) {
        if (*c == '\n') {
            commas = 0;
            *o++ = '\n';
        } else if (*c == ',' && ++commas >= 6) {
            continue;
        } else if (commas < 6) {
            *o++ = *c;
        }
    }
    free(text);
    return out;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* `halfs train` killed with SIGKILL at several moments after its first checkpoint, then
 * `--resume DIR --steps N`: metrics.csv's deterministic columns and the final weights equal
 * an uninterrupted run's. */
static void test_train_kill_resume(void **state) {
    (void)state;
    if (!g_bin) skip();
    char shard[400], runa[400], runb[400], latest[420];
    path_in(shard, sizeof shard, "corpus.bin"); /* from test_sample_eval_cli */
    assert_true(hs_is_file(shard));
    path_in(runa, sizeof runa, "trainA");
    path_in(runb, sizeof runb, "trainB");
    snprintf(latest, sizeof latest, "%s/latest", runb);
#define TRAIN_ARGS "--model", "nano", "--recipe", "mxfp4-halfs", "--vocab", "300", "--data", shard, \
        "--val", shard, "--steps", "10", "--batch", "2", "--seq", "16", "--eval-every", "3",    \
        "--eval-batches", "2", "--save-every", "1", "--threads", "1", "--quiet"
    assert_int_equal(run(NULL, NULL, "train", TRAIN_ARGS, "--out", runa, NULL), 0);
    char *want = metrics_cols(runa);
    assert_non_null(strstr(want, "\n10,"));
    char fa[500], fb[500];
    snprintf(fa, sizeof fa, "%s/ckpt-000010/model.safetensors", runa);
    snprintf(fb, sizeof fb, "%s/ckpt-000010/model.safetensors", runb);
    size_t na, nb;
    char *wa = slurp(fa, &na);
    assert_non_null(wa);
    const long delays[4] = {0, 2, 7, 15};
    for (int round = 0; round < 4; round++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", runb);
        assert_int_equal(system(cmd), 0);
        char *args[] = {(char *)g_bin, "train", TRAIN_ARGS, "--out", runb, NULL};
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execv(g_bin, args);
            _exit(127);
        }
        /* Wait for the first checkpoint, then kill at a varying moment after it. */
        int status = 0, done = 0;
        for (int k = 0; k < 60000 && !hs_is_file(latest); k++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                done = 1;
                break;
            }
            sleep_ms(1);
        }
        if (!done) {
            sleep_ms(delays[round]);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        assert_true(hs_is_file(latest));
        char *err = NULL;
        int rc = run(NULL, &err, "train", "--resume", runb, "--steps", "10", "--quiet", NULL);
        if (rc != 0) {
            print_error("resume failed (round %d): %s\n", round, err);
            fail();
        }
        free(err);
        char *got = metrics_cols(runb);
        assert_string_equal(got, want);
        free(got);
        char *wb = slurp(fb, &nb);
        assert_non_null(wb);
        assert_int_equal(na, nb);
        assert_memory_equal(wa, wb, na);
        free(wb);
    }
#undef TRAIN_ARGS
    free(wa);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_cli),
        cmocka_unit_test(test_sample_eval_cli),
        cmocka_unit_test(test_corpus_cli),
        cmocka_unit_test(test_train_kill_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
