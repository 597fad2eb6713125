/* safetensors.h: a writer and a strict reader of the safetensors format (Hugging Face).
 *
 * Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON, an object
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
 * "__metadata__" object of string values; padded with spaces; then the byte buffer, in which
 * every tensor occupies [begin, end) (offsets relative to the buffer's start), row-major,
 * little-endian. The writer pads the header to a multiple of 8 bytes (so the data is aligned)
 * and writes tensors back to back in the order given, atomically (temp file, fsync, rename).
 *
 * The reader accepts only well-formed files and says why it rejects one (HS_ERR_CORRUPT):
 * header length past the end of the file or over 100 MB, a header that is not a JSON object
 * or is followed by anything but spaces, an unknown dtype, a negative or non-integer shape or
 * offset, begin > end, end past the buffer, end − begin ≠ dtype size × number of elements,
 * overlapping tensors, holes or trailing bytes in the buffer, duplicate names, non-string
 * metadata. It never reads outside the bytes it was given. Host byte order is assumed
 * little-endian (x86-64, AArch64).
 */
#ifndef HALFS_TRAIN_SAFETENSORS_H
#define HALFS_TRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

typedef enum {
    HS_DT_BOOL = 0,
    HS_DT_U8,
    HS_DT_I8,
    HS_DT_F8_E4M3,
    HS_DT_F8_E5M2,
    HS_DT_I16,
    HS_DT_U16,
    HS_DT_F16,
    HS_DT_BF16,
    HS_DT_I32,
    HS_DT_U32,
    HS_DT_F32,
    HS_DT_I64,
    HS_DT_U64,
    HS_DT_F64,
    HS_DT_COUNT
} hs_dtype;

/* "F32", "BF16", ... (the format's names) and bytes per element. */
const char *hs_dtype_name(hs_dtype t);
size_t hs_dtype_size(hs_dtype t);
hs_status hs_dtype_parse(const char *name, hs_dtype *out);

#define HS_ST_MAX_DIMS 8

/* A tensor to write, or one read back. */
typedef struct {
    const char *name;
    hs_dtype dtype;
    int32_t ndim;                   /* 0 (scalar) .. HS_ST_MAX_DIMS */
    int64_t shape[HS_ST_MAX_DIMS];
    const void *data;               /* numel × dtype size bytes */
    uint64_t nbytes;                /* reader: end − begin */
} hs_st_tensor;

/* Write n tensors and n_meta "__metadata__" key/value string pairs (meta[2i], meta[2i+1]). */
hs_status hs_safetensors_write(const char *path, const hs_st_tensor *tensors, int n,
                               const char *const *meta, int n_meta);

typedef struct hs_safetensors hs_safetensors;

/* Read and validate a whole file / a byte image (copied). */
hs_status hs_safetensors_open(const char *path, hs_safetensors **out);
hs_status hs_safetensors_parse(const void *bytes, size_t n, hs_safetensors **out);
void hs_safetensors_close(hs_safetensors *st);

int hs_safetensors_count(const hs_safetensors *st);
/* The i-th tensor in file order (by data offset); NULL if out of range. */
const hs_st_tensor *hs_safetensors_get(const hs_safetensors *st, int i);
/* The tensor named `name`, or NULL. */
const hs_st_tensor *hs_safetensors_find(const hs_safetensors *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *hs_safetensors_meta(const hs_safetensors *st, const char *key);

/* Copy the tensor `name` into dst as float32 after checking that it exists, has this dtype
 * (F32, BF16 or F16 are converted) and exactly this shape; errors name the tensor and say
 * what differs (HS_ERR_CORRUPT). */
hs_status hs_safetensors_read_f32(const hs_safetensors *st, const char *name, int32_t ndim,
                                  const int64_t *shape, float *dst);

#endif
