/* corpus.c: finds the embedded corpus, trains its tokenizer and encodes its shards into a
 * cache on first use (corpus.h). */
#include "train/corpus.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "train/dataset.h"
#include "train/fileio.h"
#include "train/tokenizer.h"

/* The embedded files, in the order they are hashed. */
static const char *const corpus_files[4] = {"kjv-train.txt.gz", "kjv-val.txt.gz",
                                            "devil-train.txt.gz", "devil-val.txt.gz"};

hs_status hs_text_read(const char *path, char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    char *raw;
    size_t n;
    hs_status st = hs_file_read_all(path, (size_t)1 << 31, &raw, &n);
    if (st != HS_OK) return st;
    if (n < 2 || (unsigned char)raw[0] != 0x1f || (unsigned char)raw[1] != 0x8b) {
        *data = raw;
        *size = n;
        return HS_OK;
    }
    free(raw);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return hs_fail(HS_ERR_IO, "cannot open '%s' with zlib", path);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            if (cap >= ((size_t)1 << 31)) {
                free(buf);
                gzclose(gz);
                return hs_fail(HS_ERR_IO, "'%s' decompresses to more than 2 GiB", path);
            }
            char *q = realloc(buf, 2 * cap + 1);
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        int r = gzread(gz, buf + len, (unsigned)(cap - len));
        if (r < 0) {
            int errnum;
            const char *msg = gzerror(gz, &errnum);
            hs_status e = hs_fail(HS_ERR_CORRUPT, "'%s' is not a valid gzip file: %s", path, msg);
            free(buf);
            gzclose(gz);
            return e;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    gzclose(gz);
    if (!buf) return hs_fail(HS_ERR_NOMEM, "out of memory decompressing '%s'", path);
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return HS_OK;
}

static int has_corpus(const char *dir) {
    char p[HS_CORPUS_PATH + 64];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, corpus_files[i]);
        if (!hs_is_file(p)) return 0;
    }
    return 1;
}

hs_status hs_corpus_data_dir(char *out, size_t n) {
    const char *env = getenv("HALFS_DATA");
    if (env && *env) {
        if (!has_corpus(env))
            return hs_fail(HS_ERR_IO,
                           "$HALFS_DATA is '%s' but it does not hold the corpus files "
                           "(kjv-train.txt.gz, ...)",
                           env);
        snprintf(out, n, "%s", env);
        return HS_OK;
    }
    char exe[HS_CORPUS_PATH];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return hs_fail(HS_ERR_IO, "cannot find the executable's path; set $HALFS_DATA");
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    static const char *const rel[3] = {"../data", "../../data", "../share/halfs/data"};
    char cand[HS_CORPUS_PATH + 32];
    for (int i = 0; i < 3; i++) {
        snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
        if (has_corpus(cand)) {
            char *real = realpath(cand, NULL);
            snprintf(out, n, "%s", real ? real : cand);
            free(real);
            return HS_OK;
        }
    }
    return hs_fail(HS_ERR_IO,
                   "the embedded corpus (data/kjv-train.txt.gz, ...) is not in %s/../data nor "
                   "%s/../../data; set $HALFS_DATA to the repository's data/ directory",
                   exe, exe);
}

hs_status hs_corpus_cache_dir(const char *cache_dir, char *out, size_t n) {
    if (cache_dir && *cache_dir) {
        snprintf(out, n, "%s", cache_dir);
        return HS_OK;
    }
    const char *env = getenv("HALFS_CACHE");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return HS_OK;
    }
    env = getenv("XDG_CACHE_HOME");
    if (env && *env) {
        snprintf(out, n, "%s/halfs", env);
        return HS_OK;
    }
    env = getenv("HOME");
    if (env && *env) {
        snprintf(out, n, "%s/.cache/halfs", env);
        return HS_OK;
    }
    return hs_fail(HS_ERR_IO, "no cache directory: set $HALFS_CACHE (or $HOME)");
}

static void fill_paths(hs_corpus *c) {
    snprintf(c->tokenizer, sizeof c->tokenizer, "%.4000s/tokenizer.json", c->dir);
    snprintf(c->train, sizeof c->train, "%.4000s/train.bin", c->dir);
    snprintf(c->val, sizeof c->val, "%.4000s/val.bin", c->dir);
    snprintf(c->ft_train, sizeof c->ft_train, "%.4000s/ft-train.bin", c->dir);
    snprintf(c->ft_val, sizeof c->ft_val, "%.4000s/ft-val.bin", c->dir);
}

static int complete(const hs_corpus *c) {
    return hs_is_file(c->tokenizer) && hs_is_file(c->train) && hs_is_file(c->val) &&
           hs_is_file(c->ft_train) && hs_is_file(c->ft_val);
}

static hs_status encode_to(const hs_tokenizer *tok, const char *src, const char *dst) {
    char *text;
    size_t n;
    hs_status st = hs_text_read(src, &text, &n);
    if (st != HS_OK) return st;
    int32_t *ids;
    int64_t n_ids;
    st = hs_tokenizer_encode(tok, text, n, &ids, &n_ids);
    free(text);
    if (st != HS_OK) return st;
    uint16_t *u = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *u);
    if (!u) {
        free(ids);
        return hs_fail(HS_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n_ids; i++) u[i] = (uint16_t)ids[i];
    free(ids);
    st = hs_shard_write(dst, u, n_ids);
    free(u);
    return st;
}

