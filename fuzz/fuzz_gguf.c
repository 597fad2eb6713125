/* fuzz_gguf.c: libFuzzer target for the strict GGUF reader (src/train/gguf.h, gguf_read.c), the
 * reader `halfs eval MODEL.gguf` and `halfs sample` use. Any input must be accepted or rejected
 * with HS_ERR_CORRUPT or HS_ERR_UNSUPPORTED (a tensor type or model halfs does not run), never
 * crash or read out of bounds; accepted files have their keys looked up, their llama model
 * checked and every tensor decoded, as loading a model does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "train/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hs_gguf *g = NULL;
    hs_status s = hs_gguf_parse(data, size, &g);
    if (s != HS_OK && s != HS_ERR_CORRUPT && s != HS_ERR_UNSUPPORTED) abort();
    if (s != HS_OK) return 0;
    volatile float sum = 0;
    for (int64_t i = 0; i < hs_gguf_n_tensors(g); i++) {
        const hs_gguf_tensor *t = hs_gguf_tensor_at(g, i);
        if (!t || hs_gguf_find_tensor(g, t->name) != t) abort(); /* names are unique */
        float *dst = malloc((size_t)t->n_elem * sizeof *dst);
        if (!dst) continue;
        s = hs_gguf_tensor_to_f32(t, dst);
        if (s != HS_OK && s != HS_ERR_CORRUPT) abort();
        if (s == HS_OK) sum += dst[0] + dst[t->n_elem - 1];
        free(dst);
    }
    const char *str;
    size_t len;
    uint32_t u, et;
    uint64_t n;
    float f;
    if (hs_gguf_get_str(g, "general.architecture", &str, &len) == HS_OK && len) sum += str[len - 1];
    if (hs_gguf_get_u32(g, "llama.block_count", &u) == HS_OK) sum += (float)u;
    if (hs_gguf_get_f32(g, "llama.rope.freq_base", &f) == HS_OK) sum += f;
    (void)hs_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n);
    hs_model_config c;
    s = hs_gguf_llama_config(g, &c);
    if (s != HS_OK && s != HS_ERR_CORRUPT && s != HS_ERR_UNSUPPORTED && s != HS_ERR_IO) abort();
    hs_gguf_free(g);
    return 0;
}
