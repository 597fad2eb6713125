/* workspace.c: per-thread scratch buffers of the kernels (operand repacking), reused across calls.
 *
 * Why: on this VM the first touch of a fresh page costs ~11 µs (a page fault; measured),
 * so a GEMM that mallocs its packed operands every call pays more for page faults than for
 * arithmetic. Each calling thread keeps a few buffers that only grow; they are freed when the
 * thread exits (pthread key destructor). Large buffers are advised as huge pages.
 * Also the band-ordered tensor-amax reduction shared by the SIMD quantizers.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/kernels.h"

enum { WS_SLOTS = 6 }; /* 0-3: the kernels; 4-5: attention's per-thread blocks (nn/attention.c) */

typedef struct {
    void *ptr[WS_SLOTS];
    size_t size[WS_SLOTS];
} ws_set;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_destroy(void *p) {
    ws_set *w = p;
    for (int i = 0; i < WS_SLOTS; i++) free(w->ptr[i]);
    free(w);
}

static void ws_init(void) { (void)pthread_key_create(&ws_key, ws_destroy); }

void *hs_workspace(int slot, size_t bytes) {
    if (slot < 0 || slot >= WS_SLOTS) return NULL;
    pthread_once(&ws_once, ws_init);
    ws_set *w = pthread_getspecific(ws_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return NULL;
        if (pthread_setspecific(ws_key, w) != 0) {
            free(w);
            return NULL;
        }
    }
    if (bytes == 0) bytes = 64;
    if (w->size[slot] >= bytes) return w->ptr[slot];
    /* Grow by at least 1/4 so a slowly growing sequence of sizes does not realloc each call. */
    size_t want = bytes + bytes / 4;
    want = (want + 4095) & ~(size_t)4095;
    void *p = NULL;
    if (posix_memalign(&p, 4096, want) != 0) return NULL;
    if (want >= (size_t)2 << 20) (void)madvise(p, want, MADV_HUGEPAGE);
    free(w->ptr[slot]);
    w->ptr[slot] = p;
    w->size[slot] = want;
    return p;
}

int hs_bands_finite_amax(int64_t nbands, size_t tbytes, int par,
                         float (*band_amax)(const void *ctx, int64_t b, float *t),
                         const void *ctx, float *amax) {
    float *bandmax = malloc((size_t)nbands * sizeof(float));
    if (!bandmax) return -1;
    int nomem = 0;
#pragma omp parallel if (par)
    {
        float *t = hs_workspace(2, tbytes);
        if (!t) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nbands; b++)
            if (t) bandmax[b] = band_amax(ctx, b, t);
    }
    float a = 0.0f;
    for (int64_t b = 0; b < nbands && !nomem; b++)
        if (bandmax[b] > a) a = bandmax[b];
    free(bandmax);
    *amax = a;
    return nomem ? -1 : 0;
}
