/* test_data_cli.c: the data-side commands through the CLI ($HALFS_BIN): `halfs tokenizer
 * train|encode|decode` round trips bytes exactly; `halfs sample` and `halfs eval` run on a
 * checkpoint; every bad input (corrupt tokenizer.json, bad shard, corrupt or mismatched
 * checkpoint, prompt the model cannot take) exits 1 with exactly one "halfs: error:" line and
 * leaves no output file behind. Scratch files live in the program's scratch directory
 * (tests/util.h), removed at the end. */
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
#include "util.h"

static const char text[] =
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep.\n"
    "And God said, Let there be light: and there was light. It's 1611; they'll see.\n";

/* Write the scratch file `name`; its path goes to path (PATH_N bytes). */
enum { PATH_N = 400 };
static void write_text(const char *name, const void *bytes, size_t n, char *path) {
    util_path(path, PATH_N, name);
    util_write_file(path, bytes, n);
}

static void test_tokenizer_cli(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char tok[PATH_N], corp[PATH_N], oddp[PATH_N], shard[PATH_N], back[PATH_N], ids[PATH_N],
        back2[PATH_N];
    char corpus[4096] = "";
    for (int i = 0; i < 12; i++) strcat(corpus, text);
    write_text("corpus.txt", corpus, strlen(corpus), corp);
    /* any bytes: NULs, invalid UTF-8, CR */
    unsigned char odd[300];
    for (int i = 0; i < 300; i++) odd[i] = (unsigned char)(i * 131 + 7);
    memcpy(odd + 10, "the \x00\xc3\x28 light", 14);
    write_text("odd.bin.txt", odd, sizeof odd, oddp);
    util_path(tok, sizeof tok, "tok.json");
    util_path(shard, sizeof shard, "odd.bin");
    util_path(back, sizeof back, "odd.back");
    util_path(ids, sizeof ids, "odd.ids");
    util_path(back2, sizeof back2, "odd.back2");
    char *err = NULL;
    assert_int_equal(util_run(NULL, &err, "tokenizer", "train", "--vocab", "300", "-o", tok, corp,
                              NULL), 0);
    free(err);
    hs_tokenizer *t = NULL;
    assert_int_equal(hs_tokenizer_load(tok, &t), HS_OK);
    assert_int_equal(hs_tokenizer_vocab_size(t), 300);
    hs_tokenizer_free(t);
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "encode", "--tokenizer", tok, "-o", shard,
                              oddp, NULL), 0);
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "decode", "--tokenizer", tok, "-o", back,
                              shard, NULL), 0);
    size_t nb;
    char *b = util_read_file(back, &nb);
    assert_int_equal(nb, sizeof odd);
    assert_memory_equal(b, odd, sizeof odd);
    free(b);
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "encode", "--ids", "--tokenizer", tok, "-o",
                              ids, oddp, NULL), 0);
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "decode", "--ids", "--tokenizer", tok, "-o",
                              back2, ids, NULL), 0);
    b = util_read_file(back2, &nb);
    assert_int_equal(nb, sizeof odd);
    assert_memory_equal(b, odd, sizeof odd);
    free(b);
    hs_dataset *d;
    assert_int_equal(hs_dataset_open(shard, &d), HS_OK);
    assert_true(hs_dataset_max_token(d) < 300);
    hs_dataset_close(d);

    /* Bad inputs: exit 1, one error line, no output file. */
    char out[400];
    util_path(out, sizeof out, "never.json");
    UTIL_EXPECT_USAGE_ERROR("--vocab", "tokenizer", "train", "--vocab", "10", "-o", out, corp);
    UTIL_EXPECT_USAGE_ERROR("-o", "tokenizer", "train", "--vocab", "300", corp);
    UTIL_EXPECT_USAGE_ERROR("cannot open", "tokenizer", "train", "-o", out, "/nonexistent/x.txt");
    UTIL_EXPECT_USAGE_ERROR("frobnicate", "tokenizer", "frobnicate");
    assert_false(hs_is_file(out));
    char bad[PATH_N];
    write_text("bad.json", "{\"model\": {\"type\": \"BPE\"", 25, bad);
    util_path(out, sizeof out, "never.bin");
    UTIL_EXPECT_USAGE_ERROR("tokenizer", "tokenizer", "encode", "--tokenizer", bad, "-o", out,
                            corp);
    assert_false(hs_is_file(out));
    /* a shard with a wrong magic, a truncated shard, ids beyond the tokenizer */
    char magic[PATH_N];
    write_text("magic.bin", "not a shard at all, not even 1024 bytes", 39, magic);
    util_path(out, sizeof out, "never.txt");
    UTIL_EXPECT_USAGE_ERROR("truncated", "tokenizer", "decode", "--tokenizer", tok, "-o", out,
                            magic);
    uint16_t big[3] = {1, 2, 299};
    big[2] = 4000;
    char bigp[400];
    util_path(bigp, sizeof bigp, "big.bin");
    assert_int_equal(hs_shard_write(bigp, big, 3), HS_OK);
    UTIL_EXPECT_USAGE_ERROR("outside the vocabulary", "tokenizer", "decode", "--tokenizer", tok,
                            "-o", out, bigp);
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
    util_path(run_dir, sizeof run_dir, "run");
    assert_int_equal(hs_checkpoint_save(run_dir, m, NULL, NULL, tok, 1, ck, n), HS_OK);
    hs_model_free(m);
}

