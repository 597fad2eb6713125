/* dataset.h: token data for training and evaluation (llm.c-compatible .bin shards).
 *
 * A shard file is a 256-int32 little-endian header (magic 20240520, version 1, token count,
 * the rest zero) followed by that many uint16 tokens. A dataset is one shard, or every
 * *.bin file of a directory in name order, concatenated in memory.
 * Batches are deterministic: window starts are a pure function of (seed, step, micro-batch,
 * row), so a resumed run sees exactly the batches an uninterrupted one would.
 */
#ifndef HALFS_TRAIN_DATASET_H
#define HALFS_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

#define HS_SHARD_MAGIC 20240520
#define HS_SHARD_VERSION 1
#define HS_SHARD_HEADER_INTS 256

typedef struct hs_dataset hs_dataset;

/* Open a .bin shard or a directory of them. Errors: missing file, wrong magic/version,
 * truncated data, token count mismatch (HS_ERR_IO / HS_ERR_CORRUPT with a message). */
hs_status hs_dataset_open(const char *path, hs_dataset **out);
/* A dataset over a copy of n tokens in memory (tests, tools). */
hs_status hs_dataset_from_tokens(const uint16_t *tokens, int64_t n, hs_dataset **out);
void hs_dataset_close(hs_dataset *d);

int64_t hs_dataset_size(const hs_dataset *d);          /* number of tokens */
const uint16_t *hs_dataset_tokens(const hs_dataset *d);
int hs_dataset_max_token(const hs_dataset *d);         /* largest token id present */

/* Fill inputs and targets (each B×T, row-major) with B windows of T+1 consecutive tokens whose
 * starts are drawn from (seed, step, micro). Needs size ≥ T+1 (HS_ERR_INVALID_ARG otherwise). */
hs_status hs_dataset_batch(const hs_dataset *d, uint64_t seed, int64_t step, int micro, int B,
                           int T, int32_t *inputs, int32_t *targets);

/* The k-th of the n_windows consecutive non-overlapping windows (evaluation: deterministic,
 * covers the data in order). inputs/targets are B×T; windows past the end wrap around. */
hs_status hs_dataset_eval_batch(const hs_dataset *d, int64_t k, int B, int T, int32_t *inputs,
                                int32_t *targets);

/* Write tokens as a shard file atomically (temp + rename). */
hs_status hs_shard_write(const char *path, const uint16_t *tokens, int64_t n);

/* Validate a shard image held in memory (bytes, size; `name` is used in messages): on success
 * *n_tokens is its token count and *token_bytes points at the first little-endian uint16 token
 * inside bytes. Never reads outside [bytes, bytes+size). Used by hs_dataset_open and the fuzzer. */
hs_status hs_shard_parse(const char *name, const unsigned char *bytes, size_t size,
                         int64_t *n_tokens, const unsigned char **token_bytes);

#endif
