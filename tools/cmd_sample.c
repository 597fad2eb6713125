/* cmd_sample.c: `halfs sample DIR --prompt TEXT`: generate text from a checkpoint (DIR is a run
 * directory, meaning its latest checkpoint, a checkpoint directory, or a GGUF file written by
 * `halfs export`, whose tokenizer it uses). Sampling: the logits of
 * the last position divided by the temperature, restricted to the top-k, softmax in double,
 * one draw from a counter-based generator seeded by --seed (temperature 0 = greedy). The model
 * sees at most its context (max_position_embeddings) of the latest tokens. Prompt tokens the
 * model cannot take (ids ≥ its vocabulary, or more tokens than its context) exit 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/rng.h"
#include "cli.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "nn/recipe.h"
#include "train/tokenizer.h"

/* What the options set. */
typedef struct {
    const char *prompt, *recipe, *tokenizer;
    int64_t tokens, top_k, threads;
    double temp;
    uint64_t seed;
} sample_args;

enum { SAMPLE_NOPTS = 9 };

/* Defaults into *t and the option table over it into opts[SAMPLE_NOPTS]. */
static void sample_table(sample_args *t, cli_opt *opts) {
    *t = (sample_args){.tokens = 200, .top_k = 40, .temp = 0.8, .seed = 1337};
    const cli_opt o[SAMPLE_NOPTS] = {
        {.name = "--prompt", .type = CLI_STR, .dst = &t->prompt, .arg = "TEXT",
         .help = "the text to continue (required, not empty)"},
        {.name = "--tokens", .type = CLI_I64, .dst = &t->tokens, .lo = 1, .hi = 100000,
         .arg = "N", .help = "tokens to generate, 1..100000 (default: 200)"},
        {.name = "--temperature", .type = CLI_F64, .dst = &t->temp, .flo = 0, .fhi = 10,
         .arg = "T",
         .help = "softmax temperature, 0..10; 0 = always the most likely token\n"
                 "(default: 0.8)"},
        {.name = "--top-k", .type = CLI_I64, .dst = &t->top_k, .lo = 0, .hi = 1 << 20,
         .arg = "K", .help = "sample among the K most likely tokens; 0 = all (default: 40)"},
        {.name = "--seed", .type = CLI_U64, .dst = &t->seed, .arg = "S",
         .help = "random seed, unsigned 64-bit (default: 1337)"},
        {.name = "--recipe", .type = CLI_STR, .dst = &t->recipe, .arg = "R",
         .help = "forward-pass recipe (fp32, bf16, mxfp4-halfs, ...) (default: the\n"
                 "run's training recipe when the checkpoint records it, else fp32)"},
        {.name = "--tokenizer", .type = CLI_STR, .dst = &t->tokenizer, .arg = "PATH",
         .help = "tokenizer.json (default: the checkpoint's)"},
        {.name = "--threads", .type = CLI_I64, .dst = &t->threads, .lo = 0, .hi = 1024,
         .arg = "N", .help = "threads, 0 = all cores (default: 0)"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void sample_help(FILE *out) {
    fprintf(out,
        "usage: halfs sample DIR --prompt TEXT [--tokens N] [--temperature T] [--top-k K]\n"
        "                    [--seed S] [--recipe R] [--tokenizer PATH] [--threads N]\n"
        "\n"
        "Continue TEXT with a trained model and print prompt and continuation to stdout.\n"
        "DIR is a run directory (its latest checkpoint is used), a checkpoint directory,\n"
        "or a GGUF file written by `halfs export` (its tokenizer comes with it).\n"
        "\n"
        "options:\n");
    sample_args t;
    cli_opt opts[SAMPLE_NOPTS];
    sample_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error; 2 internal error.\n"
        "example: halfs sample runs/nano --prompt 'And God said' --tokens 100\n");
}

/* Choose the next token from logits (V) at temperature temp among the top k (0 = all). */
static int32_t pick(const float *logits, int V, double temp, int k, uint64_t seed, int64_t i,
                    double *prob, int32_t *idx) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temp <= 0) return best;
    /* The top k by partial selection (k small): idx[0..k) holds them, unordered. */
    int n = (k > 0 && k < V) ? k : V;
    if (n == V) {
        for (int v = 0; v < V; v++) idx[v] = v;
    } else {
        for (int j = 0; j < n; j++) idx[j] = -1;
        for (int v = 0; v < V; v++) {
            int worst = 0;
            for (int j = 1; j < n; j++)
                if (idx[j] < 0 || (idx[worst] >= 0 && logits[idx[j]] < logits[idx[worst]])) worst = j;
            if (idx[worst] < 0 || logits[v] > logits[idx[worst]]) idx[worst] = v;
        }
    }
    double mx = logits[best], sum = 0;
    for (int j = 0; j < n; j++) {
        prob[j] = exp(((double)logits[idx[j]] - mx) / temp);
        sum += prob[j];
    }
    double u = (double)(hs_rng_mix(hs_rng_mix(seed) ^ (uint64_t)i) >> 11) * 0x1.0p-53 * sum, acc = 0;
    for (int j = 0; j < n; j++) {
        acc += prob[j];
        if (u < acc) return idx[j];
    }
    return idx[n - 1];
}

