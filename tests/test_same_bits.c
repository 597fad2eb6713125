/* test_same_bits.c: the bf16 and FP4 recipes give the same bits on every x86-64 CPU. A short
 * training run of a small model in each pinned recipe, at every ISA level this CPU has (the
 * SIMD levels at 1 and 2 threads), must reproduce the hash committed below: FNV-1a 64 of every step's training
 * loss and gradient norm (as doubles) and of the final weights. The committed values were made
 * on one machine; any other CPU (AVX2 or AVX-512, Intel or AMD) must get the same ones. Their
 * products run on halfs' own kernels (the bf16 contract of kernels/gemm_kernels.h, the E2M1
 * GEMM's exact integer sums), their row sums in a fixed lane order (nn/vmath.h), never on
 * OpenBLAS. The `fp32` recipe runs OpenBLAS and is not pinned: its bits depend on the CPU.
 *
 * When a change of numerics is intended (a new rounding, a new kernel contract), the failure
 * message prints the new hash to commit, with the reason, in the same change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "nn/model.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/trainer.h"

enum { STEPS = 3 };

/* The run: model nano (64 wide, 2 blocks, 4 heads of 16, SwiGLU 192), vocabulary 512, batches
 * of 2 × 64 synthetic tokens, seed 7, warm-up 1 step, learning rate 1e-2, 3 steps. */
static uint64_t run_hash(const char *recipe, int threads) {
    hs_train_config c;
    hs_train_config_defaults(&c);
    hs_model_config_preset("nano", &c.model);
    c.model.vocab = 512;
    snprintf(c.model_preset, sizeof c.model_preset, "nano");
    snprintf(c.recipe.name, sizeof c.recipe.name, "%s", recipe);
    c.batch = 2;
    c.seq = 64;
    c.steps = STEPS;
    c.warmup = 1;
    c.lr = 1e-2;
    c.eval_every = 0;
    c.save_every = 0;
    c.seed = 7;
    c.threads = threads;
    enum { N = 2 * 64 * 8 + 1 };
    static uint16_t tok[N];
    uint64_t x = 88172645463325252ull; /* xorshift */
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tok[i] = (uint16_t)(x % 512);
    }
    hs_dataset *d = NULL;
    hs_trainer *t = NULL;
    assert_int_equal(hs_dataset_from_tokens(tok, N, &d), HS_OK);
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_OK);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int s = 0; s < STEPS; s++) {
        hs_step_metrics r;
        assert_int_equal(hs_trainer_step(t, &r), HS_OK);
        h = hs_fnv1a(h, &r.train_loss, sizeof r.train_loss);
        h = hs_fnv1a(h, &r.grad_norm, sizeof r.grad_norm);
    }
    const hs_model *m = hs_trainer_model(t);
    h = hs_fnv1a(h, m->params, sizeof(float) * (size_t)m->n_params);
    hs_trainer_free(t);
    hs_dataset_close(d);
    return h;
}

static const struct {
    const char *recipe;
    uint64_t hash;
} pinned[] = {
    {"bf16", 0xab39685ef2fb1122ull},
    {"mxfp4-halfs", 0x3911ba782a17a2c4ull},
    {"nvfp4", 0xbc2d917e82f025b4ull},
    {"fp4row-halfs", 0xc546f404e75f9466ull},
};

static void test_pinned_hashes(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++)
        for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
            if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
            for (int th = 1; th <= (isa == HS_ISA_REF ? 1 : 2); th++) { /* ref: slow, 1 thread */
                uint64_t h = run_hash(pinned[i].recipe, th);
                if (h != pinned[i].hash) {
                    print_error("%s at %s, %d thread(s): hash 0x%016llxull, committed 0x%016llxull\n",
                                pinned[i].recipe, hs_isa_name(), th, (unsigned long long)h,
                                (unsigned long long)pinned[i].hash);
                    bad = 1;
                }
            }
        }
    hs_isa_force(hs_isa_detect());
    assert_false(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
