/* fuzz_tokenizer.c: libFuzzer target for tokenizer.json loading and the BPE round trip
 * (tokenizer.h). The input's first byte picks a mode: odd = parse the rest as tokenizer.json
 * (must be accepted or rejected, never crash; an accepted tokenizer must round-trip a fixed
 * byte string); even = encode/decode the rest with a small tokenizer trained at start-up. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/tokenizer.h"

static hs_tokenizer *base;

static void roundtrip(const hs_tokenizer *t, const void *bytes, size_t n) {
    int32_t *ids = NULL;
    int64_t k = 0;
    if (hs_tokenizer_encode(t, bytes, n, &ids, &k) != HS_OK) abort();
    char *back = NULL;
    size_t nb = 0;
    if (hs_tokenizer_decode(t, ids, k, &back, &nb) != HS_OK) abort();
    if (nb != n || (n && memcmp(back, bytes, n))) abort();
    free(ids);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!base) {
        static const char text[] = "the cat sat on the mat; the cat's hat, 1234 cats\n\n  x";
        const unsigned char *texts[1] = {(const unsigned char *)text};
        size_t len = sizeof text - 1;
        if (hs_tokenizer_train(texts, &len, 1, 300, &base) != HS_OK) abort();
    }
    if (size == 0) return 0;
    if (data[0] & 1) {
        hs_tokenizer *t = NULL;
        hs_status s = hs_tokenizer_from_json((const char *)data + 1, size - 1, &t);
        if (s != HS_OK && s != HS_ERR_CORRUPT && s != HS_ERR_NOMEM) abort();
        if (s == HS_OK) {
            roundtrip(t, "the \x00\xff cat's 12", 14);
            hs_tokenizer_free(t);
        }
    } else {
        roundtrip(base, data + 1, size - 1);
    }
    return 0;
}
