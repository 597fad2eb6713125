/* test_tokenizer.c: byte-level BPE (tokenizer.h) and the embedded corpus (corpus.h):
 * pre-tokenisation rules, exact round trips on random bytes and on the corpus, the
 * tokenizer.json structure, deterministic training, merge-table consistency, bad files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/corpus.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/tokenizer.h"
#include "util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { return util_splitmix64(&rng_state); }

/* Read the embedded corpus file `name` (decompressed). */
static char *corpus_text(const char *name, size_t *n) {
    char dir[HS_CORPUS_PATH], p[HS_CORPUS_PATH + 64];
    if (hs_corpus_data_dir(dir, sizeof dir) != HS_OK) {
        print_error("%s\n", hs_last_error());
        fail();
    }
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *text;
    assert_int_equal(hs_text_read(p, &text, n), HS_OK);
    return text;
}

static hs_tokenizer *train_on(const char *text, size_t n, int vocab) {
    const unsigned char *texts[1] = {(const unsigned char *)text};
    hs_tokenizer *t = NULL;
    assert_int_equal(hs_tokenizer_train(texts, &n, 1, vocab, &t), HS_OK);
    return t;
}

static void roundtrip(const hs_tokenizer *t, const void *bytes, size_t n) {
    int32_t *ids;
    int64_t n_ids;
    assert_int_equal(hs_tokenizer_encode(t, bytes, n, &ids, &n_ids), HS_OK);
    assert_true(n_ids <= (int64_t)n);
    for (int64_t i = 0; i < n_ids; i++)
        assert_true(ids[i] >= 0 && ids[i] < hs_tokenizer_vocab_size(t));
    char *back;
    size_t nb;
    assert_int_equal(hs_tokenizer_decode(t, ids, n_ids, &back, &nb), HS_OK);
    assert_int_equal(nb, n);
    if (n) assert_memory_equal(back, bytes, n);
    free(back);
    free(ids);
}

static void test_pretokenize(void **state) {
    (void)state;
    const char *s = "Hello world's  end\n\nfoo 123abc--x 'll'x \t";
    /* "'x" is not a contraction: the quote is punctuation on its own, then "x". */
    const char *want[] = {"Hello", " world", "'s", " ", " end", "\n", "\n", "foo", " 123",
                                "abc", "--", "x", " '", "ll", "'", "x", " \t"};
    size_t n = strlen(s), i = 0;
    int k = 0;
    while (i < n) {
        size_t e = hs_pretokenize((const unsigned char *)s, n, i);
        assert_true(e > i && e <= n);
        assert_true(k < (int)(sizeof want / sizeof *want));
        if (strlen(want[k]) != e - i || memcmp(want[k], s + i, e - i)) {
            print_error("piece %d: got '%.*s', want '%s'\n", k, (int)(e - i), s + i, want[k]);
            fail();
        }
        k++;
        i = e;
    }
    assert_int_equal(k, (int)(sizeof want / sizeof *want));
    /* UTF-8 stays inside a word: "café" is one piece, and " naïve" another. */
    const char *u = "caf\xc3\xa9 na\xc3\xafve";
    n = strlen(u);
    assert_int_equal(hs_pretokenize((const unsigned char *)u, n, 0), 5);
    assert_int_equal(hs_pretokenize((const unsigned char *)u, n, 5), n);
}

static void test_roundtrip_random_bytes(void **state) {
    (void)state;
    size_t n;
    char *text = corpus_text("kjv-val.txt.gz", &n);
    hs_tokenizer *t = train_on(text, n, 600);
    assert_int_equal(hs_tokenizer_vocab_size(t), 600);
    roundtrip(t, text, n);
    free(text);
    unsigned char buf[4096];
    for (int trial = 0; trial < 200; trial++) {
        size_t len = (size_t)(rnd() % sizeof buf);
        int mode = trial % 4;
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rnd();
            if (mode == 0) buf[i] = (unsigned char)r; /* any byte, NULs and invalid UTF-8 */
            else if (mode == 1) buf[i] = (unsigned char)(r % 4 == 0 ? 0 : (r & 1 ? 0xC3 : 0x80 + (r >> 8) % 64));
            else if (mode == 2) buf[i] = " \n\t\r'sthe"[r % 9]; /* whitespace and contractions */
            else buf[i] = (unsigned char)("ab \x00\xff"[r % 5]);
        }
        roundtrip(t, buf, len);
    }
    roundtrip(t, "", 0);
    roundtrip(t, "\0", 1);
    hs_tokenizer_free(t);
}