static void test_sample_eval_cli(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char tok[400], corp[400], shard[400], ck[4096], run_dir[400];
    util_path(tok, sizeof tok, "tok.json");
    util_path(corp, sizeof corp, "corpus.txt");
    util_path(shard, sizeof shard, "corpus.bin");
    util_path(run_dir, sizeof run_dir, "run");
    assert_true(hs_is_file(tok)); /* from test_tokenizer_cli */
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "encode", "--tokenizer", tok, "-o", shard,
                              corp, NULL), 0);
    make_checkpoint(tok, ck, sizeof ck);

    char *out = NULL, *err = NULL;
    /* sample: from the run directory (latest) and from the checkpoint; greedy is deterministic */
    assert_int_equal(util_run(&out, &err, "sample", run_dir, "--prompt", "And God said",
                              "--tokens", "8", "--temperature", "0", NULL), 0);
    assert_true(!strncmp(out, "And God said", 12));
    char *out2 = NULL;
    assert_int_equal(util_run(&out2, NULL, "sample", ck, "--prompt", "And God said", "--tokens",
                              "8", "--temperature", "0", NULL), 0);
    assert_string_equal(out, out2);
    free(out);
    free(out2);
    free(err);
    /* longer than the context: the window slides */
    assert_int_equal(util_run(&out, NULL, "sample", run_dir, "--prompt", "light", "--tokens", "40",
                              "--seed", "3", NULL), 0);
    free(out);

    /* eval: loss near ln(300) for an untrained model, and a perplexity */
    assert_int_equal(util_run(&out, &err, "eval", run_dir, "--data", shard, "--json", NULL), 0);
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
    UTIL_EXPECT_USAGE_ERROR("context", "sample", run_dir, "--prompt", longp);
    UTIL_EXPECT_USAGE_ERROR("--prompt", "sample", run_dir);
    UTIL_EXPECT_USAGE_ERROR("neither a checkpoint", "sample", util_scratch_dir(), "--prompt", "x");
    UTIL_EXPECT_USAGE_ERROR("--data", "eval", run_dir);
    char bigp[400];
    util_path(bigp, sizeof bigp, "big.bin"); /* holds id 4000 > vocab 300 */
    uint16_t many[64];
    for (int i = 0; i < 64; i++) many[i] = (uint16_t)(i == 5 ? 4000 : i);
    assert_int_equal(hs_shard_write(bigp, many, 64), HS_OK);
    UTIL_EXPECT_USAGE_ERROR("vocabulary", "eval", run_dir, "--data", bigp);
    /* a tokenizer with more tokens than the model: prompt ids beyond the model's vocabulary */
    char tok2[400];
    util_path(tok2, sizeof tok2, "tok2.json");
    assert_int_equal(util_run(NULL, NULL, "tokenizer", "train", "--vocab", "400", "-o", tok2, corp,
                              NULL), 0);
    UTIL_EXPECT_USAGE_ERROR("vocabulary", "sample", run_dir, "--prompt",
                            "And God said, Let there be light", "--tokenizer", tok2);
    /* a config.json that does not match the weights */
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", ck);
    size_t n = 0;
    char *text_cfg = util_read_file(cfg, &n);
    cJSON *c = cJSON_Parse(text_cfg);
    cJSON_ReplaceItemInObject(c, "intermediate_size", cJSON_CreateNumber(256));
    char *edited = cJSON_Print(c);
    assert_int_equal(hs_file_write_atomic(cfg, edited, strlen(edited)), HS_OK);
    UTIL_EXPECT_USAGE_ERROR("shape", "eval", run_dir, "--data", shard);
    assert_int_equal(hs_file_write_atomic(cfg, text_cfg, n), HS_OK);
    free(edited);
    cJSON_Delete(c);
    free(text_cfg);
    /* a truncated model.safetensors */
    char st[4200];
    snprintf(st, sizeof st, "%s/model.safetensors", ck);
    assert_int_equal(truncate(st, 1000), 0);
    UTIL_EXPECT_USAGE_ERROR("safetensors", "sample", run_dir, "--prompt", "x");
}

