/* gguf.h: GGUF files (llama.cpp's model format, version 3): export a halfs model as a llama.cpp
 * "llama" model, with its seven block linears in MXFP4, bf16, f16 or f32, and read such a file
 * back strictly (every offset, size, type and count checked), as a model halfs can run.
 * docs/EXPORT.md describes the file halfs writes and what it was checked against.
 *
 * File layout (little-endian): "GGUF", version 3 (u32), tensor count (u64), key/value count
 * (u64); the key/value pairs (key: u64 length + bytes; value type u32; value); the tensor infos
 * (name, n_dims u32, ne[n_dims] u64 with ne[0] the contiguous axis, ggml type u32, offset u64
 * from the start of the data); padding to general.alignment (32 by default); the tensor data,
 * each tensor at its offset, in order, each padded to the alignment.
 *
 * MXFP4 tensors (GGML_TYPE_MXFP4) are rows of 17-byte blocks of 32 elements along ne[0]: one
 * E8M0 byte e (scale 2^(e−127), the same byte as OCP MXFP4 and halfs' packed scales), then 16
 * bytes in which the low nibble of byte j is element j and the high nibble element j+16; the
 * nibbles are E2M1 codes (bit 3 the sign). ggml decodes a nibble q as kvalues_mxfp4[q]·2^(e−128)
 * with kvalues_mxfp4 = {0,1,2,3,4,6,8,12, 0,−1,−2,−3,−4,−6,−8,−12}, E2M1 values doubled: the same
 * value as halfs' E2M1 code times 2^(e−127). Negative zero is written as code 0 (ggml's reference
 * quantizer, quantize_row_mxfp4_ref, picks the first of equally near values, +0).
 *
 * The parser (hs_gguf_parse and the functions up to hs_gguf_tensor_to_f32, gguf_read.c) uses
 * nothing but halfs/status.h, so the fuzz target links it alone.
 */
#ifndef HALFS_TRAIN_GGUF_H
#define HALFS_TRAIN_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/quant.h"
#include "halfs/status.h"
#include "nn/model.h"

/* The ggml tensor types halfs reads and writes (ggml.h numbers). */
typedef enum {
    HS_GGUF_F32 = 0,
    HS_GGUF_F16 = 1,
    HS_GGUF_BF16 = 30,
    HS_GGUF_MXFP4 = 39,
} hs_gguf_type;

#define HS_GGUF_MXFP4_BLOCK 32       /* elements per block_mxfp4 */
#define HS_GGUF_MXFP4_BLOCK_BYTES 17 /* bytes per block_mxfp4 */
#define HS_GGUF_MAX_NAME 64          /* ggml's GGML_MAX_NAME: a tensor name is shorter */

/* "f32", "f16", "bf16", "mxfp4" <-> type (HS_ERR_INVALID_ARG naming the choices otherwise). */
const char *hs_gguf_type_name(hs_gguf_type t);
hs_status hs_gguf_type_parse(const char *name, hs_gguf_type *out);

/* ---- MXFP4 blocks ----
 * One ggml block from one halfs MXFP4 group: the E8M0 byte and the 16 code bytes of halfs'
 * packing (element 2i in the low nibble of byte i, element 2i+1 in the high one). */
void hs_gguf_mxfp4_block(uint8_t e8m0, const uint8_t codes[16], uint8_t out[17]);
/* The 32 values of a ggml block (ggml's decoding above; e = 0xFF, the E8M0 NaN, gives NaN). */
void hs_gguf_mxfp4_decode(const uint8_t blk[17], float out[32]);

/* ---- reading ---- */
typedef struct hs_gguf_tensor {
    char name[HS_GGUF_MAX_NAME];
    int32_t n_dims;      /* 1..4 */
    int64_t ne[4];       /* ne[0] contiguous; unused dims are 1 */
    int64_t n_elem;
    hs_gguf_type type;
    const uint8_t *data; /* inside the parsed buffer */
    size_t n_bytes;
} hs_gguf_tensor;

typedef struct hs_gguf hs_gguf;

/* Parse a GGUF file held in data[0..n) (which must outlive the result). Strict: magic, version 3,
 * counts, every string and array inside the buffer, value types known (no nested arrays),
 * booleans 0/1, keys unique and non-empty, general.alignment (when present) a u32 power of two,
 * tensor names unique and shorter than 64 bytes, 1..4 dims each ≥ 1, element counts without
 * overflow, types among hs_gguf_type (others: HS_ERR_UNSUPPORTED), MXFP4 rows whole blocks, and
 * tensor data laid out as ggml lays it (each tensor at the previous end rounded up to the
 * alignment, all inside the buffer). HS_ERR_CORRUPT naming what is wrong otherwise. */