static void test_json_structure_and_reload(void **state) {
    (void)state;
    size_t n;
    char *text = corpus_text("devil-val.txt.gz", &n);
    hs_tokenizer *t = train_on(text, n, 700);
    char *json = hs_tokenizer_to_json(t);
    assert_non_null(json);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(model, "type")->valuestring, "BPE");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                         "type")->valuestring, "ByteLevel");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "decoder"),
                                         "type")->valuestring, "ByteLevel");
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "added_tokens")));
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    assert_int_equal(cJSON_GetArraySize(vocab), 700);
    assert_int_equal(cJSON_GetArraySize(merges), hs_tokenizer_n_merges(t));
    /* GPT-2's byte-to-unicode map: space is U+0120 'Ġ', newline U+010A 'Ċ', NUL U+0100. */
    assert_int_equal(hs_byte_to_unicode(' '), 0x120);
    assert_int_equal(hs_byte_to_unicode('\n'), 0x10A);
    assert_int_equal(hs_byte_to_unicode(0), 0x100);
    assert_int_equal(hs_byte_to_unicode('A'), 'A');
    assert_int_equal(hs_byte_to_unicode(0xAD), 0x143);
    cJSON *it = cJSON_GetObjectItemCaseSensitive(vocab, "\xc4\xa0"); /* "Ġ" */
    assert_non_null(it);
    int len;
    const unsigned char *b = hs_tokenizer_token_bytes(t, (int)it->valuedouble, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], ' ');
    /* Every merge is "LEFT RIGHT" with both sides and their concatenation in the vocab. */
    cJSON_ArrayForEach(it, merges) {
        assert_true(cJSON_IsString(it));
        char *sp = strchr(it->valuestring, ' ');
        assert_non_null(sp);
        *sp = '\0';
        char joined[512];
        snprintf(joined, sizeof joined, "%s%s", it->valuestring, sp + 1);
        assert_non_null(cJSON_GetObjectItemCaseSensitive(vocab, it->valuestring));
        assert_non_null(cJSON_GetObjectItemCaseSensitive(vocab, sp + 1));
        assert_non_null(cJSON_GetObjectItemCaseSensitive(vocab, joined));
        *sp = ' ';
    }
    cJSON_Delete(root);

    /* Save, load: the same tokens, merges and encoding. */
    char p[512];
    util_path(p, sizeof p, "tok.json");
    assert_int_equal(hs_tokenizer_save(t, p), HS_OK);
    hs_tokenizer *u = NULL;
    assert_int_equal(hs_tokenizer_load(p, &u), HS_OK);
    assert_int_equal(hs_tokenizer_vocab_size(u), 700);
    assert_int_equal(hs_tokenizer_n_merges(u), hs_tokenizer_n_merges(t));
    char *json2 = hs_tokenizer_to_json(u);
    assert_string_equal(json, json2);
    int32_t *i1, *i2;
    int64_t n1, n2;
    assert_int_equal(hs_tokenizer_encode(t, text, n, &i1, &n1), HS_OK);
    assert_int_equal(hs_tokenizer_encode(u, text, n, &i2, &n2), HS_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(i1, i2, (size_t)n1 * sizeof *i1);
    assert_true(n1 < (int64_t)n / 2); /* it compresses English */
    free(i1);
    free(i2);
    free(json);
    free(json2);
    free(text);
    hs_tokenizer_free(t);
    hs_tokenizer_free(u);
}

