/* fuzz_shard.c: libFuzzer target for the llm.c token-shard reader (dataset.h): hs_shard_parse
 * must accept or reject any input (HS_ERR_CORRUPT) without reading outside it; accepted
 * shards become datasets whose batches stay in bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int64_t n = 0;
    const unsigned char *tok = NULL;
    hs_status s = hs_shard_parse("fuzz", data, size, &n, &tok);
    if (s != HS_OK && s != HS_ERR_CORRUPT) abort();
    if (s != HS_OK) return 0;
    if (n <= 0 || tok != data + 1024 || (size_t)(1024 + 2 * n) != size) abort();
    uint16_t *t = malloc((size_t)n * sizeof *t);
    if (!t) return 0;
    for (int64_t i = 0; i < n; i++) t[i] = (uint16_t)(tok[2 * i] | tok[2 * i + 1] << 8);
    hs_dataset *d = NULL;
    if (hs_dataset_from_tokens(t, n, &d) == HS_OK) {
        int32_t in[4 * 8], tg[4 * 8];
        hs_status b = hs_dataset_batch(d, 1, 2, 0, 4, 8, in, tg);
        if ((n >= 9) != (b == HS_OK)) abort();
        if (b == HS_OK) {
            for (int i = 0; i < 32; i++)
                if (in[i] > hs_dataset_max_token(d) || tg[i] > hs_dataset_max_token(d)) abort();
            if (hs_dataset_eval_batch(d, 5, 4, 8, in, tg) != HS_OK) abort();
        }
        hs_dataset_close(d);
    }
    free(t);
    return 0;
}