static void remove_tree(const char *dir) {
    static const char *const names[5] = {"tokenizer.json", "train.bin", "val.bin", "ft-train.bin",
                                         "ft-val.bin"};
    char p[HS_CORPUS_PATH + 32];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%.4000s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Train the tokenizer and encode the four texts into the temporary directory tmp. */
static hs_status prepare(const char *data, const char *tmp, int vocab) {
    char src[HS_CORPUS_PATH + 64];
    snprintf(src, sizeof src, "%s/%s", data, corpus_files[0]);
    char *text;
    size_t n;
    hs_status st = hs_text_read(src, &text, &n);
    if (st != HS_OK) return st;
    const unsigned char *texts[1] = {(const unsigned char *)text};
    hs_tokenizer *tok = NULL;
    st = hs_tokenizer_train(texts, &n, 1, vocab, &tok);
    free(text);
    if (st != HS_OK) return st;
    hs_corpus c;
    snprintf(c.dir, sizeof c.dir, "%.4000s", tmp);
    fill_paths(&c);
    st = hs_tokenizer_save(tok, c.tokenizer);
    const char *dst[4] = {c.train, c.val, c.ft_train, c.ft_val};
    for (int i = 0; st == HS_OK && i < 4; i++) {
        snprintf(src, sizeof src, "%s/%s", data, corpus_files[i]);
        st = encode_to(tok, src, dst[i]);
    }
    hs_tokenizer_free(tok);
    return st;
}

hs_status hs_corpus_default(const char *cache_dir, int vocab, hs_corpus *out) {
    if (!out) return hs_fail(HS_ERR_INVALID_ARG, "hs_corpus_default: NULL argument");
    memset(out, 0, sizeof *out);
    if (vocab == 0) vocab = HS_CORPUS_DEFAULT_VOCAB;
    if (vocab < 256 || vocab > HS_TOKENIZER_MAX_VOCAB)
        return hs_fail(HS_ERR_INVALID_ARG, "vocabulary size %d is out of range [256, %d]", vocab,
                       HS_TOKENIZER_MAX_VOCAB);
    char data[HS_CORPUS_PATH], cache[HS_CORPUS_PATH];
    hs_status st = hs_corpus_data_dir(data, sizeof data);
    if (st != HS_OK) return st;
    st = hs_corpus_cache_dir(cache_dir, cache, sizeof cache);
    if (st != HS_OK) return st;

    /* The cache key: the tokenizer algorithm, the vocab and every byte of the corpus files. */
    uint64_t h = hs_fnv1a(HS_FNV_INIT, HS_TOKENIZER_ALGO, strlen(HS_TOKENIZER_ALGO));
    h = hs_fnv1a(h, &vocab, sizeof vocab);
    for (int i = 0; i < 4; i++) {
        char p[HS_CORPUS_PATH + 64], *bytes;
        size_t n;
        snprintf(p, sizeof p, "%s/%s", data, corpus_files[i]);
        st = hs_file_read_all(p, (size_t)1 << 30, &bytes, &n);
        if (st != HS_OK) return st;
        h = hs_fnv1a(h, bytes, n);
        free(bytes);
    }
    snprintf(out->dir, sizeof out->dir, "%.4000s/kjv-v%d-%016llx", cache, vocab,
             (unsigned long long)h);
    fill_paths(out);
    out->vocab = vocab;
    if (complete(out)) {
        out->cached = 1;
        return HS_OK;
    }
    st = hs_mkdir_p(cache);
    if (st != HS_OK) return st;
    char tmp[HS_CORPUS_PATH + 32];
    snprintf(tmp, sizeof tmp, "%.4000s.tmpXXXXXX", out->dir);
    if (!mkdtemp(tmp))
        return hs_fail(HS_ERR_IO, "cannot create a directory in the cache '%s': %s", cache,
                       strerror(errno));
    chmod(tmp, 0755); /* mkdtemp made it private; the cache is an ordinary directory */
    st = prepare(data, tmp, vocab);
    if (st != HS_OK) {
        remove_tree(tmp);
        return st;
    }
    if (rename(tmp, out->dir) != 0) {
        int e = errno;
        if ((e == EEXIST || e == ENOTEMPTY) && complete(out)) {
            /* Another process finished first: use its (identical) result. */
            remove_tree(tmp);
            return HS_OK;
        }
        if (e == EEXIST || e == ENOTEMPTY) {
            /* An incomplete leftover (files removed by hand): move it aside, then retry. */
            char stale[HS_CORPUS_PATH + 32];
            snprintf(stale, sizeof stale, "%.4000s.staleXXXXXX", out->dir);
            if (mkdtemp(stale) && rename(out->dir, stale) == 0) remove_tree(stale);
            else if (stale[0]) rmdir(stale);
            if (rename(tmp, out->dir) == 0) {
                hs_dir_fsync(cache);
                return HS_OK;
            }
            e = errno;
        }
        remove_tree(tmp);
        return hs_fail(HS_ERR_IO, "cannot move the prepared corpus into '%s': %s", out->dir,
                       strerror(e));
    }
    hs_dir_fsync(cache);
    return HS_OK;
}
