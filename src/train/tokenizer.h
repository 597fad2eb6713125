/* tokenizer.h: byte-level BPE (GPT-2 style), trained in C, saved as a Hugging Face
 * tokenizer.json (model BPE, ByteLevel pre-tokenizer and decoder).
 *
 * Token ids 0..vocab-1; every one of the 256 byte values is a token, so encode∘decode is the
 * identity on ANY byte string (invalid UTF-8 and NUL bytes included).
 *
 * Pre-tokenisation (hs_pretokenize), a regex-free scanner for GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\sLN]+|\s+(?!\S)|\s+
 * with byte classes: L = ASCII letters and every byte >= 0x80 (so UTF-8 sequences stay inside a
 * word), N = ASCII digits, \s = space, \t, \n, \v, \f, \r; everything else is punctuation.
 * At each position, in order: a contraction ('s 't 'm 'd 're 've 'll, lower case) is a piece;
 * else an optional single space (0x20) followed by a maximal run of one class L, N or
 * punctuation is a piece; else a whitespace run: if it reaches the end of the text it is one
 * piece, otherwise it is split so that its last character is separate (a final space then
 * prefixes the next word, as in GPT-2; any other last character is a piece of its own).
 * BPE merges never cross pieces. On ASCII text this is exactly GPT-2's split, so Hugging Face's
 * tokenizers give the same ids as hs_tokenizer_encode (checked against tokenizers.js 0.2.0 on
 * the embedded corpus); on non-ASCII punctuation or spaces (e.g. U+2014, U+00A0) their Unicode
 * classes may split differently. Either way decoding is exact.
 */
#ifndef HALFS_TRAIN_TOKENIZER_H
#define HALFS_TRAIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

#define HS_TOKENIZER_MAX_VOCAB 65536 /* shards hold uint16 ids */
/* Bump when pre-tokenisation or training changes: cached corpora are keyed on it. */
#define HS_TOKENIZER_ALGO "halfs-bpe-1"

typedef struct hs_tokenizer hs_tokenizer;

/* The end (exclusive) of the piece that starts at `start` (< n). */
size_t hs_pretokenize(const unsigned char *s, size_t n, size_t start);

/* Train on n_texts buffers (pieces never cross buffers) up to `vocab` tokens (256..65536).
 * Training stops early, with fewer tokens, when no pair of tokens occurs any more. Deterministic:
 * the most frequent pair is merged; ties go to the smallest (left id, right id). */
hs_status hs_tokenizer_train(const unsigned char *const *texts, const size_t *lens, int n_texts,
                             int vocab, hs_tokenizer **out);

/* Hugging Face tokenizer.json: write (atomically) / read / parse from memory. */
hs_status hs_tokenizer_save(const hs_tokenizer *t, const char *path);
hs_status hs_tokenizer_load(const char *path, hs_tokenizer **out);
hs_status hs_tokenizer_from_json(const char *json, size_t len, hs_tokenizer **out);
/* The tokenizer.json text (malloc'ed, NUL-terminated; NULL when out of memory). */
char *hs_tokenizer_to_json(const hs_tokenizer *t);
void hs_tokenizer_free(hs_tokenizer *t);

int hs_tokenizer_vocab_size(const hs_tokenizer *t);
int hs_tokenizer_n_merges(const hs_tokenizer *t);
/* The bytes of token id (NULL if out of range); *len gets their number. */
const unsigned char *hs_tokenizer_token_bytes(const hs_tokenizer *t, int id, int *len);
/* Merge r (0 = first learned): left and right token ids and the resulting id. */
hs_status hs_tokenizer_merge(const hs_tokenizer *t, int r, int *left, int *right, int *result);

/* Encode n bytes into a fresh array of ids (*ids malloc'ed, possibly empty). Thread-safe. */
hs_status hs_tokenizer_encode(const hs_tokenizer *t, const void *bytes, size_t n, int32_t **ids,
                              int64_t *n_ids);
/* Decode ids into a fresh byte buffer (NUL-terminated one past *n_bytes). Ids out of range
 * are an error (HS_ERR_INVALID_ARG), never read. */
hs_status hs_tokenizer_decode(const hs_tokenizer *t, const int32_t *ids, int64_t n, char **bytes,
                              size_t *n_bytes);

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in tokenizer.json. */
unsigned hs_byte_to_unicode(unsigned char b);

#endif