static void test_deterministic_and_consistent(void **state) {
    (void)state;
    size_t n;
    char *text = corpus_text("kjv-val.txt.gz", &n);
    hs_tokenizer *a = train_on(text, n, 1024), *b = train_on(text, n, 1024);
    char *ja = hs_tokenizer_to_json(a), *jb = hs_tokenizer_to_json(b);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    /* Merge table: result bytes = left bytes + right bytes; new ids appear in order 256, 257...;
     * every token above 255 is produced by some merge; the 256 byte tokens are ids 0..255. */
    int V = hs_tokenizer_vocab_size(a), M = hs_tokenizer_n_merges(a);
    assert_int_equal(V, 1024);
    assert_true(M >= V - 256);
    char *made = calloc((size_t)V, 1);
    int next_new = 256;
    for (int r = 0; r < M; r++) {
        int l, rt, c, ll, lr, lc;
        assert_int_equal(hs_tokenizer_merge(a, r, &l, &rt, &c), HS_OK);
        const unsigned char *bl = hs_tokenizer_token_bytes(a, l, &ll);
        const unsigned char *br = hs_tokenizer_token_bytes(a, rt, &lr);
        const unsigned char *bc = hs_tokenizer_token_bytes(a, c, &lc);
        assert_int_equal(lc, ll + lr);
        assert_memory_equal(bc, bl, (size_t)ll);
        assert_memory_equal(bc + ll, br, (size_t)lr);
        assert_true(l < c || made[l]); /* parts exist before the result */
        if (!made[c]) {
            assert_int_equal(c, next_new);
            next_new++;
            made[c] = 1;
        }
    }
    assert_int_equal(next_new, V);
    for (int id = 0; id < 256; id++) {
        int len;
        const unsigned char *bb = hs_tokenizer_token_bytes(a, id, &len);
        assert_int_equal(len, 1);
        assert_int_equal(bb[0], id);
    }
    /* The most frequent word of the KJV is a single token. */
    int32_t *ids;
    int64_t k;
    assert_int_equal(hs_tokenizer_encode(a, " the", 4, &ids, &k), HS_OK);
    assert_int_equal(k, 1);
    free(ids);
    /* Out-of-range ids are refused, not read. */
    int32_t bad[2] = {5, V};
    char *out;
    size_t nout;
    assert_int_equal(hs_tokenizer_decode(a, bad, 2, &out, &nout), HS_ERR_INVALID_ARG);
    free(made);
    free(text);
    hs_tokenizer_free(a);
    hs_tokenizer_free(b);

    /* Early stop: "abab" has only a few possible merges. */
    hs_tokenizer *c = train_on("abababab", 8, 1000);
    assert_true(hs_tokenizer_vocab_size(c) < 1000 && hs_tokenizer_vocab_size(c) > 256);
    roundtrip(c, "abababab", 8);
    hs_tokenizer_free(c);
    hs_tokenizer *d = NULL;
    const unsigned char *tx[1] = {(const unsigned char *)"ab"};
    size_t tl = 2;
    assert_int_equal(hs_tokenizer_train(tx, &tl, 1, 255, &d), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_tokenizer_train(tx, &tl, 1, 65537, &d), HS_ERR_INVALID_ARG);
}

/* Reference BPE for one piece, straight from the definition: while some adjacent pair has a
 * merge, apply the lowest-ranked one at its leftmost position. O(n² M), for short inputs. */
static int ref_encode_piece(const hs_tokenizer *t, const unsigned char *p, int n, int32_t *out) {
    int m = n;
    for (int i = 0; i < n; i++) out[i] = p[i]; /* byte tokens are ids 0..255 */
    int M = hs_tokenizer_n_merges(t);
    for (;;) {
        int best_r = -1, best_i = -1;
        for (int i = 0; i + 1 < m; i++)
            for (int r = 0; r < M && (best_r < 0 || r < best_r); r++) {
                int a, b, c;
                hs_tokenizer_merge(t, r, &a, &b, &c);
                if (a == out[i] && b == out[i + 1]) {
                    best_r = r;
                    best_i = i;
                    break;
                }
            }
        if (best_r < 0) return m;
        int a, b, c;
        hs_tokenizer_merge(t, best_r, &a, &b, &c);
        out[best_i] = c;
        memmove(out + best_i + 1, out + best_i + 2, (size_t)(m - best_i - 2) * sizeof *out);
        m--;
    }
}

static void test_encode_matches_reference(void **state) {
    (void)state;
    /* A small alphabet makes long words, repeated pairs and overlapping merges common. */
    char train[20000];
    for (size_t i = 0; i < sizeof train - 1; i++) train[i] = "aab ba,\n"[rnd() % 8];
    train[sizeof train - 1] = '\0';
    hs_tokenizer *t = train_on(train, sizeof train - 1, 400);
    for (int trial = 0; trial < 300; trial++) {
        unsigned char in[96];
        int n = (int)(rnd() % sizeof in);
        for (int i = 0; i < n; i++) in[i] = (unsigned char)"aab ba,\n"[rnd() % 8];
        int32_t *ids;
        int64_t k;
        assert_int_equal(hs_tokenizer_encode(t, in, (size_t)n, &ids, &k), HS_OK);
        int32_t want[96];
        int nw = 0;
        for (size_t i = 0; i < (size_t)n;) {
            size_t e = hs_pretokenize(in, (size_t)n, i);
            nw += ref_encode_piece(t, in + i, (int)(e - i), want + nw);
            i = e;
        }
        assert_int_equal(k, nw);
        assert_memory_equal(ids, want, (size_t)nw * sizeof *want);
        free(ids);
    }
    hs_tokenizer_free(t);
}

static void expect_bad_json(const char *json, const char *needle) {
    hs_tokenizer *t = (hs_tokenizer *)0x1;
    assert_int_equal(hs_tokenizer_from_json(json, strlen(json), &t), HS_ERR_CORRUPT);
    assert_null(t);
    if (needle && !strstr(hs_last_error(), needle)) {
        print_error("message '%s' lacks '%s'\n", hs_last_error(), needle);
        fail();
    }
}