int cmd_sample(int argc, char **argv) {
    sample_args t;
    cli_opt opts[SAMPLE_NOPTS];
    sample_table(&t, opts);
    const char *dir = NULL;
    int rc = cli_model_args(argc, argv, "sample", "DIR --prompt TEXT", opts, sample_help, &dir);
    if (rc != CLI_OK || !dir) return rc; /* an error, or --help */
    const char *prompt = t.prompt, *recipe_name = t.recipe, *tok_path = t.tokenizer;
    int64_t n_tokens = t.tokens, top_k = t.top_k;
    double temp = t.temp;
    uint64_t seed = t.seed;
    if (t.threads > 0) omp_set_num_threads((int)t.threads);
    if (!prompt || !*prompt) {
        cli_error("--prompt TEXT is required and must not be empty");
        cli_hint("e.g. halfs sample %s --prompt 'In the beginning'", dir);
        return CLI_USAGE;
    }
    cli_model cm;
    rc = cli_model_open(dir, &cm);
    if (rc != CLI_OK) return rc;
    hs_model *m = cm.model;
    char tp[4200];
    hs_tokenizer *tok = NULL;
    hs_status st = HS_OK;
    if (!tok_path && cm.gguf) { /* a GGUF file carries its tokenizer.json */
        if (!cm.tokenizer_json) {
            cli_error("'%s' holds no tokenizer.huggingface.json", cm.ckpt);
            cli_hint("pass --tokenizer PATH (the tokenizer the model was trained with)");
            cli_model_close(&cm);
            return CLI_USAGE;
        }
        st = hs_tokenizer_from_json(cm.tokenizer_json, strlen(cm.tokenizer_json), &tok);
    } else if (!tok_path) {
        if (hs_checkpoint_tokenizer(cm.ckpt, tp, sizeof tp) != HS_OK) {
            cli_error("'%s' has no tokenizer.json", cm.ckpt);
            cli_hint("pass --tokenizer PATH (the tokenizer the training shards were encoded with)");
            cli_model_close(&cm);
            return CLI_USAGE;
        }
        tok_path = tp;
    }
    if (tok_path) st = hs_tokenizer_load(tok_path, &tok);
    if (st != HS_OK) {
        cli_model_close(&cm);
        return cli_fail_status(st, "loading the tokenizer");
    }
    hs_recipe_opts ro;
    hs_recipe recipe;
    if ((rc = cli_model_recipe(&cm, recipe_name, seed, &ro, &recipe)) != CLI_OK) {
        hs_tokenizer_free(tok);
        cli_model_close(&cm);
        return rc;
    }
    int32_t *ids = NULL;
    int64_t n_prompt = 0;
    if ((st = hs_tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n_prompt)) != HS_OK) {
        rc = cli_fail_status(st, "encoding the prompt");
    } else if (n_prompt > m->cfg.max_seq) {
        cli_error("the prompt is %lld tokens, longer than the model's context of %d tokens",
                  (long long)n_prompt, m->cfg.max_seq);
        cli_hint("shorten the prompt");
        rc = CLI_USAGE;
    } else {
        for (int64_t i = 0; i < n_prompt; i++)
            if (ids[i] >= m->cfg.vocab) {
                cli_error("prompt token %lld has id %d, outside the model's vocabulary of %d "
                          "(tokenizer of %d tokens)", (long long)i, ids[i], m->cfg.vocab,
                          hs_tokenizer_vocab_size(tok));
                cli_hint("use the tokenizer the model was trained with (--tokenizer)");
                rc = CLI_USAGE;
                break;
            }
    }
    int64_t total = n_prompt + n_tokens;
    int32_t *seq = rc == CLI_OK ? malloc((size_t)total * sizeof *seq) : NULL;
    double *prob = seq ? malloc((size_t)m->cfg.vocab * sizeof *prob) : NULL;
    int32_t *idx = prob ? malloc((size_t)m->cfg.vocab * sizeof *idx) : NULL;
    if (rc == CLI_OK && !idx) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
    }
    if (rc == CLI_OK) {
        memcpy(seq, ids, (size_t)n_prompt * sizeof *seq);
        fwrite(prompt, 1, strlen(prompt), stdout);
        fflush(stdout);
        const int V = m->cfg.vocab;
        for (int64_t n = n_prompt; n < total; n++) {
            int T = n > m->cfg.max_seq ? m->cfg.max_seq : (int)n;
            const int32_t *win = seq + (n - T);
            if ((st = hs_model_forward(m, &recipe, 0, win, NULL, 1, T, NULL)) != HS_OK) {
                rc = cli_fail_status(st, "forward pass");
                break;
            }
            const float *logits = hs_model_logits(m) + (size_t)(T - 1) * V;
            for (int v = 0; v < V; v++)
                if (!isfinite(logits[v])) {
                    fputc('\n', stdout);
                    cli_error("the model's output at token %lld is not finite (recipe %s)",
                              (long long)(n - n_prompt + 1), ro.name);
                    if (strcmp(ro.name, "fp32")) cli_hint("try --recipe fp32");
                    rc = CLI_USAGE;
                    break;
                }
            if (rc != CLI_OK) break;
            int32_t next = pick(logits, V, temp, (int)top_k, seed, n, prob, idx);
            seq[n] = next;
            int len;
            const unsigned char *b = hs_tokenizer_token_bytes(tok, next, &len);
            if (b) fwrite(b, 1, (size_t)len, stdout); /* ids past the tokenizer print nothing */
            fflush(stdout);
        }
        fputc('\n', stdout);
    }
    free(idx);
    free(prob);
    free(seq);
    free(ids);
    hs_tokenizer_free(tok);
    cli_model_close(&cm);
    return rc;
}