hs_status hs_gguf_parse(const void *data, size_t n, hs_gguf **out);
void hs_gguf_free(hs_gguf *g);

int64_t hs_gguf_n_tensors(const hs_gguf *g);
const hs_gguf_tensor *hs_gguf_tensor_at(const hs_gguf *g, int64_t i);
const hs_gguf_tensor *hs_gguf_find_tensor(const hs_gguf *g, const char *name);

/* Values by key. HS_ERR_IO when the key is absent, HS_ERR_CORRUPT when it has another type. */
hs_status hs_gguf_get_u32(const hs_gguf *g, const char *key, uint32_t *out);
hs_status hs_gguf_get_f32(const hs_gguf *g, const char *key, float *out);
/* A string value: *s points into the buffer (not NUL-terminated), *len its length. */
hs_status hs_gguf_get_str(const hs_gguf *g, const char *key, const char **s, size_t *len);
/* An array value: its element type (GGUF value type number) and count. */
hs_status hs_gguf_get_arr(const hs_gguf *g, const char *key, uint32_t *elem_type, uint64_t *count);

/* The Llama model the file describes, checked in full against what halfs runs:
 * general.architecture "llama"; llama.{context_length, embedding_length, block_count,
 * feed_forward_length, attention.head_count} u32 and attention.layer_norm_rms_epsilon f32;
 * attention.head_count_kv (if present) equal to head_count, rope.dimension_count (if present)
 * equal to the head dim, rope.freq_base f32 (if present; 10000 otherwise), vocab_size (if
 * present) and tokenizer.ggml.tokens (if present) equal to token_embd's rows; exactly the
 * tensors of the model (token_embd, output_norm, output unless tied, and per block attn_norm,
 * attn_q/k/v/output, ffn_norm, ffn_gate/up/down) with their shapes, norms 1-D, matrices any
 * readable type. The bounds are hs_model_config_validate's. */
hs_status hs_gguf_llama_config(const hs_gguf *g, hs_model_config *out);

/* Decode tensor t (n_elem values, row-major along ne[0]) into out; every value must be finite
 * (HS_ERR_CORRUPT naming the tensor otherwise). */
hs_status hs_gguf_tensor_to_f32(const hs_gguf_tensor *t, float *out);

/* ---- models ---- */

/* What hs_gguf_export writes. */
typedef struct hs_gguf_export_opts {
    hs_gguf_type weights; /* the seven block linears: MXFP4, BF16, F16 or F32 */
    hs_gguf_type other;   /* token_embd and output: F32, F16 or BF16 (norms are always F32) */
    hs_quant_spec spec;   /* weights == MXFP4: the quantizer of the linears, an E2M1 spec with
                             E8M0 scales in blocks of 32, no RHT, no 2D tiles, not stochastic */
    const char *name;     /* general.name (NULL: "halfs") */
} hs_gguf_export_opts;

/* Whether spec can produce ggml MXFP4 blocks (the conditions above). */
int hs_gguf_spec_is_mxfp4(const hs_quant_spec *spec);

/* Write m as a GGUF llama model to path, atomically (no file is left on failure): hyper-
 * parameters under llama.*, the tokenizer (tokenizer_json: the model's Hugging Face
 * tokenizer.json text; the tokens in GPT-2's byte-to-unicode spelling, their types, the merges,
 * tokenizer.ggml.model "gpt2", tokenizer.ggml.pre "gpt-2", and the JSON itself under
 * tokenizer.huggingface.json), and the tensors under llama.cpp's names with attn_q and attn_k
 * rows permuted as llama.cpp's Hugging Face converter permutes them. With MXFP4 weights every
 * linear's input dimension must be a multiple of 32 (HS_ERR_INVALID_ARG otherwise); the codes
 * and scales are exactly hs_quantize(spec) of the weights. */
hs_status hs_gguf_export(const hs_model *m, const char *tokenizer_json,
                         const hs_gguf_export_opts *o, const char *path);

/* A model from GGUF bytes (hs_gguf_llama_config, then every tensor decoded, q and k rows
 * permuted back). tokenizer_json (may be NULL) receives a malloc'ed copy of
 * tokenizer.huggingface.json, or NULL when the file has none. */
hs_status hs_gguf_load_model(const void *data, size_t n, hs_model **out, char **tokenizer_json);
/* The same from a file. */
hs_status hs_gguf_open_model(const char *path, hs_model **out, char **tokenizer_json);

/* 1 if path is a regular file that starts with the GGUF magic. */
int hs_gguf_is_file(const char *path);

#endif
