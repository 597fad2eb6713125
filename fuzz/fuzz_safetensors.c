/* fuzz_safetensors.c: libFuzzer target for the strict safetensors reader (safetensors.h).
 * Any input must be accepted or rejected with HS_ERR_CORRUPT, never crash or read out of
 * bounds; accepted files are walked completely and their float tensors converted. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "train/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hs_safetensors *st = NULL;
    hs_status s = hs_safetensors_parse(data, size, &st);
    if (s != HS_OK && s != HS_ERR_CORRUPT) abort();
    if (s != HS_OK) return 0;
    volatile unsigned sum = 0;
    for (int i = 0; i < hs_safetensors_count(st); i++) {
        const hs_st_tensor *t = hs_safetensors_get(st, i);
        const unsigned char *p = t->data;
        for (uint64_t b = 0; b < t->nbytes; b++) sum += p[b];
        if ((t->dtype == HS_DT_F32 || t->dtype == HS_DT_BF16 || t->dtype == HS_DT_F16) &&
            t->nbytes < (1u << 24)) {
            float *dst = malloc(t->nbytes * 2 + 4);
            if (dst && hs_safetensors_read_f32(st, t->name, t->ndim, t->shape, dst) != HS_OK)
                abort(); /* a validated tensor must convert */
            free(dst);
        }
    }
    (void)hs_safetensors_meta(st, "format");
    hs_safetensors_close(st);
    return 0;
}