static void test_bad_files(void **state) {
    (void)state;
    hs_tokenizer *t = train_on("hello hello hello", 17, 260);
    char *json = hs_tokenizer_to_json(t);
    hs_tokenizer_free(t);
    expect_bad_json("{ not json", "not valid JSON");
    expect_bad_json("{}", "BPE");
    expect_bad_json("[1,2]", "BPE");
    /* Truncations of a valid file are all rejected without crashing. */
    size_t n = strlen(json);
    for (size_t k = 0; k < n; k += 97) {
        char *cut = strndup(json, k);
        hs_tokenizer *u = NULL;
        assert_int_equal(hs_tokenizer_from_json(cut, k, &u), HS_ERR_CORRUPT);
        free(cut);
    }
    /* Edits of the valid file. */
    cJSON *root = cJSON_Parse(json);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    char *s;
    /* an unknown token in a merge */
    cJSON_AddItemToArray(merges, cJSON_CreateString("zz q"));
    s = cJSON_PrintUnformatted(root);
    expect_bad_json(s, "not in the vocab");
    free(s);
    cJSON_DeleteItemFromArray(merges, cJSON_GetArraySize(merges) - 1);
    /* a gap in the ids */
    cJSON_AddItemToObject(vocab, "zzz", cJSON_CreateNumber(5000));
    s = cJSON_PrintUnformatted(root);
    expect_bad_json(s, "vocab id");
    free(s);
    cJSON_DeleteItemFromObject(vocab, "zzz");
    /* a key outside the byte-level alphabet (a space, U+0020, is never a token character) */
    cJSON_AddItemToObject(vocab, "a b", cJSON_CreateNumber(cJSON_GetArraySize(vocab)));
    s = cJSON_PrintUnformatted(root);
    expect_bad_json(s, "byte-level");
    free(s);
    cJSON_DeleteItemFromObject(vocab, "a b");
    /* not ByteLevel */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "type",
                              cJSON_CreateString("Metaspace"));
    s = cJSON_PrintUnformatted(root);
    expect_bad_json(s, "ByteLevel");
    free(s);
    cJSON_Delete(root);
    free(json);

    char p[512];
    util_path(p, sizeof p, "missing.json");
    t = NULL;
    assert_int_equal(hs_tokenizer_load(p, &t), HS_ERR_IO);
}

static void test_default_corpus(void **state) {
    (void)state;
    char cache[512];
    util_path(cache, sizeof cache, "cache");
    hs_corpus c;
    if (hs_corpus_default(cache, 512, &c) != HS_OK) {
        print_error("%s\n", hs_last_error());
        fail();
    }
    assert_int_equal(c.cached, 0);
    assert_int_equal(c.vocab, 512);
    hs_corpus again;
    assert_int_equal(hs_corpus_default(cache, 512, &again), HS_OK);
    assert_int_equal(again.cached, 1);
    assert_string_equal(again.train, c.train);
    /* A damaged cache (a shard removed by hand) is rebuilt, not trusted. */
    assert_int_equal(unlink(c.val), 0);
    assert_int_equal(hs_corpus_default(cache, 512, &again), HS_OK);
    assert_int_equal(again.cached, 0);
    assert_true(hs_is_file(again.val));
    assert_string_equal(again.val, c.val);
    /* Another vocab gets another directory. */
    hs_corpus other;
    assert_int_equal(hs_corpus_default(cache, 300, &other), HS_OK);
    assert_string_not_equal(other.dir, c.dir);

    /* The shards decode to exactly the corpus text: a round trip over the whole corpus. */
    hs_tokenizer *t = NULL;
    assert_int_equal(hs_tokenizer_load(c.tokenizer, &t), HS_OK);
    const char *shards[4] = {c.train, c.val, c.ft_train, c.ft_val};
    const char *texts[4] = {"kjv-train.txt.gz", "kjv-val.txt.gz", "devil-train.txt.gz",
                            "devil-val.txt.gz"};
    for (int k = 0; k < 4; k++) {
        hs_dataset *d;
        assert_int_equal(hs_dataset_open(shards[k], &d), HS_OK);
        assert_true(hs_dataset_max_token(d) < 512);
        int64_t n = hs_dataset_size(d);
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        for (int64_t i = 0; i < n; i++) ids[i] = hs_dataset_tokens(d)[i];
        char *dec;
        size_t nd, nt;
        assert_int_equal(hs_tokenizer_decode(t, ids, n, &dec, &nd), HS_OK);
        char *text = corpus_text(texts[k], &nt);
        assert_int_equal(nd, nt);
        assert_memory_equal(dec, text, nt);
        free(text);
        free(dec);
        free(ids);
        hs_dataset_close(d);
    }
    hs_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretokenize),
        cmocka_unit_test(test_roundtrip_random_bytes),
        cmocka_unit_test(test_json_structure_and_reload),
        cmocka_unit_test(test_deterministic_and_consistent),
        cmocka_unit_test(test_encode_matches_reference),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_default_corpus),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}