static void test_corpus_cli(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char cache[400];
    util_path(cache, sizeof cache, "cache");
    setenv("HALFS_CACHE", cache, 1);
    for (int round = 0; round < 2; round++) {
        char *out = NULL;
        assert_int_equal(util_run(&out, NULL, "corpus", "--vocab", "300", "--json", NULL), 0);
        cJSON *j = cJSON_Parse(out);
        assert_non_null(j);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "cached")), round == 1);
        assert_int_equal(cJSON_GetObjectItem(j, "vocab")->valueint, 300);
        assert_non_null(strstr(cJSON_GetObjectItem(j, "dir")->valuestring, cache));
        const char *keys[5] = {"tokenizer", "train", "val", "ft_train", "ft_val"};
        for (int k = 0; k < 5; k++)
            assert_true(hs_is_file(cJSON_GetObjectItem(j, keys[k])->valuestring));
        assert_true(cJSON_GetObjectItem(j, "train_tokens")->valuedouble > 500000);
        assert_true(cJSON_GetObjectItem(j, "ft_val_tokens")->valuedouble > 1000);
        cJSON_Delete(j);
        free(out);
    }
    UTIL_EXPECT_USAGE_ERROR("--vocab", "corpus", "--vocab", "7");
    unsetenv("HALFS_CACHE");
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
    UTIL_NEED_CLI();
    char shard[400], runa[400], runb[400], latest[420];
    util_path(shard, sizeof shard, "corpus.bin"); /* from test_sample_eval_cli */
    assert_true(hs_is_file(shard));
    util_path(runa, sizeof runa, "trainA");
    util_path(runb, sizeof runb, "trainB");
    snprintf(latest, sizeof latest, "%s/latest", runb);
#define TRAIN_ARGS "--model", "nano", "--recipe", "mxfp4-halfs", "--vocab", "300", "--data", shard, \
        "--val", shard, "--steps", "10", "--batch", "2", "--seq", "16", "--eval-every", "3",    \
        "--eval-batches", "2", "--save-every", "1", "--threads", "1", "--quiet"
    assert_int_equal(util_run(NULL, NULL, "train", TRAIN_ARGS, "--out", runa, NULL), 0);
    char *want = util_metrics_det(runa);
    assert_non_null(strstr(want, "\n10,"));
    char fa[500], fb[500];
    snprintf(fa, sizeof fa, "%s/ckpt-000010/model.safetensors", runa);
    snprintf(fb, sizeof fb, "%s/ckpt-000010/model.safetensors", runb);
    size_t na, nb;
    char *wa = util_read_file(fa, &na);
    assert_non_null(wa);
    const long delays[4] = {0, 2, 7, 15};
    for (int round = 0; round < 4; round++) {
        assert_int_equal(util_rm_rf(runb), 0);
        char *args[] = {(char *)util_cli_bin(), "train", TRAIN_ARGS, "--out", runb, NULL};
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execv(util_cli_bin(), args);
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
        util_expect_exit_ok(util_run(NULL, NULL, "train", "--resume", runb, "--steps", "10",
                                     "--quiet", NULL));
        char *got = util_metrics_det(runb);
        assert_string_equal(got, want);
        free(got);
        char *wb = util_read_file(fb, &nb);
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
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
