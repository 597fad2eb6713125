/* corpus.h: the embedded default corpus (data/), its tokenizer and token shards, prepared on
 * first use and cached.
 *
 * data/ holds gzip'ed public-domain text (data/README.md): the King James Bible for
 * pretraining (kjv-train / kjv-val) and The Devil's Dictionary, held out from pretraining, for
 * fine-tuning (devil-train / devil-val). hs_corpus_default trains a byte-level BPE tokenizer on
 * kjv-train only and encodes all four texts with it into
 *   CACHE/kjv-v<vocab>-<key>/{tokenizer.json, train.bin, val.bin, ft-train.bin, ft-val.bin}
 * where <key> hashes the four .gz files and the tokenizer algorithm's version, so a changed
 * corpus or a changed tokenizer never reuses a stale cache. The directory is built under a
 * temporary name and renamed into place: concurrent first uses are safe, and an interrupted
 * preparation leaves nothing that looks complete.
 *
 * Where things are looked up:
 *   data:  $HALFS_DATA, else ../data or ../../data relative to the running executable
 *          (/proc/self/exe: build/halfs and build/tests/test_* both find the repository's data/),
 *          else ../share/halfs/data (an installed layout).
 *   cache: the cache_dir argument, else $HALFS_CACHE, else $XDG_CACHE_HOME/halfs, else
 *          $HOME/.cache/halfs.
 */
#ifndef HALFS_TRAIN_CORPUS_H
#define HALFS_TRAIN_CORPUS_H

#include <stddef.h>

#include "halfs/status.h"

#define HS_CORPUS_PATH 4096
#define HS_CORPUS_DEFAULT_VOCAB 4096

typedef struct {
    char dir[HS_CORPUS_PATH];       /* the cache directory of this corpus and vocab */
    char tokenizer[HS_CORPUS_PATH]; /* tokenizer.json */
    char train[HS_CORPUS_PATH];     /* pretraining shards (King James Bible) */
    char val[HS_CORPUS_PATH];
    char ft_train[HS_CORPUS_PATH];  /* fine-tuning shards (The Devil's Dictionary), same tokenizer */
    char ft_val[HS_CORPUS_PATH];
    int vocab;                      /* tokens in the tokenizer (the requested size) */
    int cached;                     /* 1 if everything came from the cache, 0 if prepared now */
} hs_corpus;

/* Prepare (or find in the cache) the default corpus with a `vocab`-token tokenizer
 * (0 = HS_CORPUS_DEFAULT_VOCAB). cache_dir may be NULL (see above). First use takes a few
 * seconds; later uses only check that the files are there. */
hs_status hs_corpus_default(const char *cache_dir, int vocab, hs_corpus *out);

/* The directory holding the embedded corpus files (see above), or HS_ERR_IO with a message
 * saying where it looked. */
hs_status hs_corpus_data_dir(char *out, size_t n);

/* The directory the cache would use for cache_dir (NULL: the default chain above). */
hs_status hs_corpus_cache_dir(const char *cache_dir, char *out, size_t n);

/* Read a text file whole; gzip files (magic 1f 8b) are decompressed. *data is malloc'ed and
 * NUL-terminated one past *size. */
hs_status hs_text_read(const char *path, char **data, size_t *size);

#endif
