/* cmd_corpus.c: `halfs corpus`: prepare (on first use) and locate the embedded default corpus:
 * its tokenizer.json and the token shards of the pretraining text (King James Bible) and of the
 * held-out fine-tuning text (The Devil's Dictionary), all encoded with the same tokenizer
 * (src/train/corpus.h, data/README.md). Scripts read the paths from --json.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train/corpus.h"
#include "train/dataset.h"
#include "train/tokenizer.h"

/* What the options set. */
typedef struct {
    int64_t vocab;
    const char *cache;
    int json;
} corpus_args;

enum { CORPUS_NOPTS = 4 };

/* Defaults into *t and the option table over it into opts[CORPUS_NOPTS]. */
static void corpus_table(corpus_args *t, cli_opt *opts) {
    *t = (corpus_args){.vocab = HS_CORPUS_DEFAULT_VOCAB};
    static char vocab_help[64];
    snprintf(vocab_help, sizeof vocab_help, "tokenizer size, 256..65536 (default: %d)",
             HS_CORPUS_DEFAULT_VOCAB);
    const cli_opt o[CORPUS_NOPTS] = {
        {.name = "--vocab", .type = CLI_I64, .dst = &t->vocab, .lo = 256,
         .hi = HS_TOKENIZER_MAX_VOCAB, .arg = "N", .help = vocab_help},
        {.name = "--cache", .type = CLI_STR, .dst = &t->cache, .arg = "DIR",
         .help = "cache directory (default: $HALFS_CACHE, else $XDG_CACHE_HOME/halfs,\n"
                 "else ~/.cache/halfs)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json,
         .help = "print one JSON object instead of a table"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void corpus_help(FILE *out) {
    fprintf(out,
        "usage: halfs corpus [--vocab N] [--cache DIR] [--json]\n"
        "\n"
        "Prepare the embedded corpus (data/*.txt.gz) if it is not cached yet: train a byte-level\n"
        "BPE tokenizer on the pretraining text and encode every split with it into llm.c\n"
        "token shards. Prints where the files are:\n"
        "  tokenizer  tokenizer.json (Hugging Face ByteLevel BPE)\n"
        "  train val  pretraining shards: King James Bible (every 20th chapter is val)\n"
        "  ft-train ft-val  fine-tuning shards: The Devil's Dictionary, never seen in\n"
        "             pretraining (every 20th entry is val)\n"
        "\n"
        "options:\n");
    corpus_args t;
    cli_opt opts[CORPUS_NOPTS];
    corpus_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "The corpus files are found through $HALFS_DATA, else ../data or ../../data next to\n"
        "the halfs binary.\n"
        "exit status: 0 ok; 1 usage or input error (e.g. corpus not found); 2 internal error.\n");
}

int cmd_corpus(int argc, char **argv) {
    corpus_args t;
    cli_opt opts[CORPUS_NOPTS];
    corpus_table(&t, opts);
    const cli_command cmd = {"corpus", opts, corpus_help, 0, "corpus takes only options"};
    int rc = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
    int64_t vocab = t.vocab;
    const char *cache = t.cache;
    int json = t.json;
    hs_corpus c;
    hs_status st = hs_corpus_default(cache, (int)vocab, &c);
    if (st != HS_OK) return cli_fail_status(st, "preparing the embedded corpus");
    const char *names[5] = {"train", "val", "ft_train", "ft_val", NULL};
    const char *paths[4] = {c.train, c.val, c.ft_train, c.ft_val};
    int64_t counts[4];
    for (int k = 0; k < 4; k++) {
        hs_dataset *d;
        if ((st = hs_dataset_open(paths[k], &d)) != HS_OK)
            return cli_fail_status(st, "reading the cached corpus");
        counts[k] = hs_dataset_size(d);
        hs_dataset_close(d);
    }
    if (json) {
        printf("{\"vocab\": %d, \"cached\": %s, \"dir\": ", c.vocab, c.cached ? "true" : "false");
        cli_json_put_string(c.dir);
        printf(", \"tokenizer\": ");
        cli_json_put_string(c.tokenizer);
        for (int k = 0; k < 4; k++) {
            printf(", \"%s\": ", names[k]);
            cli_json_put_string(paths[k]);
            printf(", \"%s_tokens\": %lld", names[k], (long long)counts[k]);
        }
        printf("}\n");
    } else {
        printf("corpus %s (vocab %d, %s)\n", c.dir, c.vocab, c.cached ? "cached" : "prepared now");
        printf("  %-9s %s\n", "tokenizer", c.tokenizer);
        for (int k = 0; k < 4; k++)
            printf("  %-9s %s (%lld tokens)\n", names[k], paths[k], (long long)counts[k]);
    }
    return CLI_OK;
}
